// A cluster of real processes for the apps tests: one mica-mgmtd and N storage nodes (the
// real mica-storage, or the storage stand-in where no data is needed), each with a config
// this helper writes into the test's directory, started, SIGKILLed and restarted by pid.
//
// Every process has its own folder, log file per start and fixed ports, so a restarted one
// comes back where it was (mgmtd's clients and the chains' members reconnect to the same
// address). On 127.0.0.1 the ports are chosen below the ephemeral range (process.h); in
// network namespaces (netns.h) each node has its own address and the ports are fixed. The
// cluster's state is read with `mica --json status` (the real CLI), so every wait polls a
// process, each with a deadline. Child objects SIGKILL what is left when the helper is
// destroyed. One thread (the test's); calls block; failures are gtest failures (call the
// starting methods under ASSERT_NO_FATAL_FAILURE).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/cluster_token.h"
#include "tests/apps/json_read.h"
#include "tests/apps/netns.h"
#include "tests/apps/process.h"

namespace mica::testing {

struct ClusterProcessOptions {
  int storage_nodes = 3;
  int targets_per_node = 2;
  int replicas = 3;
  // Short intervals keep the tests quick; the lease must be at least 2 heartbeats plus the
  // nodes' reconnect backoff (2 s), mgmtd's config check.
  int heartbeat_ms = 200;
  int lease_ms = 2500;
  bool standins = false;          // the storage stand-in instead of mica-storage
  NetnsNetwork* netns = nullptr;  // null: every process on 127.0.0.1
  std::string storage_binary;     // mica-storage (unless standins)
};

// One chain as `mica --json status` shows it.
struct ChainSeen {
  uint64_t id = 0;
  uint64_t version = 0;
  std::vector<std::pair<uint64_t, std::string>> targets;  // (target id, public state)
};

// What the tests look at in a status.
struct ClusterSeen {
  uint64_t routing_version = 0;
  size_t nodes_alive = 0;
  std::map<uint64_t, std::string> node_address;  // by node id
  std::map<uint64_t, std::string> node_host;     // by node id: "node-<i>" for storage node i
  std::map<uint64_t, uint64_t> target_node;      // target id -> node id
  std::map<uint64_t, std::string> target_disk;   // target id -> disk (its directory)
  std::vector<ChainSeen> chains;
};

inline ClusterSeen cluster_seen_in(const JsonValue& status) {
  ClusterSeen seen;
  seen.routing_version = status["routing_version"].number;
  for (const JsonValue& node : status["nodes"].items) {
    seen.nodes_alive += node["alive"].flag;
    seen.node_address[node["id"].number] = node["address"].text;
    seen.node_host[node["id"].number] = node["host"].text;
  }
  for (const JsonValue& target : status["targets"].items) {
    seen.target_node[target["id"].number] = target["node"].number;
    seen.target_disk[target["id"].number] = target["disk"].text;
  }
  for (const JsonValue& chain : status["chains"].items) {
    ChainSeen c{.id = chain["id"].number, .version = chain["version"].number, .targets = {}};
    for (const JsonValue& member : chain["targets"].items) {
      c.targets.emplace_back(member["target"].number, member["state"].text);
    }
    seen.chains.push_back(std::move(c));
  }
  return seen;
}

// Every chain has `replicas` targets and all of them serve.
inline bool full_strength(const ClusterSeen& seen, size_t chains, int replicas) {
  if (seen.chains.size() != chains) return false;
  for (const ChainSeen& chain : seen.chains) {
    if (chain.targets.size() != static_cast<size_t>(replicas)) return false;
    for (const auto& [target, state] : chain.targets) {
      if (state != "serving") return false;
    }
  }
  return true;
}

class StorageClusterProcess {
 public:
  StorageClusterProcess(std::string dir, ClusterProcessOptions options)
      : dir_(std::move(dir)), options_(std::move(options)) {
    nodes_.resize(options_.storage_nodes);
  }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  const ClusterProcessOptions& options() const { return options_; }
  const std::string& mgmtd_address() const { return mgmtd_address_; }
  std::string token_path() const { return path("token"); }
  size_t chain_count() const {
    return static_cast<size_t>(options_.storage_nodes * options_.targets_per_node /
                               options_.replicas);
  }
  std::string node_dir(int node) const { return path("storage-" + std::to_string(node)); }
  std::string target_dir(int node, int target) const {
    return node_dir(node) + "/target-" + std::to_string(target);
  }
  std::string node_log(int node) const { return nodes_[node].log; }
  std::string mgmtd_log() const { return mgmtd_log_; }
  Child& storage(int node) { return nodes_[node].child; }
  Child& mgmtd() { return mgmtd_; }

  // Token, configs, mgmtd, every storage node, one chain table of `replicas`-replica chains
  // over all targets; returns once every chain serves at full strength.
  void start(std::chrono::milliseconds timeout = std::chrono::milliseconds(20'000)) {
    ASSERT_TRUE(net::generate_cluster_token_file(token_path()).ok());
    ASSERT_NO_FATAL_FAILURE(choose_addresses());
    write_mgmtd_config();
    ASSERT_NO_FATAL_FAILURE(start_mgmtd());
    for (int i = 0; i < options_.storage_nodes; ++i) {
      ASSERT_NO_FATAL_FAILURE(start_storage(i));
    }
    size_t targets = static_cast<size_t>(options_.storage_nodes * options_.targets_per_node);
    ASSERT_TRUE(wait_for(
        [&](const ClusterSeen& s) {
          return s.nodes_alive == static_cast<size_t>(options_.storage_nodes) &&
                 s.target_node.size() == targets;
        },
        timeout))
        << "the storage nodes did not register:\n"
        << mica({"status"}).out << read_file(node_log(0));
    RunResult created = mica(
        {"chain-table", "create", "--replicas", std::to_string(options_.replicas), "--seed", "7"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    ASSERT_TRUE(wait_full_strength(timeout)) << "the chains did not come up:\n" << describe();
  }

  // Starts mica-mgmtd (again) on its address; retries a bind a concurrent test took.
  void start_mgmtd() {
    mgmtd_log_ = path("mgmtd-" + std::to_string(++mgmtd_starts_) + ".log");
    std::vector<std::string> argv = prefix(0);
    argv.insert(argv.end(), {MICA_MGMTD_BINARY, "--config", path("mgmtd.toml")});
    ASSERT_NO_FATAL_FAILURE(start_with_bind_retries(&mgmtd_, argv, mgmtd_log_, "serving on "));
  }
  // SIGKILL: no shutdown at all.
  void kill_mgmtd() { EXPECT_EQ(mgmtd_.stop(SIGKILL), 128 + SIGKILL); }

  void start_storage(int node) {
    Node& n = nodes_[node];
    n.log = path("storage-" + std::to_string(node) + "-" + std::to_string(++n.starts) + ".log");
    std::filesystem::create_directories(node_dir(node));
    std::vector<std::string> argv = prefix(node + 1);
    if (options_.standins) {
      for (int t = 0; t < options_.targets_per_node; ++t) {
        std::filesystem::create_directories(target_dir(node, t));
      }
      argv.insert(argv.end(),
                  {MICA_STANDIN_BINARY, "--mgmtd", mgmtd_address_, "--token-file", token_path(),
                   "--dir", node_dir(node), "--targets", std::to_string(options_.targets_per_node),
                   "--host", "node-" + std::to_string(node)});
      n.child = Child(argv, n.log, n.log);
      ASSERT_TRUE(n.child.running());
      return;
    }
    write_storage_config(node);
    argv.insert(argv.end(), {options_.storage_binary, "--config", storage_config(node)});
    ASSERT_NO_FATAL_FAILURE(start_with_bind_retries(&n.child, argv, n.log, "mica-storage serving"));
  }
  // SIGKILL, no shutdown; 128 + SIGKILL expected.
  void kill_storage(int node) { EXPECT_EQ(nodes_[node].child.stop(SIGKILL), 128 + SIGKILL); }

  // A clean stop of everything (SIGTERM, storage first); each is expected to exit 0.
  void stop_all() {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].child.running()) {
        EXPECT_EQ(nodes_[i].child.stop(SIGTERM), 0) << read_file(nodes_[i].log);
      }
    }
    if (mgmtd_.running()) {
      EXPECT_EQ(mgmtd_.stop(SIGTERM), 0) << read_file(mgmtd_log_);
    }
  }

  RunResult mica(std::vector<std::string> args) {
    std::vector<std::string> argv = {MICA_CLI_BINARY, "--mgmtd",     mgmtd_address_, "--token-file",
                                     token_path(),    "--transport", "tcp"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, path("mica"));
  }
  std::optional<ClusterSeen> seen() {
    RunResult result = mica({"--json", "status"});
    if (result.exit_code != 0) return std::nullopt;
    std::optional<JsonValue> json = parse_json(result.out);
    if (!json) return std::nullopt;
    return cluster_seen_in(*json);
  }
  // `mica status` and `mica chains` in words, for failure messages.
  std::string describe() { return mica({"status"}).out + mica({"chains"}).out; }

  // The last kLogTailBytes of every process's current log, for failure messages.
  std::string log_tails() const {
    constexpr size_t kLogTailBytes = 4000;
    auto tail = [](const std::string& name, const std::string& text) {
      size_t from = text.size() > kLogTailBytes ? text.size() - kLogTailBytes : 0;
      return "--- " + name + ":\n" + text.substr(from);
    };
    std::string out = tail("mgmtd", read_file(mgmtd_log_));
    for (size_t i = 0; i < nodes_.size(); ++i) {
      out += tail("storage node " + std::to_string(i), read_file(nodes_[i].log));
    }
    return out;
  }

  // Polls the status until done(seen) holds, up to timeout.
  bool wait_for(const std::function<bool(const ClusterSeen&)>& done,
                std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      std::optional<ClusterSeen> s = seen();
      if (s && done(*s)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  bool wait_full_strength(std::chrono::milliseconds timeout) {
    return wait_for(
        [&](const ClusterSeen& s) { return full_strength(s, chain_count(), options_.replicas); },
        timeout);
  }
  // Waits until none of storage node `node`'s targets serves (mgmtd took them out after
  // its lease expired).
  bool wait_node_out(int node, std::chrono::milliseconds timeout) {
    return wait_for([&](const ClusterSeen& s) { return !node_serves_any(s, node); }, timeout);
  }
  // Whether a target of storage node `node` (known by its host name, "node-<i>") serves.
  // Fails the test when the node has no target in a chain: "serves none" would be vacuous.
  bool node_serves_any(const ClusterSeen& s, int node) const {
    std::string host = "node-" + std::to_string(node);
    bool member = false;
    for (const ChainSeen& chain : s.chains) {
      for (const auto& [target, state] : chain.targets) {
        auto owner = s.target_node.find(target);
        if (owner == s.target_node.end()) continue;
        auto name = s.node_host.find(owner->second);
        if (name == s.node_host.end() || name->second != host) continue;
        member = true;
        if (state == "serving") return true;
      }
    }
    EXPECT_TRUE(member) << host << " has no target in any chain";
    return false;
  }
  // Node i's listen address ("ip:port").
  std::string storage_address(int node) const { return nodes_[node].address; }

 private:
  struct Node {
    Child child;
    std::string address;
    std::string log;
    int starts = 0;
  };

  // `ip netns exec NS` for process slot i (0: mgmtd, 1 + n: storage node n), or nothing.
  std::vector<std::string> prefix(int slot) const {
    if (options_.netns == nullptr) return {};
    return options_.netns->exec_prefix(slot);
  }

  // Fixed ports: in namespaces every node has its own address and port space; on
  // 127.0.0.1, distinct ports below the ephemeral range.
  void choose_addresses() {
    if (options_.netns != nullptr) {
      constexpr int kMgmtdPort = 9000, kHttpPort = 9100, kStoragePort = 9200;
      ASSERT_GE(options_.netns->nodes(), options_.storage_nodes + 1);
      mgmtd_address_ = options_.netns->address(0) + ":" + std::to_string(kMgmtdPort);
      http_address_ = options_.netns->address(0) + ":" + std::to_string(kHttpPort);
      for (int i = 0; i < options_.storage_nodes; ++i) {
        nodes_[i].address = options_.netns->address(i + 1) + ":" + std::to_string(kStoragePort);
      }
      return;
    }
    std::vector<int> ports;
    int port = free_port_below_ephemeral();
    while (port > 0 && ports.size() < nodes_.size() + 2) {
      ports.push_back(port);
      port = next_free_port(port);
    }
    ASSERT_EQ(ports.size(), nodes_.size() + 2) << "no free ports";
    mgmtd_address_ = "127.0.0.1:" + std::to_string(ports[0]);
    http_address_ = "127.0.0.1:" + std::to_string(ports[1]);
    for (size_t i = 0; i < nodes_.size(); ++i) {
      nodes_[i].address = "127.0.0.1:" + std::to_string(ports[i + 2]);
    }
  }
  // The next port after `after` (below the ephemeral range) that binds on 127.0.0.1; 0: none.
  static int next_free_port(int after) {
    constexpr int kHighest = 32000;
    for (int port = after + 1; port < kHighest; ++port) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in at{};
      at.sin_family = AF_INET;
      at.sin_port = htons(static_cast<uint16_t>(port));
      at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0;
      ::close(fd);
      if (bound) return port;
    }
    return 0;
  }

  void write_mgmtd_config() {
    std::ofstream(path("mgmtd.toml"))
        << "data_dir = \"" << path("mgmtd-data") << "\"\n"
        << "listen = \"" << mgmtd_address_ << "\"\nhttp_listen = \"" << http_address_ << "\"\n"
        << "token_file = \"" << token_path() << "\"\ntransport = \"tcp\"\n"
        << "update_interval_ms = 100\n[cluster]\nreplica_count = " << options_.replicas
        << "\nheartbeat_interval_ms = " << options_.heartbeat_ms
        << "\nlease_timeout_ms = " << options_.lease_ms << "\n";
  }

  std::string storage_config(int node) const {
    return path("storage-" + std::to_string(node) + ".toml");
  }
  // mica-storage's config: its node folder, address, mgmtd, token, no HTTP endpoint (no
  // port to collide on), a short forward timeout (a dead successor fails an update in
  // 2 s, not 10), and one target per directory with no disk reserve (a test disk is small).
  void write_storage_config(int node) {
    std::ofstream out(storage_config(node));
    out << "data_dir = \"" << node_dir(node) << "\"\nlisten = \"" << nodes_[node].address
        << "\"\nmgmtd = [\"" << mgmtd_address_ << "\"]\ntoken_file = \"" << token_path()
        << "\"\ntransport = \"tcp\"\nhttp_listen = \"\"\nhost_name = \"node-" << node
        << "\"\n[limits]\nforward_timeout_ms = 2000\n";
    for (int t = 0; t < options_.targets_per_node; ++t) {
      out << "[[target]]\npath = \"" << target_dir(node, t) << "\"\nreserve_bytes = 0\n";
    }
  }

  // Starts argv and waits for `ready` in its log; a bind that failed because a concurrent
  // test took the port in the gap is retried a few times, a short sleep apart.
  static void start_with_bind_retries(Child* child, const std::vector<std::string>& argv,
                                      const std::string& log, const std::string& ready) {
    constexpr int kBindAttempts = 5;
    constexpr auto kBindRetrySleep = std::chrono::milliseconds(300);
    constexpr auto kStartTimeout = std::chrono::seconds(15);
    for (int attempt = 1;; ++attempt) {
      *child = Child(argv, log, log);
      ASSERT_TRUE(child->running());
      auto until = std::chrono::steady_clock::now() + kStartTimeout;
      while (child->alive() && std::chrono::steady_clock::now() < until) {
        if (child->err().find(ready) != std::string::npos) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      std::string err = child->err();
      if (err.find(ready) != std::string::npos) return;
      bool bind_failed =
          err.find("cannot start") != std::string::npos &&
          (err.find("listen") != std::string::npos || err.find("in use") != std::string::npos);
      ASSERT_TRUE(bind_failed) << argv.back() << " did not start:\n" << err;
      ASSERT_LT(attempt, kBindAttempts) << "its ports stayed taken:\n" << err;
      std::this_thread::sleep_for(kBindRetrySleep);
    }
  }

  std::string dir_;
  ClusterProcessOptions options_;
  Child mgmtd_;
  std::string mgmtd_log_;
  int mgmtd_starts_ = 0;
  std::string mgmtd_address_;
  std::string http_address_;
  std::vector<Node> nodes_;
};

}  // namespace mica::testing
