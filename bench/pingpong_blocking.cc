// pingpong_blocking: the reference for the pingpong_64b figure of `bench/run.sh async`.
//
// Plain C++ with blocking sockets and no Mica code: a server thread echoes fixed-size
// messages back on one TCP connection over 127.0.0.1 and a client thread sends a message,
// waits for the echo, and counts round trips for a fixed time. Both ends set TCP_NODELAY.
// The listener binds port 0 and the kernel picks a free port. Prints one JSON object:
// {"round_trips_per_s": N}. Usage: pingpong_blocking [--seconds S] [--message-bytes B]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

namespace {

// Largest message the benchmark accepts; the figure uses 64 bytes.
constexpr size_t kMessageBytesMax = 1 << 20;
// The clock is read once per this many round trips, so timing stays off the hot path.
constexpr uint64_t kClockCheckEvery = 64;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "pingpong_blocking: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

void set_nodelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("TCP_NODELAY");
}

// Sends or receives exactly length bytes; false when the peer closed the connection.
bool send_all(int fd, const char* data, size_t length) {
  while (length > 0) {
    ssize_t n = send(fd, data, length, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    length -= static_cast<size_t>(n);
  }
  return true;
}

bool recv_exact(int fd, char* data, size_t length) {
  while (length > 0) {
    ssize_t n = recv(fd, data, length, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    length -= static_cast<size_t>(n);
  }
  return true;
}

// Accepts one connection and echoes messages until the client closes it.
void serve(int listen_fd, size_t message_bytes) {
  int fd = accept(listen_fd, nullptr, nullptr);
  if (fd < 0) die("accept");
  set_nodelay(fd);
  std::vector<char> buffer(message_bytes);
  while (recv_exact(fd, buffer.data(), message_bytes)) {
    if (!send_all(fd, buffer.data(), message_bytes)) break;
  }
  close(fd);
}

// Runs round trips for `seconds` and returns how many completed per second.
double ping(uint16_t port, size_t message_bytes, double seconds) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) die("connect");
  set_nodelay(fd);
  std::vector<char> buffer(message_bytes, 'p');
  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  auto stop = start + std::chrono::duration<double>(seconds);
  uint64_t round_trips = 0;
  auto now = start;
  for (;;) {
    if (!send_all(fd, buffer.data(), message_bytes)) die("send");
    if (!recv_exact(fd, buffer.data(), message_bytes)) die("recv");
    ++round_trips;
    if (round_trips % kClockCheckEvery == 0) {
      now = Clock::now();
      if (now >= stop) break;
    }
  }
  close(fd);
  return static_cast<double>(round_trips) / std::chrono::duration<double>(now - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  size_t message_bytes = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i];
    if (flag == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else if (flag == "--message-bytes")
      message_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--message-bytes B]\n", argv[0]);
      return 2;
    }
  }
  if (seconds <= 0 || message_bytes == 0 || message_bytes > kMessageBytesMax) {
    std::fprintf(stderr, "pingpong_blocking: bad --seconds or --message-bytes\n");
    return 2;
  }

  int listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  if (listen_fd < 0) die("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;  // the kernel picks a free port
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(listen_fd, reinterpret_cast<sockaddr*>(&address), length) != 0) die("bind");
  if (listen(listen_fd, 1) != 0) die("listen");
  if (getsockname(listen_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    die("getsockname");
  }

  std::thread server(serve, listen_fd, message_bytes);
  double rate = 0;
  std::thread client([&] { rate = ping(ntohs(address.sin_port), message_bytes, seconds); });
  client.join();
  server.join();
  close(listen_fd);
  std::printf("{\"round_trips_per_s\": %.1f}\n", rate);
  return 0;
}
