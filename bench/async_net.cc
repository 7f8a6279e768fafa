// bench_async_net: Mica's side of the tcp_stream_1m and pingpong_64b figures.
//
// One process, a Runtime of --threads executor threads (default 2). Executor 0 listens on
// 127.0.0.1 port 0 (the kernel picks a free port) and runs the accepting side; the
// connecting side hops to executor 1 (or stays on 0 with --threads 1), so with two threads
// each end of the connection has its own thread and io_uring, as iperf3's client and
// server processes and the blocking reference's two threads do. Both sides are tasks
// joined with when_all.
//   --mode stream:   the accepting side sends --message-bytes messages with send_all for
//                    --seconds, then shuts down; the connecting side recv_exact's them until
//                    the end of the stream. Prints {"mib_per_s": N} counted at the receiver
//                    over connect..end of stream.
//   --mode pingpong: the connecting side sends a message and waits for its echo, again and
//                    again; the accepting side echoes. TCP_NODELAY on both. Prints
//                    {"round_trips_per_s": N}.
#include <netinet/in.h>

#include <cstdio>
#include <string>
#include <vector>

#include "async/runtime.h"
#include "async/scope.h"
#include "async/socket.h"
#include "bench/flags.h"

namespace mica::bench {
namespace {

// Limits: messages up to 64 MiB, at most 2 executor threads (one per side).
constexpr size_t kMessageBytesMax = 64 << 20;
constexpr uint32_t kThreadsMax = 2;
// A side that waits this long for its peer to connect has lost it.
constexpr auto kAcceptTimeout = std::chrono::seconds(10);
// The ping-pong client reads the clock once per this many round trips.
constexpr uint64_t kClockCheckEvery = 64;

struct Config {
  bool stream = true;
  size_t message_bytes = 1 << 20;
  double seconds = 5;
  uint32_t threads = 2;
};

// Filled by the connecting side, which does the counting.
struct Summary {
  uint64_t messages = 0;
  double seconds = 0;
};

Duration to_duration(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

Task<Result<Socket>> accept_one(Listener* listener) {
  IoOptions options{.deadline = deadline_after(kAcceptTimeout)};
  auto accepting = listener->accept(options);
  CO_TRY_ASSIGN(Socket socket, co_await std::move(accepting));
  co_return std::move(socket);
}

// Accepting side of the stream: sends for config.seconds, then ends the stream.
Task<Status> send_stream(Listener* listener, Config config) {
  auto accepting = accept_one(listener);
  CO_TRY_ASSIGN(Socket socket, co_await std::move(accepting));
  std::vector<std::byte> message(config.message_bytes, std::byte{'m'});
  Executor* executor = Executor::current();
  TimePoint stop = executor->now() + to_duration(config.seconds);
  Status status;
  while (status.ok() && executor->now() < stop) {
    auto sending = socket.send_all(message);
    status = co_await std::move(sending);
  }
  auto shutting = socket.shutdown(SHUT_WR);
  Result<void> shut = co_await shutting;
  auto closing = socket.close();
  Result<void> closed = co_await closing;
  CO_TRY(status);
  CO_TRY(shut);
  co_return closed;
}

// Connecting side of the stream, on executor `index`: receives until the stream ends.
Task<Status> receive_stream(Runtime* runtime, size_t index, SocketAddress address, Config config,
                            Summary* summary) {
  Executor* home = Executor::current();
  auto hop = runtime->executor(index).schedule();
  co_await hop;
  Executor* executor = Executor::current();
  auto connecting = Socket::connect(address);
  Result<Socket> socket = co_await std::move(connecting);
  Status status = socket.status();
  if (socket.ok()) {
    std::vector<std::byte> message(config.message_bytes);
    TimePoint start = executor->now();
    for (;;) {
      auto receiving = socket->recv_exact(message);
      status = co_await std::move(receiving);
      if (!status.ok()) break;
      ++summary->messages;
    }
    summary->seconds = std::chrono::duration<double>(executor->now() - start).count();
    if (status.code() == StatusCode::kClosed) status = Status();  // the end of the stream
    auto closing = socket->close();
    Result<void> closed = co_await closing;
    if (status.ok()) status = closed;
  }
  auto back = home->schedule();
  co_await back;
  co_return status;
}

// Accepting side of the ping-pong: echoes every message until the client closes.
Task<Status> echo(Listener* listener, Config config) {
  auto accepting = accept_one(listener);
  CO_TRY_ASSIGN(Socket socket, co_await std::move(accepting));
  CO_TRY(socket.set_no_delay(true));
  std::vector<std::byte> message(config.message_bytes);
  Status status;
  for (;;) {
    auto receiving = socket.recv_exact(message);
    status = co_await std::move(receiving);
    if (!status.ok()) break;
    auto sending = socket.send_all(message);
    status = co_await std::move(sending);
    if (!status.ok()) break;
  }
  if (status.code() == StatusCode::kClosed) status = Status();
  auto closing = socket.close();
  Result<void> closed = co_await closing;
  CO_TRY(status);
  co_return closed;
}

// Connecting side of the ping-pong, on executor `index`: counts round trips.
Task<Status> ping(Runtime* runtime, size_t index, SocketAddress address, Config config,
                  Summary* summary) {
  Executor* home = Executor::current();
  auto hop = runtime->executor(index).schedule();
  co_await hop;
  Executor* executor = Executor::current();
  auto connecting = Socket::connect(address);
  Result<Socket> socket = co_await std::move(connecting);
  Status status = socket.status();
  if (socket.ok()) status = socket->set_no_delay(true);
  if (status.ok()) {
    std::vector<std::byte> message(config.message_bytes, std::byte{'p'});
    TimePoint start = executor->now();
    TimePoint stop = start + to_duration(config.seconds);
    TimePoint now = start;
    for (;;) {
      auto sending = socket->send_all(message);
      status = co_await std::move(sending);
      if (!status.ok()) break;
      auto receiving = socket->recv_exact(message);
      status = co_await std::move(receiving);
      if (!status.ok()) break;
      ++summary->messages;
      if (summary->messages % kClockCheckEvery == 0) {
        now = executor->now();
        if (now >= stop) break;
      }
    }
    summary->seconds = std::chrono::duration<double>(now - start).count();
  }
  if (socket.ok() && socket->is_open()) {
    auto closing = socket->close();
    Result<void> closed = co_await closing;
    if (status.ok()) status = closed;
  }
  auto back = home->schedule();
  co_await back;
  co_return status;
}

Task<Result<Summary>> run_benchmark(Runtime* runtime, Config config) {
  CO_TRY_ASSIGN(Listener listener, Listener::listen(SocketAddress::loopback(0)));
  size_t peer_index = config.threads > 1 ? 1 : 0;
  Summary summary;
  std::vector<Task<Status>> sides;
  if (config.stream) {
    sides.push_back(send_stream(&listener, config));
    sides.push_back(receive_stream(runtime, peer_index, listener.address(), config, &summary));
  } else {
    sides.push_back(echo(&listener, config));
    sides.push_back(ping(runtime, peer_index, listener.address(), config, &summary));
  }
  auto both = when_all(std::move(sides));
  std::vector<Status> results = co_await std::move(both);
  auto closing = listener.close();
  co_await std::move(closing);
  for (Status& status : results) CO_TRY(status);
  if (summary.seconds <= 0) co_return Status(StatusCode::kInternal, "no time measured");
  co_return summary;
}

Config parse(int argc, char** argv) {
  Flags flags(argc, argv,
              "bench_async_net [--mode stream|pingpong] [--message-bytes N] [--seconds S] "
              "[--threads 1|2]");
  Config config;
  std::string mode = flags.text("mode", "stream");
  config.message_bytes = static_cast<size_t>(flags.number("message-bytes", 1 << 20));
  config.seconds = flags.number("seconds", 5);
  config.threads = static_cast<uint32_t>(flags.number("threads", 2));
  flags.finish();
  if (mode != "stream" && mode != "pingpong") flags.fail("--mode is stream or pingpong");
  config.stream = mode == "stream";
  if (config.message_bytes > kMessageBytesMax) flags.fail("--message-bytes is at most 64 MiB");
  if (config.threads > kThreadsMax) flags.fail("--threads is 1 or 2");
  return config;
}

}  // namespace
}  // namespace mica::bench

int main(int argc, char** argv) {
  using namespace mica;
  bench::Config config = bench::parse(argc, argv);
  Result<bench::Summary> summary = Status(StatusCode::kInternal, "not run");
  {
    Runtime runtime(RuntimeOptions{.threads = config.threads});
    auto task = bench::run_benchmark(&runtime, config);
    summary = runtime.block_on(std::move(task), 0);
  }
  if (!summary.ok()) {
    std::fprintf(stderr, "bench_async_net: %s\n", summary.status().to_string().c_str());
    return 1;
  }
  double per_s = static_cast<double>(summary->messages) / summary->seconds;
  if (config.stream) {
    double mib_per_s = per_s * static_cast<double>(config.message_bytes) / (1 << 20);
    std::printf("{\"mib_per_s\": %.1f}\n", mib_per_s);
  } else {
    std::printf("{\"round_trips_per_s\": %.1f}\n", per_s);
  }
  return 0;
}
