// A real cluster for the client tests: `mica dev up` (mgmtd, one mica-meta, N mica-storage
// processes on 127.0.0.1 with free ports) in the test's own folder, the Client connected to
// it on an io_uring executor of the test thread, and the cluster's processes by name and
// pid (to kill and restart one). The destructor runs `mica dev down` whatever the test did.
// With `mount`, `dev up --mount ROOT/mnt` also mounts it through mica-fuse (tests/fuse/).
//
// Heavy: each ClientCluster starts real processes. Time caps: `dev up` waits at most its
// kDevUpTimeout (90 s); ctest's TIMEOUT for the client tests (tests/CMakeLists.txt) caps a
// whole test. Blocking calls on the test thread, which runs no executor between them.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "apps/dev_process.h"
#include "async/executor.h"
#include "client/client.h"
#include "tests/apps/process.h"
#include "tests/temp_dir.h"

namespace mica::testing {

class ClientCluster {
 public:
  // targets: chain targets per storage process (with 3 processes, one chain of 3 each).
  explicit ClientCluster(const std::string& name, uint32_t storage = 3, uint32_t targets = 1,
                         bool mount = false)
      : root_(binary_dir() + "/client-test-data", name), dir_(root_.path() + "/cluster") {
    std::vector<std::string> args{
        "dev",   "up", "--storage", std::to_string(storage), "--targets", std::to_string(targets),
        "--dir", dir_};
    if (mount) {
      mountpoint_ = root_.path() + "/mnt";
      args.insert(args.end(), {"--mount", mountpoint_});
    }
    RunResult up = mica(args, "/up", std::chrono::milliseconds(120'000));
    up_ok_ = up.exit_code == 0;
    up_output_ = up.out + up.err;
  }
  ~ClientCluster() { mica({"dev", "down", "--dir", dir_}, "/down"); }
  ClientCluster(const ClientCluster&) = delete;
  ClientCluster& operator=(const ClientCluster&) = delete;

  // Whether dev up worked, and what it printed (for ASSERT messages).
  bool up() const { return up_ok_; }
  const std::string& up_output() const { return up_output_; }
  const std::string& dir() const { return dir_; }
  // The test's own folder (the cluster's folder and the mount point are in it).
  const std::string& root() const { return root_.path(); }
  // "" unless constructed with mount.
  const std::string& mountpoint() const { return mountpoint_; }
  // `mica dev up --dir DIR --mount MNT` again: on the running cluster it mounts MNT again
  // if its daemon died (and says so when the mount answers).
  RunResult mount(const std::string& at) {
    return mica({"dev", "up", "--dir", dir_, "--mount", at}, "/mount",
                std::chrono::milliseconds(120'000));
  }
  std::string token_file() const { return dir_ + "/cluster.token"; }
  std::string mgmtd() const {
    std::string env = read_file(dir_ + "/cluster.env");
    size_t at = env.find("MICA_MGMTD=");
    if (at == std::string::npos) return {};
    size_t end = env.find('\n', at);
    return env.substr(at + 11, end - at - 11);
  }
  client::ClientOptions options() const {
    client::ClientOptions options;
    options.mgmtd = mgmtd();
    options.token_file = token_file();
    options.transport = net::TransportChoice::kTcp;
    return options;
  }
  // "mgmtd", "meta", "storage-1", ...
  std::vector<apps::DevProcess> processes() const { return apps::read_pid_files(dir_ + "/pids"); }
  // Runs `mica --dir DIR args...` to completion.
  RunResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--dir", dir_});
    return mica(std::move(args), "/cli");
  }

 private:
  RunResult mica(std::vector<std::string> args, const std::string& log,
                 std::chrono::milliseconds timeout = kRunTimeout) {
    args.insert(args.begin(), MICA_CLI_BINARY);
    return run(args, root_.path() + log, timeout);
  }

  TempDir root_;
  std::string dir_;
  std::string mountpoint_;
  bool up_ok_ = false;
  std::string up_output_;
};

// A test body: a named coroutine taking the connected client (no capturing lambdas: see
// STYLE.md on g++ 12 coroutines).
using ClientBody = Task<void> (*)(client::Client*);

inline Task<Status> with_client_task(client::ClientOptions options, ClientBody body) {
  auto connecting = client::Client::connect(std::move(options));
  Result<std::unique_ptr<client::Client>> connected = co_await std::move(connecting);
  if (!connected.ok()) co_return connected.status();
  std::unique_ptr<client::Client> c = std::move(*connected);
  auto running = body(c.get());
  co_await std::move(running);
  auto closing = c->close();
  co_await std::move(closing);
  co_return Status::ok_status();
}

// Runs body on a new io_uring executor of the calling thread; the client is closed
// afterwards. Returns connect's status if it failed.
inline Status with_client(client::ClientOptions options, ClientBody body) {
  std::unique_ptr<Executor> executor = Executor::create_uring();
  return executor->block_on(with_client_task(std::move(options), body));
}

// Two clients of one cluster on one executor (two programs, as far as the cluster can tell:
// each has its own connections, client ids and lease).
using TwoClientBody = Task<void> (*)(client::Client*, client::Client*);

inline Task<Status> with_two_clients_task(client::ClientOptions a, client::ClientOptions b,
                                          TwoClientBody body) {
  auto connecting_a = client::Client::connect(std::move(a));
  Result<std::unique_ptr<client::Client>> first = co_await std::move(connecting_a);
  if (!first.ok()) co_return first.status();
  auto connecting_b = client::Client::connect(std::move(b));
  Result<std::unique_ptr<client::Client>> second = co_await std::move(connecting_b);
  if (second.ok()) {
    auto running = body(first->get(), second->get());
    co_await std::move(running);
    auto closing = (*second)->close();
    co_await std::move(closing);
  }
  auto closing = (*first)->close();
  co_await std::move(closing);
  co_return second.status();
}

inline Status with_two_clients(client::ClientOptions a, client::ClientOptions b,
                               TwoClientBody body) {
  std::unique_ptr<Executor> executor = Executor::create_uring();
  return executor->block_on(with_two_clients_task(std::move(a), std::move(b), body));
}

}  // namespace mica::testing
