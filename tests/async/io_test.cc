// Files, sockets and poll on the real io_uring backend.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <utility>

#include "async/file.h"
#include "async/scope.h"
#include "async/socket.h"
#include "tests/co_test.h"

namespace mica {
namespace {

using namespace std::chrono_literals;

std::vector<std::byte> pattern(size_t n, int seed) {
  std::vector<std::byte> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = std::byte((i * 31 + seed) & 0xff);
  return data;
}

MICA_CO_TEST(IoTest, FileWriteSyncReadRoundTrip) {
  auto opened = File::open(dir.file("a"), O_RDWR | O_CREAT | O_TRUNC);
  Result<File> file = co_await std::move(opened);
  CO_ASSERT_OK(file);
  std::vector<std::byte> data = pattern(100'000, 1);
  auto write = file->write_full(data, 0);
  CO_ASSERT_OK(co_await std::move(write));
  CO_ASSERT_OK(co_await file->fdatasync());
  CO_ASSERT_OK(co_await file->fsync());
  std::vector<std::byte> back(200'000);
  auto read = file->read_full(back, 0);
  Result<size_t> n = co_await std::move(read);
  CO_ASSERT_OK(n);
  EXPECT_EQ(*n, data.size());  // short at end of file
  EXPECT_EQ(std::memcmp(back.data(), data.data(), data.size()), 0);
  CO_ASSERT_OK(co_await file->close());
  EXPECT_FALSE(file->is_open());
}

MICA_CO_TEST(IoTest, WriteWithDsyncFlagGoesThroughTheRing) {
  auto opened = File::open(dir.file("s"), O_RDWR | O_CREAT | O_TRUNC);
  Result<File> file = co_await std::move(opened);
  CO_ASSERT_OK(file);
  std::vector<std::byte> data = pattern(8192, 3), back(8192);
  Result<size_t> n = co_await file->write(data, 0, IoOptions{.rw_flags = RWF_DSYNC});
  CO_ASSERT_OK(n);
  EXPECT_EQ(*n, data.size());
  Result<size_t> r = co_await file->read(back, 0);
  CO_ASSERT_OK(r);
  EXPECT_EQ(*r, back.size());
  EXPECT_EQ(data, back);
  // An unknown flag is refused by the kernel, not ignored.
  Result<size_t> bad = co_await file->write(data, 0, IoOptions{.rw_flags = 0x40000000});
  EXPECT_EQ(bad.status().code(), StatusCode::kNotSupported);
}

MICA_CO_TEST(IoTest, VectoredIoAndFallocate) {
  auto opened = File::open(dir.file("v"), O_RDWR | O_CREAT | O_TRUNC);
  Result<File> file = co_await std::move(opened);
  CO_ASSERT_OK(file);
  CO_ASSERT_OK(co_await file->fallocate(0, 0, 1 << 20));
  struct stat st;
  CO_ASSERT_EQ(fstat(file->fd(), &st), 0);
  EXPECT_EQ(st.st_size, 1 << 20);
  std::vector<std::byte> a = pattern(1000, 2), b = pattern(3000, 3);
  iovec out[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  Result<size_t> written = co_await file->writev(out, 4096);
  CO_ASSERT_OK(written);
  EXPECT_EQ(*written, 4000u);
  std::vector<std::byte> a2(1000), b2(3000);
  iovec in[2] = {{a2.data(), a2.size()}, {b2.data(), b2.size()}};
  Result<size_t> read = co_await file->readv(in, 4096);
  CO_ASSERT_OK(read);
  EXPECT_EQ(*read, 4000u);
  EXPECT_EQ(a, a2);
  EXPECT_EQ(b, b2);
}

MICA_CO_TEST(IoTest, DirectIoWithRegisteredBuffers) {
  auto opened = File::open(dir.file("d"), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT);
  Result<File> file = co_await std::move(opened);
  if (!file.ok() && file.status().code() == StatusCode::kInvalidArgument)
    CO_SKIP() << "no O_DIRECT here";
  CO_ASSERT_OK(file);
  AlignedBuffer out(64 << 10), in(64 << 10);
  std::vector<std::byte> data = pattern(out.size(), 4);
  std::memcpy(out.data(), data.data(), data.size());
  iovec regions[2] = {{out.data(), out.size()}, {in.data(), in.size()}};
  EXPECT_TRUE(Executor::current()->backend().register_buffers(regions).ok());
  Result<size_t> w = co_await file->write_fixed(out.span(), 0, 0);
  EXPECT_EQ(*w, out.size());
  Result<size_t> r = co_await file->read_fixed(in.span(), 0, 1);
  EXPECT_EQ(*r, in.size());
  EXPECT_EQ(std::memcmp(in.data(), out.data(), in.size()), 0);
  // A misaligned O_DIRECT read is refused by the kernel, not silently served.
  Result<size_t> bad = co_await file->read(in.span().subspan(1, 4096), 0);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

MICA_CO_TEST(IoTest, OpeningAMissingFileSaysWhich) {
  std::string path = dir.file("nope");
  auto opened = File::open(path, O_RDONLY);
  Result<File> file = co_await std::move(opened);
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_NE(file.status().message().find(path), std::string_view::npos);
}

TEST(Alignment, HelpersRoundToDirectIoBlocks) {
  EXPECT_EQ(align_up(1, 4096), 4096u);
  EXPECT_EQ(align_up(4096, 4096), 4096u);
  EXPECT_EQ(align_down(8191, 4096), 4096u);
  EXPECT_TRUE(is_direct_io_aligned(8192));
  EXPECT_FALSE(is_direct_io_aligned(100));
  AlignedBuffer b(10000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % kDirectIoAlignment, 0u);
  EXPECT_EQ(b.size(), 10000u);
}

// Kilobytes of the mapping that starts at address backed by transparent huge pages (from
// /proc/self/smaps), or -1 when no mapping starts there.
long anon_huge_kib(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  auto start = reinterpret_cast<uintptr_t>(address);
  while (std::getline(smaps, line)) {
    uintptr_t from = 0, to = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &from, &to) == 2) {
      inside = from == start;
    } else if (inside && line.rfind("AnonHugePages:", 0) == 0) {
      return std::stol(line.substr(std::strlen("AnonHugePages:")));
    }
  }
  return -1;
}

// A counter of /proc/vmstat (0 when absent).
long vmstat(const std::string& name) {
  std::ifstream in("/proc/vmstat");
  std::string key;
  long value = 0;
  while (in >> key >> value)
    if (key == name) return value;
  return 0;
}

bool transparent_huge_pages_off() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  std::getline(in, modes);
  return modes.empty() || modes.find("[never]") != std::string::npos;
}

TEST(Alignment, HugePageBuffersAreWholeAlignedHugePages) {
  long fallbacks_before = vmstat("thp_fault_fallback");
  AlignedBuffer b = AlignedBuffer::huge_pages(3 << 20);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % kHugePageBytes, 0u);
  EXPECT_EQ(b.size(), size_t{3} << 20);
  std::memset(b.data(), 0x5a, b.size());
  AlignedBuffer moved = std::move(b);
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(moved.size(), size_t{3} << 20);
  EXPECT_EQ(static_cast<unsigned char>(moved.data()[moved.size() - 1]), 0x5a);
  if (transparent_huge_pages_off()) GTEST_SKIP() << "transparent huge pages are off here";
  // The kernel may have had no free huge page (fragmented or short of memory): it then
  // falls back to 4 KiB pages and counts the fallback, which is allowed, not tested here.
  if (vmstat("thp_fault_fallback") != fallbacks_before)
    GTEST_SKIP() << "the kernel had no huge page to give just now";
  // Both 2 MiB pages of the rounded-up mapping, faulted in by the memset above.
  EXPECT_EQ(anon_huge_kib(moved.data()), 4096);
}

Task<void> echo_server(Listener* listener, int connections) {
  for (int c = 0; c < connections; ++c) {
    auto accept = listener->accept();
    Result<Socket> peer = co_await std::move(accept);
    EXPECT_TRUE(peer.ok()) << peer.status();
    std::byte buffer[4096];
    for (;;) {
      Result<size_t> n = co_await peer->recv(buffer);
      EXPECT_TRUE(n.ok());
      if (!n.ok() || *n == 0) break;
      auto send = peer->send_all(std::span(buffer, *n));
      EXPECT_TRUE((co_await std::move(send)).ok());
    }
    EXPECT_TRUE((co_await peer->close()).ok());
  }
}

Task<void> echo_client(SocketAddress address, int seed) {
  auto connect = Socket::connect(address, IoOptions{deadline_after(5s)});
  Result<Socket> socket = co_await std::move(connect);
  EXPECT_TRUE(socket.ok()) << socket.status();
  EXPECT_TRUE(socket->set_no_delay(true).ok());
  std::vector<std::byte> data = pattern(256 << 10, seed), back(data.size());
  auto send = socket->send_all(data);
  EXPECT_TRUE((co_await std::move(send)).ok());
  EXPECT_TRUE((co_await socket->shutdown(SHUT_WR)).ok());
  auto recv = socket->recv_exact(back);
  EXPECT_TRUE((co_await std::move(recv)).ok());
  EXPECT_EQ(data, back);
  std::byte extra[1];
  Result<size_t> eof = co_await socket->recv(extra);
  EXPECT_EQ(*eof, 0u);
}

MICA_CO_TEST(IoTest, TcpEchoOverLoopbackWithMultishotAccept) {
  auto listener = Listener::listen(SocketAddress::loopback(0));
  CO_ASSERT_OK(listener);
  EXPECT_NE(listener->address().port(), 0);
  TaskScope scope;
  scope.spawn(echo_server(&*listener, 3));
  for (int i = 0; i < 3; ++i) scope.spawn(echo_client(listener->address(), i));
  co_await scope.join();
  auto closing = listener->close();
  co_await std::move(closing);
}

// A client socket connected to listener and the server's end of it (closed sockets on
// failure, which the caller's I/O then reports).
Task<std::pair<Socket, Socket>> connected_pair(Listener* listener) {
  auto connect = Socket::connect(listener->address());
  Result<Socket> client = co_await std::move(connect);
  auto accept = listener->accept();
  Result<Socket> server = co_await std::move(accept);
  EXPECT_TRUE(client.ok() && server.ok());
  if (!client.ok() || !server.ok()) co_return std::pair<Socket, Socket>();
  co_return std::pair(std::move(*client), std::move(*server));
}

MICA_CO_TEST(IoTest, SendmsgAndRecvmsgScatterAndGather) {
  auto listener = Listener::listen(SocketAddress::loopback(0));
  CO_ASSERT_OK(listener);
  auto connecting = connected_pair(&*listener);
  std::pair<Socket, Socket> sockets = co_await std::move(connecting);
  Socket client = std::move(sockets.first), server = std::move(sockets.second);
  std::vector<std::byte> a = pattern(100, 7), b = pattern(5000, 8);
  iovec out[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  msghdr sent_message{};
  sent_message.msg_iov = out;
  sent_message.msg_iovlen = 2;
  Result<size_t> sent = co_await client.sendmsg(&sent_message);
  EXPECT_EQ(*sent, 5100u);
  std::vector<std::byte> a2(100), b2(5000);
  size_t got = 0;
  while (got < 5100) {  // a stream may deliver it in pieces: advance through the iovecs
    iovec in[2];
    size_t n_iov = 0;
    if (got < 100) in[n_iov++] = {a2.data() + got, 100 - got};
    size_t b_done = got > 100 ? got - 100 : 0;
    in[n_iov++] = {b2.data() + b_done, 5000 - b_done};
    msghdr message{};
    message.msg_iov = in;
    message.msg_iovlen = n_iov;
    Result<size_t> n = co_await server.recvmsg(&message);
    EXPECT_TRUE(n.ok() && *n > 0);
    if (!n.ok() || *n == 0) break;
    got += *n;
  }
  EXPECT_EQ(a, a2);
  EXPECT_EQ(b, b2);
  auto closing = listener->close();
  co_await std::move(closing);
}

int receive_low_water(const Socket& socket) {
  int value = 0;
  socklen_t length = sizeof value;
  EXPECT_EQ(getsockopt(socket.fd(), SOL_SOCKET, SO_RCVLOWAT, &value, &length), 0);
  return value;
}

// Sends data in 4 KiB pieces with pauses, waits until told, then sends trailer (if any)
// and closes. Records the highest SO_RCVLOWAT of receiver seen during its pauses.
Task<void> trickle(Socket* socket, std::span<const std::byte> data, Event* go_on,
                   std::span<const std::byte> trailer, const Socket* receiver, int* mark_seen) {
  IoOptions options{deadline_after(10s)};
  for (size_t at = 0, piece = 0; at < data.size(); at += 4096, ++piece) {
    auto sending =
        socket->send_all(data.subspan(at, std::min<size_t>(4096, data.size() - at)), options);
    EXPECT_TRUE((co_await std::move(sending)).ok());
    if (piece % 64 != 0) continue;
    (void)co_await sleep_for(1ms);
    *mark_seen = std::max(*mark_seen, receive_low_water(*receiver));
  }
  (void)co_await go_on->wait();
  auto sending = socket->send_all(trailer, options);
  EXPECT_TRUE((co_await std::move(sending)).ok());
  EXPECT_TRUE((co_await socket->close()).ok());
}

MICA_CO_TEST(IoTest, RecvExactWithALowWaterMarkStopsAtTheBuffer) {
  auto listener = Listener::listen(SocketAddress::loopback(0));
  CO_ASSERT_OK(listener);
  auto connecting = connected_pair(&*listener);
  std::pair<Socket, Socket> sockets = co_await std::move(connecting);
  Socket client = std::move(sockets.first), server = std::move(sockets.second);
  // Not a multiple of the mark, and nothing follows until the receive is done: a mark
  // left above the missing bytes would wait for ever (the deadline would say so).
  std::vector<std::byte> data = pattern((1 << 20) + 12345, 9), got(data.size());
  std::vector<std::byte> trailer = pattern(8, 10), trailer_got(8);
  Event received;
  TaskScope scope;
  int mark_seen = 0;
  scope.spawn(trickle(&client, data, &received, trailer, &server, &mark_seen));
  auto receiving = server.recv_exact(got, IoOptions{deadline_after(10s)}, 256 << 10);
  EXPECT_TRUE((co_await std::move(receiving)).ok());
  EXPECT_EQ(got, data);
  EXPECT_EQ(mark_seen, 256 << 10);          // raised while the receive waited
  EXPECT_EQ(receive_low_water(server), 1);  // reset for the next reader
  received.set();
  auto rest = server.recv_exact(trailer_got, IoOptions{deadline_after(10s)}, 256 << 10);
  EXPECT_TRUE((co_await std::move(rest)).ok());
  EXPECT_EQ(trailer_got, trailer);
  co_await scope.join();
  // A peer that closes before the buffer is full ends the receive with kClosed.
  auto reconnecting = connected_pair(&*listener);
  std::pair<Socket, Socket> more = co_await std::move(reconnecting);
  Socket quitter = std::move(more.first), server2 = std::move(more.second);
  Event at_once;
  at_once.set();
  scope.spawn(
      trickle(&quitter, std::span(data).first(300 << 10), &at_once, {}, &server2, &mark_seen));
  auto short_receive = server2.recv_exact(got, IoOptions{deadline_after(10s)}, 256 << 10);
  EXPECT_EQ((co_await std::move(short_receive)).code(), StatusCode::kClosed);
  co_await scope.join();
  auto closing = listener->close();
  co_await std::move(closing);
}

MICA_CO_TEST(IoTest, ConnectToAClosedPortIsRefused) {
  // Find a port nobody listens on: listen, note it, close.
  auto probe = Listener::listen(SocketAddress::loopback(0));
  SocketAddress address = probe->address();
  co_await probe->close();
  auto connect = Socket::connect(address);
  Result<Socket> socket = co_await std::move(connect);
  EXPECT_EQ(socket.status().code(), StatusCode::kConnectionRefused);
}

MICA_CO_TEST(IoTest, RecvAndAcceptHonourDeadlines) {
  auto listener = Listener::listen(SocketAddress::loopback(0));
  CO_ASSERT_OK(listener);
  auto connect = Socket::connect(listener->address());
  Result<Socket> socket = co_await std::move(connect);
  CO_ASSERT_OK(socket);
  std::byte buffer[8];
  TimePoint start = Executor::current()->now();
  Result<size_t> n = co_await socket->recv(buffer, IoOptions{deadline_after(20ms)});
  EXPECT_EQ(n.status().code(), StatusCode::kTimedOut);
  EXPECT_GE(Executor::current()->now() - start, 20ms);
  auto accept = listener->accept(IoOptions{deadline_after(1s)});
  Result<Socket> peer = co_await std::move(accept);
  EXPECT_TRUE(peer.ok());
  auto none = listener->accept(IoOptions{deadline_after(5ms)});
  Result<Socket> nobody = co_await std::move(none);
  EXPECT_EQ(nobody.status().code(), StatusCode::kTimedOut);
  auto closing = listener->close();
  co_await std::move(closing);
}

MICA_CO_TEST(IoTest, PollOfAForeignFdReportsReadiness) {
  int fds[2];
  CO_ASSERT_EQ(pipe(fds), 0);
  Result<int> idle = co_await poll_fd(fds[0], POLLIN, IoOptions{deadline_after(5ms)});
  EXPECT_EQ(idle.status().code(), StatusCode::kTimedOut);
  EXPECT_EQ(write(fds[1], "x", 1), 1);
  Result<int> ready = co_await poll_fd(fds[0], POLLIN);
  EXPECT_TRUE(ready.ok());
  EXPECT_TRUE(*ready & POLLIN);
  close(fds[0]);
  close(fds[1]);
}

TEST(IoTest, ListenOnABadAddressFailsClearly) {
  auto parsed = SocketAddress::parse("127.0.0.1:99999");
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(SocketAddress::parse("localhost:80").ok());
  auto v6 = SocketAddress::parse("[::1]:7000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->to_string(), "[::1]:7000");
  EXPECT_EQ(SocketAddress::parse("127.0.0.1:80")->to_string(), "127.0.0.1:80");
}

}  // namespace
}  // namespace mica
