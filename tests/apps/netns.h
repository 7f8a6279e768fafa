// Network namespaces for the apps tests: a small network of nodes, each in its own network
// namespace with its own address, joined by veth pairs to one bridge in the root namespace
// (which has an address too, so a client in the test process reaches every node), and a
// partition made by taking one node's link down.
//
// Everything is made with `ip` commands (run as children, process.h) and undone by the
// destructor, also when the test fails: the root-side veth ends (deleting one end deletes
// the pair, even while a process still holds the namespace), the namespaces and the bridge.
// Names are unique per run: a network claims a subnet index k by creating the bridge
// "micabr<k>" (creating a link that exists fails, so two tests never share one); the
// namespaces are named with the test process's pid and k. Needs root and `ip netns`:
// unavailable_reason() says why not, for GTEST_SKIP. One thread; calls block briefly.
#pragma once

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/apps/process.h"

namespace mica::testing {

// Subnets 10.213.k.0/24 for k in [0, kNetnsSubnets): the bridge is .1, node i is .(10 + i).
constexpr int kNetnsSubnets = 250;
constexpr int kNetnsNodesMax = 200;

// The `ip` program, or "" when there is none.
inline std::string ip_binary() {
  for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  return "";
}

// Runs `ip args...`; its output files start with log_prefix. True when it exited 0; the
// command and its stderr are appended to *error otherwise.
inline bool ip_command(const std::vector<std::string>& args, const std::string& log_prefix,
                       std::string* error = nullptr) {
  std::vector<std::string> argv = {ip_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult result = run(argv, log_prefix, std::chrono::milliseconds(10'000));
  if (result.exit_code == 0) return true;
  if (error != nullptr) {
    *error += "ip";
    for (const std::string& arg : args) *error += " " + arg;
    *error += ": exit " + std::to_string(result.exit_code) + ": " + result.err;
  }
  return false;
}

// Why network namespaces cannot be used here ("" when they can): not root, no `ip`, or
// `ip netns add` failing (no CONFIG_NET_NS, or a container that forbids it).
inline std::string netns_unavailable_reason(const std::string& scratch_dir) {
  if (::geteuid() != 0)
    return "network namespaces need root (the test runs as uid " + std::to_string(::geteuid()) +
           ")";
  if (ip_binary().empty()) return "no `ip` command (iproute2) on this machine";
  std::string probe = "mica-probe-" + std::to_string(::getpid());
  std::string error;
  if (!ip_command({"netns", "add", probe}, scratch_dir + "/netns-probe", &error)) {
    return "`ip netns add` fails here: " + error;
  }
  ip_command({"netns", "delete", probe}, scratch_dir + "/netns-probe");
  return "";
}

class NetnsNetwork {
 public:
  // Makes the bridge and `nodes` namespaces, each linked to it and with its address up.
  // nullptr (and *error says which command failed) when that does not work; whatever was
  // made by then is undone. scratch_dir holds the commands' output files.
  static std::unique_ptr<NetnsNetwork> create(int nodes, const std::string& scratch_dir,
                                              std::string* error) {
    if (nodes < 1 || nodes > kNetnsNodesMax) {
      *error = "node count out of range";
      return nullptr;
    }
    std::unique_ptr<NetnsNetwork> net(new NetnsNetwork(scratch_dir));
    if (!net->claim_subnet(error)) return nullptr;
    for (int i = 0; i < nodes; ++i) {
      if (!net->add_node(i, error)) return nullptr;
    }
    return net;
  }
  NetnsNetwork(const NetnsNetwork&) = delete;
  NetnsNetwork& operator=(const NetnsNetwork&) = delete;
  ~NetnsNetwork() {
    std::string log = scratch_ + "/netns-cleanup";
    for (size_t i = 0; i < namespaces_.size(); ++i) {
      ip_command({"link", "delete", root_link(static_cast<int>(i))}, log);
      ip_command({"netns", "delete", namespaces_[i]}, log);
    }
    if (subnet_ >= 0) ip_command({"link", "delete", bridge()}, log);
  }

  int nodes() const { return static_cast<int>(namespaces_.size()); }
  const std::string& namespace_name(int node) const { return namespaces_[node]; }
  // Node i's address, and the bridge's (the root namespace's, where the test's client is).
  std::string address(int node) const { return prefix() + std::to_string(10 + node); }
  std::string root_address() const { return prefix() + "1"; }
  // argv prefix that runs a program inside node i's namespace (`ip netns exec` execs the
  // program itself, so the child's pid is the program's).
  std::vector<std::string> exec_prefix(int node) const {
    return {ip_binary(), "netns", "exec", namespaces_[node]};
  }
  // The bridge, and node i's veth end in the root namespace.
  std::string bridge() const { return "micabr" + std::to_string(subnet_); }
  std::string root_link(int node) const {
    return "mv" + std::to_string(subnet_) + "-" + std::to_string(node);
  }
  // Takes node i's link down (a partition: it reaches nobody, nobody reaches it) or up.
  bool set_link(int node, bool up, std::string* error = nullptr) {
    return ip_command({"link", "set", root_link(node), up ? "up" : "down"},
                      scratch_ + "/netns-link", error);
  }

 private:
  explicit NetnsNetwork(std::string scratch) : scratch_(std::move(scratch)) {}

  std::string prefix() const { return "10.213." + std::to_string(subnet_) + "."; }
  // Interface names are at most 15 characters: "mv<k>-<i>" (root side), "mp<k>-<i>".
  std::string ns_link(int node) const {
    return "mp" + std::to_string(subnet_) + "-" + std::to_string(node);
  }

  // Creates the bridge of the first free subnet index, searched from a pid-seeded start.
  bool claim_subnet(std::string* error) {
    int start = static_cast<int>(static_cast<unsigned>(::getpid()) % kNetnsSubnets);
    std::string log = scratch_ + "/netns-setup";
    for (int i = 0; i < kNetnsSubnets; ++i) {
      int k = (start + i) % kNetnsSubnets;
      std::string name = "micabr" + std::to_string(k);
      if (!ip_command({"link", "add", name, "type", "bridge"}, log)) continue;
      subnet_ = k;
      return ip_command({"addr", "add", root_address() + "/24", "dev", name}, log, error) &&
             ip_command({"link", "set", name, "up"}, log, error);
    }
    *error = "no free bridge name micabr<k> for k below " + std::to_string(kNetnsSubnets);
    return false;
  }

  bool add_node(int i, std::string* error) {
    std::string ns = "mica-" + std::to_string(::getpid()) + "-" + std::to_string(subnet_) + "-" +
                     std::to_string(i);
    std::string log = scratch_ + "/netns-setup";
    if (!ip_command({"netns", "add", ns}, log, error)) return false;
    namespaces_.push_back(ns);
    std::string root = root_link(i), inner = ns_link(i);
    return ip_command({"link", "add", root, "type", "veth", "peer", "name", inner}, log, error) &&
           ip_command({"link", "set", inner, "netns", ns}, log, error) &&
           ip_command({"link", "set", root, "master", bridge(), "up"}, log, error) &&
           ip_command({"-n", ns, "link", "set", "lo", "up"}, log, error) &&
           ip_command({"-n", ns, "addr", "add", address(i) + "/24", "dev", inner}, log, error) &&
           ip_command({"-n", ns, "link", "set", inner, "up"}, log, error);
  }

  std::string scratch_;
  int subnet_ = -1;
  std::vector<std::string> namespaces_;
};

}  // namespace mica::testing
