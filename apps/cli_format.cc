#include "apps/cli_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "apps/json_writer.h"

namespace mica::apps {
namespace {

using craq::ChainInfo;
using craq::LocalState;
using craq::PublicState;
using craq::RoutingSnapshot;
using craq::StatusResponse;

// The replica count of the table each chain belongs to.
std::map<craq::ChainId, uint32_t> replicas_by_chain(const RoutingSnapshot& routing) {
  std::map<craq::ChainId, uint32_t> out;
  for (const craq::ChainTable& table : routing.tables) {
    for (craq::ChainId chain : table.chains) out[chain] = table.replica_count;
  }
  return out;
}

std::map<craq::ChainId, craq::ChainTableId> table_by_chain(const RoutingSnapshot& routing) {
  std::map<craq::ChainId, craq::ChainTableId> out;
  for (const craq::ChainTable& table : routing.tables) {
    for (craq::ChainId chain : table.chains) out[chain] = table.id;
  }
  return out;
}

const craq::NodeStatus* find_node_status(const StatusResponse& status, craq::NodeId id) {
  for (const craq::NodeStatus& node : status.nodes) {
    if (node.node == id) return &node;
  }
  return nullptr;
}

const craq::TargetStatus* find_target_status(const StatusResponse& status, craq::TargetId id) {
  for (const craq::TargetStatus& target : status.targets) {
    if (target.target == id) return &target;
  }
  return nullptr;
}

// The target's public state in its chain, if it is in one.
const craq::ChainTarget* find_chain_target(const RoutingSnapshot& routing,
                                           const craq::TargetInfo& target) {
  const ChainInfo* chain = craq::find_chain(routing, target.chain);
  if (chain == nullptr) return nullptr;
  for (const craq::ChainTarget& member : chain->targets) {
    if (member.target == target.id) return &member;
  }
  return nullptr;
}

std::string chain_members(const ChainInfo& chain) {
  std::string out;
  for (const craq::ChainTarget& member : chain.targets) {
    if (!out.empty()) out += ' ';
    out += fmt::format("{}:{}", member.target, craq::public_state_name(member.state));
  }
  return out.empty() ? "-" : out;
}

std::string age_text(uint64_t ms) {
  if (ms < 10'000) return fmt::format("{:.1f}s ago", static_cast<double>(ms) / 1000.0);
  if (ms < 3'600'000) return fmt::format("{}s ago", ms / 1000);
  return fmt::format("{}h ago", ms / 3'600'000);
}

// Counts of what `mica status` summarises.
struct Summary {
  size_t nodes_alive = 0;
  std::map<LocalState, size_t> local;
  size_t targets_in_chains = 0;
  std::map<PublicState, size_t> states;
  std::map<ChainHealth, size_t> health;
  std::vector<const ChainInfo*> unhealthy;  // degraded and blocked chains, by id
};

Summary summarize(const StatusResponse& status) {
  Summary s;
  for (const craq::NodeStatus& node : status.nodes) s.nodes_alive += node.alive;
  for (const craq::TargetStatus& target : status.targets) ++s.local[target.local];
  for (const craq::TargetInfo& target : status.routing.targets)
    s.targets_in_chains += target.chain != 0;
  std::map<craq::ChainId, uint32_t> replicas = replicas_by_chain(status.routing);
  for (const ChainInfo& chain : status.routing.chains) {
    for (const craq::ChainTarget& member : chain.targets) ++s.states[member.state];
    ChainHealth health = chain_health(chain, replicas[chain.id]);
    ++s.health[health];
    if (health != ChainHealth::kHealthy) s.unhealthy.push_back(&chain);
  }
  return s;
}

template <class Enum>
std::string counts_text(const std::map<Enum, size_t>& counts, Enum first, Enum last,
                        std::string_view (*name)(Enum)) {
  std::string out;
  for (int i = static_cast<int>(first); i <= static_cast<int>(last); ++i) {
    Enum e = static_cast<Enum>(i);
    auto it = counts.find(e);
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {}", it == counts.end() ? 0 : it->second, name(e));
  }
  return out;
}

std::string status_text(const StatusResponse& status) {
  const RoutingSnapshot& routing = status.routing;
  Summary s = summarize(status);
  std::string out = fmt::format("routing version {}\n", routing.version);
  out += fmt::format("nodes    {} ({} alive, {} dead)\n", routing.nodes.size(), s.nodes_alive,
                     routing.nodes.size() - std::min(routing.nodes.size(), s.nodes_alive));
  out += fmt::format(
      "targets  {} ({}; {} in chains)\n", routing.targets.size(),
      counts_text(s.local, LocalState::kUpToDate, LocalState::kOffline, craq::local_state_name),
      s.targets_in_chains);
  out += fmt::format(
      "chains   {} ({}) in {} table{}\n", routing.chains.size(),
      counts_text(s.health, ChainHealth::kHealthy, ChainHealth::kBlocked, chain_health_name),
      routing.tables.size(), routing.tables.size() == 1 ? "" : "s");
  out += fmt::format("replicas {}\n", counts_text(s.states, PublicState::kServing,
                                                  PublicState::kOffline, craq::public_state_name));
  if (s.unhealthy.empty()) return out;
  std::map<craq::ChainId, uint32_t> replicas = replicas_by_chain(routing);
  TextTable table({"CHAIN", "VERSION", "HEALTH", "TARGETS"});
  for (const ChainInfo* chain : s.unhealthy) {
    table.add_row({fmt::format("{}", chain->id), fmt::format("{}", chain->version),
                   std::string(chain_health_name(chain_health(*chain, replicas[chain->id]))),
                   chain_members(*chain)});
  }
  return out + "\nchains not at full strength:\n" + table.render();
}

void json_counts_of_states(JsonWriter* w, const Summary& s) {
  w->key("local_states").begin_object();
  for (LocalState e : {LocalState::kUpToDate, LocalState::kOnline, LocalState::kOffline}) {
    auto it = s.local.find(e);
    w->key(craq::local_state_name(e)).value(uint64_t{it == s.local.end() ? 0 : it->second});
  }
  w->end_object().key("public_states").begin_object();
  for (int i = 0; i <= static_cast<int>(PublicState::kOffline); ++i) {
    auto e = static_cast<PublicState>(i);
    auto it = s.states.find(e);
    w->key(craq::public_state_name(e)).value(uint64_t{it == s.states.end() ? 0 : it->second});
  }
  w->end_object().key("chain_health").begin_object();
  for (ChainHealth e : {ChainHealth::kHealthy, ChainHealth::kDegraded, ChainHealth::kBlocked}) {
    auto it = s.health.find(e);
    w->key(chain_health_name(e)).value(uint64_t{it == s.health.end() ? 0 : it->second});
  }
  w->end_object();
}

void json_node(JsonWriter* w, const craq::NodeInfo& node, const craq::NodeStatus* status) {
  w->begin_object();
  w->key("id").value(node.id).key("kind").value(craq::node_kind_name(node.kind));
  w->key("host").value(node.host_name).key("address").value(node.rpc_address);
  w->key("tags").begin_array();
  for (const std::string& tag : node.tags) w->value(tag);
  w->end_array();
  w->key("alive").value(status != nullptr && status->alive);
  w->key("heartbeat_age_ms");
  if (status != nullptr) {
    w->value(status->heartbeat_age_ms);
  } else {
    w->null();
  }
  w->key("registered_at_ms").value(node.registered_at_ms);
  w->end_object();
}

void json_target(JsonWriter* w, const StatusResponse& status, const craq::TargetInfo& target) {
  const craq::TargetStatus* local = find_target_status(status, target.id);
  const craq::ChainTarget* member = find_chain_target(status.routing, target);
  w->begin_object();
  w->key("id").value(target.id).key("node").value(target.node);
  w->key("disk").value(target.disk).key("chain").value(target.chain);
  w->key("state");
  if (member != nullptr) {
    w->value(craq::public_state_name(member->state));
  } else {
    w->null();
  }
  w->key("local").value(craq::local_state_name(local ? local->local : LocalState::kOffline));
  w->key("reported_chain_version").value(local ? local->reported_chain_version : 0);
  w->key("admin_offline").value(target.admin_offline);
  w->key("capacity_bytes").value(target.capacity_bytes);
  w->key("used_bytes").value(target.used_bytes);
  w->end_object();
}

void json_chain(JsonWriter* w, const ChainInfo& chain, craq::ChainTableId table,
                uint32_t replica_count) {
  w->begin_object();
  w->key("id").value(chain.id).key("version").value(chain.version).key("table").value(table);
  w->key("health").value(chain_health_name(chain_health(chain, replica_count)));
  w->key("targets").begin_array();
  for (const craq::ChainTarget& member : chain.targets) {
    w->begin_object().key("target").value(member.target);
    w->key("state").value(craq::public_state_name(member.state)).end_object();
  }
  w->end_array().end_object();
}

void json_table(JsonWriter* w, const craq::ChainTable& table) {
  w->begin_object().key("id").value(table.id).key("version").value(table.version);
  w->key("replica_count").value(table.replica_count).key("chains").begin_array();
  for (craq::ChainId chain : table.chains) w->value(chain);
  w->end_array().end_object();
}

void json_nodes(JsonWriter* w, const StatusResponse& status) {
  w->begin_array();
  for (const craq::NodeInfo& node : status.routing.nodes) {
    json_node(w, node, find_node_status(status, node.id));
  }
  w->end_array();
}

void json_targets(JsonWriter* w, const StatusResponse& status) {
  w->begin_array();
  for (const craq::TargetInfo& target : status.routing.targets) json_target(w, status, target);
  w->end_array();
}

void json_chains(JsonWriter* w, const RoutingSnapshot& routing) {
  std::map<craq::ChainId, uint32_t> replicas = replicas_by_chain(routing);
  std::map<craq::ChainId, craq::ChainTableId> tables = table_by_chain(routing);
  w->begin_array();
  for (const ChainInfo& chain : routing.chains) {
    json_chain(w, chain, tables[chain.id], replicas[chain.id]);
  }
  w->end_array();
}

std::string status_json(const StatusResponse& status,
                        const std::vector<NodeProgress>* storage = nullptr) {
  Summary s = summarize(status);
  JsonWriter w;
  w.begin_object().key("routing_version").value(status.routing.version);
  w.key("summary").begin_object();
  w.key("nodes").value(uint64_t{status.routing.nodes.size()});
  w.key("nodes_alive").value(uint64_t{s.nodes_alive});
  w.key("targets").value(uint64_t{status.routing.targets.size()});
  w.key("targets_in_chains").value(uint64_t{s.targets_in_chains});
  w.key("chains").value(uint64_t{status.routing.chains.size()});
  w.key("tables").value(uint64_t{status.routing.tables.size()});
  json_counts_of_states(&w, s);
  w.end_object();
  w.key("nodes");
  json_nodes(&w, status);
  w.key("targets");
  json_targets(&w, status);
  w.key("chains");
  json_chains(&w, status.routing);
  w.key("tables").begin_array();
  for (const craq::ChainTable& table : status.routing.tables) json_table(&w, table);
  w.end_array();
  if (storage != nullptr) {
    w.key("storage");
    json_storage_progress(&w, *storage);
  }
  w.end_object();
  return w.text() + "\n";
}

}  // namespace

std::string_view chain_health_name(ChainHealth health) {
  switch (health) {
    case ChainHealth::kHealthy:
      return "healthy";
    case ChainHealth::kDegraded:
      return "degraded";
    case ChainHealth::kBlocked:
      return "blocked";
  }
  return "unknown";
}

ChainHealth chain_health(const ChainInfo& chain, uint32_t replica_count) {
  size_t serving = 0;
  for (const craq::ChainTarget& member : chain.targets)
    serving += member.state == PublicState::kServing;
  if (serving == 0) return ChainHealth::kBlocked;
  if (serving < chain.targets.size() || serving < replica_count) return ChainHealth::kDegraded;
  return ChainHealth::kHealthy;
}

TextTable::TextTable(std::vector<std::string> header) {
  rows_.push_back(std::move(header));
}

void TextTable::add_row(std::vector<std::string> row) {
  rows_.push_back(std::move(row));
}

std::string TextTable::render() const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string format_bytes(uint64_t bytes) {
  static constexpr std::string_view kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) value /= 1024, ++unit;
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string format_status(const StatusResponse& status, bool json) {
  return json ? status_json(status) : status_text(status);
}

std::string format_status(const StatusResponse& status, bool json,
                          const std::vector<NodeProgress>& storage) {
  if (json) return status_json(status, &storage);
  return status_text(status) + "\nstorage targets:\n" + storage_progress_text(storage);
}

std::string format_nodes(const StatusResponse& status, bool json) {
  if (json) {
    JsonWriter w;
    json_nodes(&w, status);
    return w.text() + "\n";
  }
  std::map<craq::NodeId, size_t> targets;
  for (const craq::TargetInfo& target : status.routing.targets) ++targets[target.node];
  TextTable table({"NODE", "KIND", "HOST", "ADDRESS", "ALIVE", "HEARTBEAT", "TARGETS"});
  for (const craq::NodeInfo& node : status.routing.nodes) {
    const craq::NodeStatus* s = find_node_status(status, node.id);
    table.add_row({fmt::format("{}", node.id), std::string(craq::node_kind_name(node.kind)),
                   node.host_name.empty() ? "-" : node.host_name, node.rpc_address,
                   s != nullptr && s->alive ? "yes" : "no",
                   s != nullptr ? age_text(s->heartbeat_age_ms) : "never",
                   fmt::format("{}", targets[node.id])});
  }
  return table.render();
}

std::string format_targets(const StatusResponse& status, bool json) {
  if (json) {
    JsonWriter w;
    json_targets(&w, status);
    return w.text() + "\n";
  }
  TextTable table({"TARGET", "NODE", "CHAIN", "STATE", "LOCAL", "USED", "CAPACITY", "DISK"});
  for (const craq::TargetInfo& target : status.routing.targets) {
    const craq::TargetStatus* local = find_target_status(status, target.id);
    const craq::ChainTarget* member = find_chain_target(status.routing, target);
    std::string state = member ? std::string(craq::public_state_name(member->state)) : "-";
    if (target.admin_offline) state += " (admin)";
    table.add_row({fmt::format("{}", target.id), fmt::format("{}", target.node),
                   target.chain == 0 ? "-" : fmt::format("{}", target.chain), state,
                   std::string(craq::local_state_name(local ? local->local : LocalState::kOffline)),
                   format_bytes(target.used_bytes), format_bytes(target.capacity_bytes),
                   target.disk.empty() ? "-" : target.disk});
  }
  return table.render();
}

std::string format_chains(const StatusResponse& status, bool json) {
  if (json) {
    JsonWriter w;
    json_chains(&w, status.routing);
    return w.text() + "\n";
  }
  std::map<craq::ChainId, uint32_t> replicas = replicas_by_chain(status.routing);
  std::map<craq::ChainId, craq::ChainTableId> tables = table_by_chain(status.routing);
  TextTable table({"CHAIN", "TABLE", "VERSION", "HEALTH", "TARGETS (head to tail)"});
  for (const ChainInfo& chain : status.routing.chains) {
    table.add_row({fmt::format("{}", chain.id), fmt::format("{}", tables[chain.id]),
                   fmt::format("{}", chain.version),
                   std::string(chain_health_name(chain_health(chain, replicas[chain.id]))),
                   chain_members(chain)});
  }
  return table.render();
}

std::string format_created_table(const craq::CreateChainTableResponse& response, bool json) {
  const craq::ChainTable& t = response.table;
  if (json) {
    JsonWriter w;
    w.begin_object().key("table");
    json_table(&w, t);
    w.key("chains").begin_array();
    for (const ChainInfo& chain : response.chains) json_chain(&w, chain, t.id, t.replica_count);
    w.end_array().end_object();
    return w.text() + "\n";
  }
  std::string out = fmt::format("created chain table {} (version {}): {} chains of {} replicas\n",
                                t.id, t.version, t.chains.size(), t.replica_count);
  TextTable table({"CHAIN", "VERSION", "TARGETS (head to tail)"});
  for (const ChainInfo& chain : response.chains) {
    table.add_row(
        {fmt::format("{}", chain.id), fmt::format("{}", chain.version), chain_members(chain)});
  }
  return out + table.render();
}

std::string format_target_offline(craq::TargetId target, bool offline,
                                  const craq::SetTargetOfflineResponse& response, bool json) {
  if (json) {
    JsonWriter w;
    w.begin_object().key("target").value(target).key("admin_offline").value(offline);
    w.key("routing_version").value(response.routing_version).end_object();
    return w.text() + "\n";
  }
  return fmt::format("target {} {} (routing version {})\n", target,
                     offline ? "taken offline" : "back online", response.routing_version);
}

std::string format_replaced(craq::TargetId old_target, craq::TargetId new_target,
                            const craq::ReplaceTargetResponse& response, bool json) {
  const ChainInfo& chain = response.chain;
  if (json) {
    JsonWriter w;
    w.begin_object().key("old_target").value(old_target).key("new_target").value(new_target);
    w.key("chain");
    json_chain(&w, chain, 0, 0);
    w.end_object();
    return w.text() + "\n";
  }
  return fmt::format("target {} replaces {} in chain {} (version {}): {}\n", new_target, old_target,
                     chain.id, chain.version, chain_members(chain));
}

std::string format_promoted(const craq::PromoteTargetResponse& response, bool json) {
  const ChainInfo& chain = response.chain;
  if (json) {
    JsonWriter w;
    w.begin_object().key("chain");
    json_chain(&w, chain, 0, 0);
    w.key("warning").value(response.warning).end_object();
    return w.text() + "\n";
  }
  std::string out =
      fmt::format("chain {} (version {}): {}\n", chain.id, chain.version, chain_members(chain));
  if (!response.warning.empty()) out += fmt::format("WARNING: {}\n", response.warning);
  return out;
}

}  // namespace mica::apps
