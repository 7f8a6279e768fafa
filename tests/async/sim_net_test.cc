// The simulator's network behaves like TCP: loss means delay by retransmission (a byte
// stream never has a hole) and a reset only past the retransmission limit; partitions may
// be one-way; a crashed or frozen host is silent; send buffers push back; a crashed
// host's dying tasks reach no peer and no disk; bits may flip in transit.
//
// A failing test prints its seed; MICA_SIM_SEED=N replays it. The loss sweep runs
// MICA_SIM_SEEDS seeds (default 1,000: about 0.15 s in a Debug build).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "sim_helpers.h"

namespace mica::sim_testing {
namespace {

// ---- no holes under loss ----

std::string seeded_bytes(uint64_t seed, size_t n) {
  SimRandom random(seed);
  std::string data(n, '\0');
  for (char& c : data) c = char(random.next() & 0xFF);
  return data;
}

// Connects and sends `data` in seeded pieces, then shuts down its side.
Task<Status> stream_sender(SimHost* server, std::string data, uint64_t seed) {
  Socket socket;
  Task<Status> connecting = connect_to(server, &socket);
  CO_TRY(co_await std::move(connecting));
  SimRandom random(seed ^ 0x5EED);
  size_t sent = 0;
  while (sent < data.size()) {
    size_t n = std::min<size_t>(data.size() - sent, 1 + random.below(8192));
    std::span<const std::byte> piece = bytes_of(data).subspan(sent, n);
    Task<Status> sending = socket.send_all(piece);
    CO_TRY(co_await std::move(sending));
    sent += n;
  }
  CO_TRY(co_await socket.shutdown(SHUT_WR));
  co_await close_socket(&socket);
  co_return Status();
}

// Accepts one connection and reads it to its end into *out.
Task<Status> stream_receiver(std::string* out) {
  Socket socket;
  Task<Status> accepting = accept_one(&socket);
  CO_TRY(co_await std::move(accepting));
  std::vector<std::byte> buffer(3000);
  for (;;) {
    std::span<std::byte> span(buffer);
    CO_TRY_ASSIGN(size_t n, co_await socket.recv(span));
    if (n == 0) break;
    out->append(reinterpret_cast<const char*>(buffer.data()), n);
  }
  co_await close_socket(&socket);
  co_return Status();
}

TEST_F(SimFixture, LossDelaysButNeverHolesAByteStream) {
  uint64_t seeds = sweep_seeds(1000), retransmissions = 0;
  for (uint64_t seed = seed_; seed < seed_ + seeds; ++seed) {
    SimConfig config;
    config.net.drop_probability = 0.1;
    SimWorld world(seed, config);
    SimHost& server = world.add_host("server");
    SimHost& client = world.add_host("client");
    std::string data = seeded_bytes(seed, 32 << 10), got;
    Status received;
    world.spawn(server, report(stream_receiver(&got), &received));
    Status sent = world.run(client, stream_sender(&server, data, seed));
    ASSERT_TRUE(world.run_until_idle());
    ASSERT_TRUE(sent.ok()) << "seed " << seed << ": " << sent.to_string();
    ASSERT_TRUE(received.ok()) << "seed " << seed << ": " << received.to_string();
    ASSERT_EQ(got.size(), data.size()) << "seed " << seed;
    ASSERT_TRUE(got == data) << "seed " << seed << ": the stream has a hole or a change";
    EXPECT_EQ(world.net_stats().give_ups, 0u) << "seed " << seed;
    retransmissions += world.net_stats().retransmissions;
  }
  EXPECT_GT(retransmissions, seeds) << "the sweep lost too few segments to prove anything";
}

// ---- retransmission limit, one-way partitions ----

// What a receive slot holds before its task has finished.
Status not_yet() {
  return Status(StatusCode::kBusy, "not received yet");
}

Task<void> recv_into(Socket* socket, size_t length, Duration timeout, Result<std::string>* out) {
  Task<Result<std::string>> receiving = recv_text(socket, length, timeout);
  *out = co_await std::move(receiving);
}

// An established connection between two hosts: client_socket on client, server_socket on
// server.
struct Pair {
  SimHost* server;
  SimHost* client;
  Socket server_socket;
  Socket client_socket;
};

void connect_pair(SimWorld& world, Pair* pair) {
  pair->server = &world.add_host("server");
  pair->client = &world.add_host("client");
  Status accepted;
  world.spawn(*pair->server, report(accept_one(&pair->server_socket), &accepted));
  ASSERT_TRUE(world.run(*pair->client, connect_to(pair->server, &pair->client_socket)).ok());
  ASSERT_TRUE(world.run_until_idle());
  ASSERT_TRUE(accepted.ok()) << accepted.to_string();
}

// Sockets are closed on their host's executor; a crashed host is brought back for it (its
// fds are gone, so the close is a no-op there).
void close_pair(SimWorld& world, Pair* pair) {
  for (auto [host, socket] : {std::pair{pair->client, &pair->client_socket},
                              std::pair{pair->server, &pair->server_socket}}) {
    if (!host->up()) world.restart(*host);
    world.run(*host, close_socket(socket));
  }
}

TEST_F(SimFixture, APartitionShorterThanTheRetransmissionLimitOnlyDelays) {
  SimWorld world(seed_);
  Pair pair;
  connect_pair(world, &pair);
  world.partition(*pair.server, *pair.client);
  ASSERT_TRUE(world.run(*pair.client, send_text(&pair.client_socket, "late", 1s)).ok());
  Result<std::string> got = not_yet();
  world.spawn(*pair.server, recv_into(&pair.server_socket, 4, 60s, &got));
  world.run_for(2s);  // the first try and retransmissions at +0.2, +0.6, +1.4 s are lost
  world.heal(*pair.server, *pair.client);
  ASSERT_TRUE(world.run_until_idle());
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, "late");
  EXPECT_EQ(world.net_stats().give_ups, 0u);
  EXPECT_EQ(world.net_stats().retransmissions, 4u);  // the one at +3.0 s gets through
  close_pair(world, &pair);
}

TEST_F(SimFixture, RetransmissionsPastTheLimitTimeOutTheSender) {
  SimWorld world(seed_);
  Pair pair;
  connect_pair(world, &pair);
  world.partition(*pair.server, *pair.client);
  TimePoint sent = world.now();
  ASSERT_TRUE(world.run(*pair.client, send_text(&pair.client_socket, "lost", 1s)).ok());
  Result<std::string> reply = world.run(*pair.client, recv_text(&pair.client_socket, 1, 60s));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kTimedOut) << reply.status().to_string();
  // Lost at 0, 0.2, 0.6, 1.4, 3, 5, 7, 9 and 11 s: past the 10 s timer, the sender gives up.
  EXPECT_EQ(world.now() - sent, Duration(11s));
  EXPECT_EQ(world.net_stats().give_ups, 1u);
  close_pair(world, &pair);
}

TEST_F(SimFixture, OneWayPartitionBlocksOneDirectionOnly) {
  SimWorld world(seed_);
  Pair pair;
  connect_pair(world, &pair);
  world.partition_one_way(*pair.client, *pair.server);
  ASSERT_TRUE(world.run(*pair.server, send_text(&pair.server_socket, "to-client", 1s)).ok());
  ASSERT_TRUE(world.run(*pair.client, send_text(&pair.client_socket, "to-server", 1s)).ok());
  Result<std::string> at_client = world.run(*pair.client, recv_text(&pair.client_socket, 9, 1s));
  ASSERT_TRUE(at_client.ok()) << at_client.status().to_string();
  EXPECT_EQ(*at_client, "to-client");
  Result<std::string> at_server = world.run(*pair.server, recv_text(&pair.server_socket, 9, 1s));
  EXPECT_EQ(at_server.status().code(), StatusCode::kTimedOut) << at_server.status().to_string();
  world.heal_one_way(*pair.client, *pair.server);
  at_server = world.run(*pair.server, recv_text(&pair.server_socket, 9, 5s));
  ASSERT_TRUE(at_server.ok()) << at_server.status().to_string();
  EXPECT_EQ(*at_server, "to-server");  // retransmitted once the way opened
  close_pair(world, &pair);
}

// ---- silent death ----

TEST_F(SimFixture, ACrashedHostSendsNoResetPeersSeeOnlyTimeouts) {
  SimWorld world(seed_);
  Pair pair;
  connect_pair(world, &pair);
  world.crash(*pair.server);
  Result<std::string> waiting = world.run(*pair.client, recv_text(&pair.client_socket, 1, 2s));
  EXPECT_EQ(waiting.status().code(), StatusCode::kTimedOut) << waiting.status().to_string();
  // What the peer sends goes unanswered until its retransmissions give up.
  ASSERT_TRUE(world.run(*pair.client, send_text(&pair.client_socket, "anyone?", 1s)).ok());
  Result<std::string> after = world.run(*pair.client, recv_text(&pair.client_socket, 1, 60s));
  EXPECT_EQ(after.status().code(), StatusCode::kTimedOut) << after.status().to_string();
  EXPECT_EQ(world.net_stats().give_ups, 1u);
  close_pair(world, &pair);
}

TEST_F(SimFixture, AConnectToACrashedHostTimesOutInsteadOfBeingRefused) {
  SimWorld world(seed_);
  SimHost& server = world.add_host("server");
  SimHost& client = world.add_host("client");
  world.crash(server);
  TimePoint start = world.now();
  Result<std::string> reply = world.run(client, echo_client(server.address(kPort), "x", {}));
  EXPECT_EQ(reply.status().code(), StatusCode::kTimedOut) << reply.status().to_string();
  EXPECT_EQ(world.now() - start, world.net_config().connect_timeout);
}

Task<void> nap_and_note(Duration d, TimePoint* woke) {
  Task<Status> napping = sleep_task(d);
  (void)co_await std::move(napping);
  *woke = Executor::current()->now();
}

TEST_F(SimFixture, AFrozenHostRunsNothingWhileItsClockRunsOn) {
  SimWorld world(seed_);
  Pair pair;
  connect_pair(world, &pair);
  TimePoint woke = TimePoint::min();
  world.spawn(*pair.server, nap_and_note(100ms, &woke));
  world.run_for(10ms);
  world.freeze(*pair.server);
  ASSERT_TRUE(world.run(*pair.client, send_text(&pair.client_socket, "ping", 1s)).ok());
  Result<std::string> got = not_yet();
  world.spawn(*pair.server, recv_into(&pair.server_socket, 4, 10s, &got));
  world.run_for(1s);
  EXPECT_EQ(woke, TimePoint::min()) << "a frozen host's timer fired";
  EXPECT_EQ(got.status().code(), StatusCode::kBusy) << "a frozen host's task ran";
  TimePoint thaw = world.now();
  world.unfreeze(*pair.server);
  ASSERT_TRUE(world.run_until_idle());
  EXPECT_EQ(woke, thaw);  // fired late, at the thaw, by the clock that ran on
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, "ping");  // the segment waited for the host, intact
  close_pair(world, &pair);
}

// ---- back-pressure ----

Task<void> send_once(Socket* socket, size_t n, Result<size_t>* out) {
  std::string data(n, 'b');
  Result<size_t> sent = co_await socket->send(bytes_of(data));
  *out = sent;
}

Task<Status> send_with_deadline(Socket* socket, size_t n, Duration timeout) {
  std::string data(n, 'c');
  IoOptions options{.deadline = deadline_after(timeout)};
  Result<size_t> sent = co_await socket->send(bytes_of(data), options);
  co_return sent.status();
}

TEST_F(SimFixture, ASenderBlocksWhenThePeerDoesNotRead) {
  SimConfig config;
  config.net.send_buffer_bytes = 4096;
  config.net.receive_buffer_bytes = 4096;
  SimWorld world(seed_, config);
  Pair pair;
  connect_pair(world, &pair);
  Result<size_t> first = not_yet();
  world.run(*pair.client, send_once(&pair.client_socket, 64 << 10, &first));
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(*first, 8192u);  // what fits in the send and receive buffers
  Status blocked = world.run(*pair.client, send_with_deadline(&pair.client_socket, 100, 1s));
  EXPECT_EQ(blocked.code(), StatusCode::kTimedOut) << blocked.to_string();
  // The peer reads: room comes back and the next send goes through.
  Result<std::string> drained = world.run(*pair.server, recv_text(&pair.server_socket, 8192, 1s));
  ASSERT_TRUE(drained.ok()) << drained.status().to_string();
  Status unblocked = world.run(*pair.client, send_with_deadline(&pair.client_socket, 100, 1s));
  EXPECT_TRUE(unblocked.ok()) << unblocked.to_string();
  close_pair(world, &pair);
}

// ---- a crashed host's dying tasks ----

Task<Status> write_late() {
  Task<Result<File>> opening = File::open("late", O_RDWR | O_CREAT);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  std::string text = "written after the crash";
  Task<Status> writing = file.write_full(bytes_of(text), 0);
  Status wrote = co_await std::move(writing);
  (void)co_await file.close();
  co_return wrote;
}

Task<Status> send_late(Socket* socket) {
  Task<Status> sending = socket->send_all(bytes_of("sent after the crash"));
  co_return co_await std::move(sending);
}

// Runs body under a token of its own, as cleanup that must not be cut short would: the
// crash's cancellation does not reach it, so only the backend's gate can stop its I/O.
Task<Status> shielded(Task<Status> body) {
  CancelSource shield;
  body.handle().promise().set_token(shield.token());
  co_return co_await std::move(body);
}

// Waits (to be cancelled by a crash), then tries to write a file and to send.
Task<void> dying_writer(Socket* socket, Status* wrote, Status* sent) {
  Task<Status> napping = sleep_task(1h);
  (void)co_await std::move(napping);
  Task<Status> writing = shielded(write_late());
  *wrote = co_await std::move(writing);
  Task<Status> sending = shielded(send_late(socket));
  *sent = co_await std::move(sending);
}

TEST_F(SimFixture, ACrashedHostsDyingTasksReachNoDiskAndNoPeer) {
  SimWorld world(seed_);
  Pair pair;
  connect_pair(world, &pair);
  Status wrote, sent;
  world.spawn(*pair.server, dying_writer(&pair.server_socket, &wrote, &sent));
  world.run_for(10ms);
  world.crash(*pair.server);
  EXPECT_EQ(wrote.code(), StatusCode::kCancelled) << wrote.to_string();
  EXPECT_FALSE(sent.ok());
  EXPECT_EQ(pair.server->disk().find("late"), nullptr);
  Result<std::string> got = world.run(*pair.client, recv_text(&pair.client_socket, 1, 2s));
  EXPECT_EQ(got.status().code(), StatusCode::kTimedOut) << got.status().to_string();
  close_pair(world, &pair);
}

// ---- bit flips ----

TEST_F(SimFixture, BitFlipsChangeDeliveredBytesAndAreCounted) {
  SimWorld world(seed_);
  Pair pair;
  connect_pair(world, &pair);
  world.net_config().bit_flip_probability = 1.0;
  std::string text(64, 'z');
  ASSERT_TRUE(world.run(*pair.client, send_text(&pair.client_socket, text, 1s)).ok());
  Result<std::string> got = world.run(*pair.server, recv_text(&pair.server_socket, 64, 1s));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_NE(*got, text);
  EXPECT_GE(world.net_stats().bit_flips, 1u);
  world.net_config().bit_flip_probability = 0;
  close_pair(world, &pair);
}

}  // namespace
}  // namespace mica::sim_testing
