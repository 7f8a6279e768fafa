#include "apps/dev_cluster.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "apps/cli_format.h"
#include "apps/dev_mount.h"
#include "apps/dev_process.h"
#include "apps/meta_config.h"
#include "apps/storage_config.h"
#include "async/executor.h"
#include "craq/mgmtd_client.h"
#include "craq/storage_service.h"
#include "net/authenticated_transport.h"
#include "net/cluster_token.h"
#include "net/tcp_transport.h"

namespace mica::apps {
namespace {

namespace fs = std::filesystem;
using craq::PublicState;

// Start attempts when a process found its port taken by another program meanwhile.
constexpr int kDevStartAttempts = 3;
// The dev cluster's timing: quick heartbeats so a start (and a failure) shows in seconds.
// The lease must be at least 2 heartbeats plus the nodes' reconnect backoff (2 s).
constexpr uint32_t kDevHeartbeatMs = 500;
constexpr uint32_t kDevLeaseMs = 4000;
constexpr uint32_t kDevUpdateIntervalMs = 100;
constexpr uint32_t kDevReplicasMax = 3;
// Disk space a dev target leaves free, and its scrub rate: a laptop's disk is shared.
constexpr uint64_t kDevReserveBytes = uint64_t{256} << 20;
constexpr uint64_t kDevScrubBytesPerS = uint64_t{8} << 20;
constexpr std::chrono::milliseconds kDevPoll{50};
constexpr std::chrono::milliseconds kDevCallTimeout{2000};

CliResult failure(std::string line) {
  return CliResult{.exit_code = kExitFailure, .out = {}, .err = "mica: " + line + "\n"};
}

struct DevPlan {
  std::string dir;
  uint32_t storage = 0;
  uint32_t replicas = 0;
  uint32_t targets_per_node = 1;
  std::string mgmtd_binary;
  std::string storage_binary;
  std::string meta_binary;
  std::string mgmtd_address;
  std::string mgmtd_http;
  std::string meta_address;
  std::string meta_http;
  std::vector<std::string> storage_addresses;
  std::vector<std::string> storage_http;
  bool running = false;  // a cluster runs in dir already (`dev up --mount` mounts it)

  std::string token() const { return dir + "/" + kDevTokenFile; }
  std::string log(const std::string& name) const { return dir + "/logs/" + name + ".log"; }
  std::string pid(const std::string& name) const { return dir + "/pids/" + name + ".pid"; }
  std::string config(const std::string& name) const { return dir + "/" + name + ".toml"; }
  static std::string storage_name(uint32_t i) { return fmt::format("storage-{}", i + 1); }
};

std::string dev_dir(const CliInvocation& invocation) {
  std::string dir = invocation.dir.empty() ? std::string(kDefaultDevDir) : invocation.dir;
  std::error_code error;
  fs::path absolute = fs::absolute(dir, error);
  return error ? dir : absolute.lexically_normal().string();
}

Status write_text(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::trunc);
  file << text;
  if (!file.flush()) return Status(StatusCode::kIoError, fmt::format("writing {}", path));
  return Status::ok_status();
}

Status assign_ports(DevPlan* plan) {
  Result<std::vector<int>> ports = free_ports(4 + 2 * size_t{plan->storage});
  if (!ports.ok()) return ports.status();
  auto address = [&](size_t i) { return fmt::format("127.0.0.1:{}", (*ports)[i]); };
  plan->mgmtd_address = address(0);
  plan->mgmtd_http = address(1);
  plan->meta_address = address(2);
  plan->meta_http = address(3);
  plan->storage_addresses.clear();
  plan->storage_http.clear();
  for (uint32_t i = 0; i < plan->storage; ++i) {
    plan->storage_addresses.push_back(address(4 + 2 * i));
    plan->storage_http.push_back(address(5 + 2 * i));
  }
  return Status::ok_status();
}

std::string mgmtd_toml(const DevPlan& plan) {
  return fmt::format(
      R"(# Written by `mica dev up`; rewritten (with new ports) at every `dev up`.
data_dir = "{}/data/mgmtd"
listen = "{}"
http_listen = "{}"
token_file = "{}"
transport = "tcp"
update_interval_ms = {}

[cluster]
replica_count = {}
heartbeat_interval_ms = {}
lease_timeout_ms = {}
)",
      plan.dir, plan.mgmtd_address, plan.mgmtd_http, plan.token(), kDevUpdateIntervalMs,
      plan.replicas, kDevHeartbeatMs, kDevLeaseMs);
}

StorageConfig storage_config(const DevPlan& plan, uint32_t i) {
  std::string name = DevPlan::storage_name(i);
  StorageConfig config;
  config.mgmtd = {plan.mgmtd_address};
  config.listen = plan.storage_addresses[i];
  config.host_name = name;
  config.data_dir = fmt::format("{}/data/{}", plan.dir, name);
  config.http_listen = plan.storage_http[i];
  config.token_file = plan.token();
  config.transport = net::TransportChoice::kTcp;
  config.server.scrub_bytes_per_s = kDevScrubBytesPerS;
  for (uint32_t t = 0; t < plan.targets_per_node; ++t) {
    craq::StorageTargetConfig target;
    target.path = fmt::format("{}/target-{}", config.data_dir, t);
    target.disk = target.path;
    target.engine.reserve_bytes = kDevReserveBytes;
    config.server.targets.push_back(std::move(target));
  }
  return config;
}

// One meta process serving every shard of the dev namespace.
MetaConfig meta_config(const DevPlan& plan) {
  MetaConfig config;
  config.mgmtd = {plan.mgmtd_address};
  config.listen = plan.meta_address;
  config.host_name = "meta";
  config.data_dir = plan.dir + "/data/meta";
  config.http_listen = plan.meta_http;
  config.token_file = plan.token();
  config.transport = net::TransportChoice::kTcp;
  config.shard_count = kDevMetaShardsDefault;
  config.lease_ms = kDevLeaseMs;
  // A laptop's disk: a dev shard never needs more.
  config.map_size_bytes = uint64_t{1} << 30;
  return config;
}

std::string env_text(const DevPlan& plan) {
  std::string out = fmt::format(
      "# Written by `mica dev up`: the addresses of this dev cluster (`source` it, or use\n"
      "# `mica --dir {}`).\nMICA_MGMTD={}\nMICA_TOKEN_FILE={}\nmgmtd_http={}\n",
      plan.dir, plan.mgmtd_address, plan.token(), plan.mgmtd_http);
  out += fmt::format("meta={}\nmeta_http={}\n", plan.meta_address, plan.meta_http);
  for (uint32_t i = 0; i < plan.storage; ++i) {
    out += fmt::format("storage_{}={}\nstorage_{}_http={}\n", i + 1, plan.storage_addresses[i],
                       i + 1, plan.storage_http[i]);
  }
  return out;
}

Status write_configs(const DevPlan& plan) {
  RETURN_IF_ERROR(write_text(plan.config("mgmtd"), mgmtd_toml(plan)));
  RETURN_IF_ERROR(write_text(plan.config("meta"), meta_config_toml(meta_config(plan))));
  for (uint32_t i = 0; i < plan.storage; ++i) {
    RETURN_IF_ERROR(write_text(plan.config(DevPlan::storage_name(i)),
                               storage_config_toml(storage_config(plan, i))));
  }
  return write_text(plan.dir + "/" + kDevEnvFile, env_text(plan));
}

Status start_one(const DevPlan& plan, const std::string& name, const std::string& binary,
                 std::vector<DevProcess>* started) {
  Result<DevProcess> process =
      spawn_detached(name, {binary, "--config", plan.config(name)}, plan.log(name));
  if (!process.ok()) return process.status();
  started->push_back(*process);
  return write_pid_file(plan.pid(name), *process);
}

// mgmtd first; meta and the storage nodes retry their registration until it listens.
Status start_processes(const DevPlan& plan, std::vector<DevProcess>* started) {
  RETURN_IF_ERROR(start_one(plan, "mgmtd", plan.mgmtd_binary, started));
  RETURN_IF_ERROR(start_one(plan, "meta", plan.meta_binary, started));
  for (uint32_t i = 0; i < plan.storage; ++i) {
    RETURN_IF_ERROR(start_one(plan, DevPlan::storage_name(i), plan.storage_binary, started));
  }
  return Status::ok_status();
}

std::string last_line(const std::string& path) {
  std::ifstream file(path);
  std::string line, last;
  while (std::getline(file, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

// A started process that already ended (reaped here: `dev up` is its parent until it exits).
Status check_started(const DevPlan& plan, const std::vector<DevProcess>& started) {
  for (const DevProcess& process : started) {
    int status = 0;
    if (::waitpid(process.pid, &status, WNOHANG) != process.pid) continue;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return Status(
        StatusCode::kHostDown,
        fmt::format("{} exited with code {} before the cluster served; {}: {}", process.name, code,
                    plan.log(process.name), last_line(plan.log(process.name))));
  }
  return Status::ok_status();
}

// Every storage node of the plan (by address) alive in mgmtd's eyes, with its targets.
bool all_registered(const DevPlan& plan, const craq::StatusResponse& status) {
  for (const std::string& address : plan.storage_addresses) {
    const craq::NodeInfo* node = nullptr;
    for (const craq::NodeInfo& n : status.routing.nodes) {
      if (n.rpc_address == address && n.kind == craq::NodeKind::kStorage) node = &n;
    }
    if (node == nullptr) return false;
    bool alive =
        std::any_of(status.nodes.begin(), status.nodes.end(),
                    [&](const craq::NodeStatus& s) { return s.node == node->id && s.alive; });
    auto targets = std::count_if(status.routing.targets.begin(), status.routing.targets.end(),
                                 [&](const craq::TargetInfo& t) { return t.node == node->id; });
    if (!alive || targets < static_cast<std::ptrdiff_t>(plan.targets_per_node)) return false;
  }
  return true;
}

// The dev meta process registered, alive, and named by routing for every shard.
bool meta_serving(const DevPlan& plan, const craq::StatusResponse& status) {
  const craq::NodeInfo* node = nullptr;
  for (const craq::NodeInfo& n : status.routing.nodes) {
    if (n.rpc_address == plan.meta_address && n.kind == craq::NodeKind::kMeta) node = &n;
  }
  if (node == nullptr) return false;
  bool alive = std::any_of(status.nodes.begin(), status.nodes.end(),
                           [&](const auto& s) { return s.node == node->id && s.alive; });
  std::set<uint32_t> shards;
  for (const craq::MetaShardRoute& route : status.routing.meta_shards) {
    if (route.node == node->id) shards.insert(route.shard);
  }
  return alive && shards.size() == kDevMetaShardsDefault;
}

// Every chain of every table at full strength, all its targets serving.
bool chains_serving(const craq::RoutingSnapshot& routing) {
  for (const craq::ChainTable& table : routing.tables) {
    for (craq::ChainId id : table.chains) {
      const craq::ChainInfo* chain = craq::find_chain(routing, id);
      if (chain == nullptr || chain_health(*chain, table.replica_count) != ChainHealth::kHealthy)
        return false;
    }
  }
  return true;
}

// Whether the storage node at address sees each of its chain targets serving at the chain's
// current version (it has applied the routing mgmtd published).
Task<bool> node_serving(net::ConnectionPool* pool, std::string address,
                        std::vector<std::pair<craq::TargetId, uint64_t>> targets) {
  Result<SocketAddress> at = SocketAddress::parse(address);
  if (!at.ok()) co_return false;
  TimePoint deadline = deadline_after(kDevCallTimeout);
  auto getting = pool->get(*at, deadline);
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(getting);
  if (!client.ok()) co_return false;
  craq::StorageService::Stub stub(client->get());
  auto asking = stub.progress(craq::ProgressRequest{}, net::CallOptions{deadline});
  Result<craq::ProgressResponse> progress = co_await std::move(asking);
  if (!progress.ok()) co_return false;
  for (const auto& wanted : targets) {
    craq::TargetId target = wanted.first;
    uint64_t version = wanted.second;
    bool serving = std::any_of(progress->targets.begin(), progress->targets.end(),
                               [&](const craq::TargetProgress& p) {
                                 return p.target == target && p.chain_version == version &&
                                        p.state == PublicState::kServing;
                               });
    if (!serving) co_return false;
  }
  co_return true;
}

Task<bool> nodes_serving(net::ConnectionPool* pool, craq::RoutingSnapshot routing) {
  std::map<std::string, std::vector<std::pair<craq::TargetId, uint64_t>>> by_node;
  for (const craq::ChainInfo& chain : routing.chains) {
    for (const craq::ChainTarget& member : chain.targets) {
      const craq::TargetInfo* target = craq::find_target(routing, member.target);
      const craq::NodeInfo* node = target ? craq::find_node(routing, target->node) : nullptr;
      if (node != nullptr) by_node[node->rpc_address].emplace_back(member.target, chain.version);
    }
  }
  for (auto& [address, targets] : by_node) {
    auto asking = node_serving(pool, address, targets);
    if (!co_await std::move(asking)) co_return false;
  }
  co_return true;
}

// One look at the cluster: registers, creates the table, checks it serves. True when done.
Task<Result<bool>> step(const DevPlan* plan, net::ConnectionPool* pool, craq::MgmtdClient* mgmtd,
                        craq::StatusResponse status, std::string* waiting_for) {
  if (!all_registered(*plan, status)) {
    *waiting_for = fmt::format("{} storage nodes to register", plan->storage);
    co_return false;
  }
  if (status.routing.tables.empty()) {
    *waiting_for = "the chain table";
    craq::CreateChainTableRequest request{.replica_count = plan->replicas, .nodes = {}, .seed = 0};
    auto creating = mgmtd->call<craq::MgmtdService::create_chain_table>(
        request, deadline_after(kDevCallTimeout));
    Result<craq::CreateChainTableResponse> created = co_await std::move(creating);
    if (!created.ok() && !craq::is_mgmtd_unreachable(created.status().code())) {
      co_return Status(created.status().code(),
                       fmt::format("creating the chain table: {}", created.status().to_string()));
    }
    co_return false;
  }
  if (!meta_serving(*plan, status)) {
    *waiting_for = fmt::format("the meta process to serve its {} shards", kDevMetaShardsDefault);
    co_return false;
  }
  if (!chains_serving(status.routing)) {
    *waiting_for = "every chain to serve";
    co_return false;
  }
  *waiting_for = "the storage nodes to serve their chains";
  auto checking = nodes_serving(pool, std::move(status.routing));
  co_return co_await std::move(checking);
}

Task<Status> wait_loop(const DevPlan* plan, const std::vector<DevProcess>* started,
                       net::ConnectionPool* pool, craq::MgmtdClient* mgmtd, size_t* chains) {
  TimePoint deadline = deadline_after(kDevUpTimeout);
  std::string waiting_for = "mgmtd to answer";
  while (true) {
    CO_TRY(check_started(*plan, *started));
    if (Executor::current()->now() >= deadline) {
      co_return Status(StatusCode::kTimedOut,
                       fmt::format("the cluster did not serve within {} s (waiting for {}); "
                                   "logs in {}/logs",
                                   kDevUpTimeout.count() / 1000, waiting_for, plan->dir));
    }
    auto fetching = mgmtd->call<craq::MgmtdService::status>(craq::StatusRequest{},
                                                            deadline_after(kDevCallTimeout));
    Result<craq::StatusResponse> status = co_await std::move(fetching);
    if (status.ok()) {
      *chains = status->routing.chains.size();
      auto stepping = step(plan, pool, mgmtd, std::move(*status), &waiting_for);
      Result<bool> done = co_await std::move(stepping);
      if (!done.ok()) co_return done.status();
      if (*done) co_return Status::ok_status();
    }
    SleepAwaiter pause = sleep_for(kDevPoll);
    Status paused = co_await pause;
    if (!paused.ok()) co_return paused;
  }
}

Task<Status> wait_serving(DevPlan plan, std::vector<DevProcess> started, net::ClusterToken token,
                          size_t* chains) {
  net::TcpTransport tcp;
  net::AuthenticatedTransport transport(&tcp, token);
  net::ConnectionPool pool(
      &transport, net::PoolOptions{.backoff_initial = kDevPoll, .backoff_max = kDevPoll * 4});
  craq::MgmtdClient mgmtd(&pool, {SocketAddress::parse(plan.mgmtd_address).value()});
  auto waiting = wait_loop(&plan, &started, &pool, &mgmtd, chains);
  Status waited = co_await std::move(waiting);
  auto closing = pool.close();
  co_await std::move(closing);
  co_return waited;
}

// Whether a process of this attempt failed to bind a port (taken by another program
// between the pick and its start): only the log bytes written since offsets count.
bool port_was_taken(const DevPlan& plan, const std::map<std::string, uint64_t>& offsets) {
  for (const auto& [name, offset] : offsets) {
    std::ifstream file(plan.log(name));
    file.seekg(static_cast<std::streamoff>(offset));
    std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (text.find("Address already in use") != std::string::npos) return true;
  }
  return false;
}

std::map<std::string, uint64_t> log_offsets(const DevPlan& plan) {
  std::map<std::string, uint64_t> out;
  std::vector<std::string> names{"mgmtd", "meta"};
  for (uint32_t i = 0; i < plan.storage; ++i) names.push_back(DevPlan::storage_name(i));
  for (const std::string& name : names) {
    std::error_code error;
    uintmax_t size = fs::file_size(plan.log(name), error);
    out[name] = error ? 0 : size;
  }
  return out;
}

// Stops what one attempt started (our children: reaped here) and drops their pid files.
void undo_start(const DevPlan& plan, const std::vector<DevProcess>& started) {
  std::vector<DevProcess> left;
  stop_dev_processes(started, kDevStopTimeout, kDevKillTimeout, &left);
  for (const DevProcess& process : started) {
    ::waitpid(process.pid, nullptr, WNOHANG);
    std::error_code error;
    fs::remove(plan.pid(process.name), error);
  }
}

std::string describe(const DevPlan& plan, double seconds, size_t chains) {
  std::string out = fmt::format(
      "mica dev up: mgmtd, meta ({} shards) and {} storage node{} on 127.0.0.1, {} chain{} of "
      "{} replica{} serving after {:.1f} s\n",
      kDevMetaShardsDefault, plan.storage, plan.storage == 1 ? "" : "s", chains,
      chains == 1 ? "" : "s", plan.replicas, plan.replicas == 1 ? "" : "s", seconds);
  out += fmt::format("  folder     {} (configs, cluster.env, logs/, pids/, data/)\n", plan.dir);
  out += fmt::format("  mgmtd      {}  metrics http://{}/metrics\n", plan.mgmtd_address,
                     plan.mgmtd_http);
  out += fmt::format("  meta       {}  metrics http://{}/metrics\n", plan.meta_address,
                     plan.meta_http);
  for (uint32_t i = 0; i < plan.storage; ++i) {
    out += fmt::format("  {:<10} {}  metrics http://{}/metrics\n", DevPlan::storage_name(i),
                       plan.storage_addresses[i], plan.storage_http[i]);
  }
  out += fmt::format(
      "use it:  mica --dir {} status   (or ls/mkdir/put/get; `source {}/{}` sets "
      "MICA_MGMTD)\n",
      plan.dir, plan.dir, kDevEnvFile);
  out += fmt::format("stop it: mica dev down --dir {}\n", plan.dir);
  return out;
}

Status prepare(const CliInvocation& invocation, DevPlan* plan) {
  plan->dir = dev_dir(invocation);
  plan->storage = invocation.storage_count;
  plan->replicas = std::min(plan->storage, kDevReplicasMax);
  plan->targets_per_node = invocation.targets_per_node;
  for (const char* sub : {"", "/logs", "/pids", "/data"}) {
    std::error_code error;
    fs::create_directories(plan->dir + sub, error);
    if (error)
      return Status(StatusCode::kIoError,
                    fmt::format("creating {}{}: {}", plan->dir, sub, error.message()));
  }
  for (const DevProcess& process : read_pid_files(plan->dir + "/pids")) {
    if (process.name == kDevFuseName) continue;  // the mount's daemon (apps/dev_mount.h)
    if (dev_process_alive(process) && !invocation.mount.empty()) {
      plan->running = true;
      return Status::ok_status();
    }
    if (dev_process_alive(process)) {
      return Status(StatusCode::kAlreadyExists,
                    fmt::format("a dev cluster is already running in {} ({} is pid {}); stop it "
                                "first: mica dev down --dir {}",
                                plan->dir, process.name, process.pid, plan->dir));
    }
    std::error_code error;
    fs::remove(plan->pid(process.name), error);  // left by a cluster that died
  }
  // A mount left by a cluster that died: unmounted, its daemon stopped.
  Result<std::string> unmounted = stop_dev_mount(plan->dir);
  if (!unmounted.ok()) return unmounted.status();
  Result<std::string> bin = own_binary_dir();
  if (!bin.ok()) return bin.status();
  plan->mgmtd_binary = *bin + "/mica-mgmtd";
  plan->storage_binary = *bin + "/mica-storage";
  plan->meta_binary = *bin + "/mica-meta";
  for (const std::string& binary : {plan->mgmtd_binary, plan->meta_binary, plan->storage_binary}) {
    if (::access(binary.c_str(), X_OK) != 0) {
      return Status(StatusCode::kNotFound,
                    fmt::format("{} is missing: build it next to mica (ninja mica-mgmtd "
                                "mica-meta mica-storage)",
                                binary));
    }
  }
  if (!fs::exists(plan->token())) RETURN_IF_ERROR(net::generate_cluster_token_file(plan->token()));
  return Status::ok_status();
}

// `dev up --mount` on a running cluster: mounted already, or mounted again.
CliResult mount_running(const DevPlan& plan, const std::string& mountpoint) {
  Result<std::string> mgmtd = dev_mgmtd_address(plan.dir);
  Result<DevMountPlan> mount = mgmtd.ok() ? dev_mount_plan(plan.dir, mountpoint, *mgmtd)
                                          : Result<DevMountPlan>(mgmtd.status());
  Result<std::string> done = mount.ok() ? ensure_dev_mount(*mount) : mount.status();
  if (!done.ok()) return failure(fmt::format("dev up --mount: {}", done.status().to_string()));
  return CliResult{.exit_code = kExitOk, .out = *done, .err = {}};
}

// The cluster serves: mounts it when asked (stopping everything again if that fails).
CliResult finish_up(const DevPlan& plan, const std::string& mountpoint,
                    const std::vector<DevProcess>& started, std::string out) {
  if (mountpoint.empty()) return CliResult{.exit_code = kExitOk, .out = std::move(out), .err = {}};
  Result<DevMountPlan> mount = dev_mount_plan(plan.dir, mountpoint, plan.mgmtd_address);
  Result<DevProcess> fuse = mount.ok() ? start_dev_mount(*mount) : mount.status();
  if (!fuse.ok()) {
    undo_start(plan, started);
    return failure(fmt::format("dev up: {} (everything it started is stopped again)",
                               fuse.status().to_string()));
  }
  out += fmt::format("  mount      {}  mica-fuse pid {}, log {}/logs/{}.log\n", mount->mountpoint,
                     fuse->pid, plan.dir, kDevFuseName);
  return CliResult{.exit_code = kExitOk, .out = std::move(out), .err = {}};
}

}  // namespace

CliResult dev_up(const CliInvocation& invocation) {
  DevPlan plan;
  Status prepared = prepare(invocation, &plan);
  if (!prepared.ok()) return failure(fmt::format("dev up: {}", prepared.to_string()));
  if (plan.running) return mount_running(plan, invocation.mount);
  if (!invocation.mount.empty()) {
    Result<DevMountPlan> mount = dev_mount_plan(plan.dir, invocation.mount, "");
    if (!mount.ok()) return failure(fmt::format("dev up: {}", mount.status().to_string()));
  }
  Result<net::ClusterToken> token = net::load_cluster_token(plan.token());
  if (!token.ok()) return failure(fmt::format("dev up: {}", token.status().to_string()));
  auto began = std::chrono::steady_clock::now();
  for (int attempt = 1;; ++attempt) {
    Status status = assign_ports(&plan);
    if (status.ok()) status = write_configs(plan);
    std::map<std::string, uint64_t> offsets = log_offsets(plan);
    std::vector<DevProcess> started;
    if (status.ok()) status = start_processes(plan, &started);
    size_t chains = 0;
    if (status.ok()) {
      std::unique_ptr<Executor> executor = Executor::create_uring();
      status = executor->block_on(wait_serving(plan, started, *token, &chains));
    }
    if (status.ok()) {
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
      return finish_up(plan, invocation.mount, started, describe(plan, seconds, chains));
    }
    undo_start(plan, started);
    if (attempt == kDevStartAttempts || !port_was_taken(plan, offsets)) {
      return failure(
          fmt::format("dev up: {} (everything it started is stopped again)", status.to_string()));
    }
  }
}

CliResult dev_down(const CliInvocation& invocation) {
  std::string dir = dev_dir(invocation);
  // The mount first: its daemon's requests need the cluster to answer until it is gone.
  Result<std::string> unmounted = stop_dev_mount(dir);
  if (!unmounted.ok()) {
    return failure(fmt::format("dev down: {}", unmounted.status().to_string()));
  }
  std::vector<DevProcess> all = read_pid_files(dir + "/pids");
  std::vector<DevProcess> running;
  for (const DevProcess& process : all) {
    if (dev_process_alive(process)) running.push_back(process);
  }
  // Storage first, then meta, so that no node spends its last seconds retrying a stopped
  // mgmtd (and meta's garbage collection no stopped storage node).
  std::vector<DevProcess> storage, meta, mgmtd;
  for (const DevProcess& process : running) {
    (process.name == "mgmtd" ? mgmtd : process.name == "meta" ? meta : storage).push_back(process);
  }
  std::vector<DevProcess> left;
  size_t killed = stop_dev_processes(storage, kDevStopTimeout, kDevKillTimeout, &left);
  killed += stop_dev_processes(meta, kDevStopTimeout, kDevKillTimeout, &left);
  killed += stop_dev_processes(mgmtd, kDevStopTimeout, kDevKillTimeout, &left);
  for (const DevProcess& process : all) {
    bool still = std::any_of(left.begin(), left.end(),
                             [&](const DevProcess& p) { return p.pid == process.pid; });
    std::error_code error;
    if (!still) fs::remove(dir + "/pids/" + process.name + ".pid", error);
  }
  if (!left.empty()) {
    return failure(fmt::format("dev down: {} process(es) of {} survived SIGKILL (first: {} pid {})",
                               left.size(), dir, left[0].name, left[0].pid));
  }
  std::string out =
      running.empty() && unmounted->empty()
          ? fmt::format("mica dev down: nothing was running in {}\n", dir)
          : fmt::format("mica dev down: stopped {} process{} in {}{}\n", running.size(),
                        running.size() == 1 ? "" : "es", dir,
                        killed == 0 ? "" : fmt::format(" ({} needed SIGKILL)", killed));
  if (!unmounted->empty()) out = fmt::format("mica dev down: {}\n", *unmounted) + out;
  return CliResult{.exit_code = kExitOk, .out = std::move(out), .err = {}};
}

Result<std::string> dev_mgmtd_address(const std::string& dir) {
  std::string path = dir + "/" + kDevEnvFile;
  std::ifstream file(path);
  if (!file) {
    return Status(
        StatusCode::kNotFound,
        fmt::format("{} is missing: is {} a dev cluster (mica dev up --dir {})?", path, dir, dir));
  }
  for (std::string line; std::getline(file, line);) {
    if (line.starts_with("MICA_MGMTD=")) return line.substr(11);
  }
  return Status(StatusCode::kNotFound, fmt::format("{} names no MICA_MGMTD", path));
}

}  // namespace mica::apps
