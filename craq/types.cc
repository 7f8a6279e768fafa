// Names of the vocabulary's enums and lookups in a routing snapshot (craq/types.h).
#include "craq/types.h"

#include <algorithm>

namespace mica::craq {

std::string_view node_kind_name(NodeKind kind) {
  switch (kind) {
    case NodeKind::kStorage: return "storage";
    case NodeKind::kMeta: return "meta";
    case NodeKind::kClient: return "client";
  }
  return "unknown";
}

std::string_view local_state_name(LocalState state) {
  switch (state) {
    case LocalState::kUpToDate: return "up-to-date";
    case LocalState::kOnline: return "online";
    case LocalState::kOffline: return "offline";
  }
  return "unknown";
}

std::string_view public_state_name(PublicState state) {
  switch (state) {
    case PublicState::kServing: return "serving";
    case PublicState::kSyncing: return "syncing";
    case PublicState::kWaiting: return "waiting";
    case PublicState::kLastServing: return "lastsrv";
    case PublicState::kOffline: return "offline";
  }
  return "unknown";
}

namespace {

// The snapshot's vectors are sorted by id, so a lookup is a binary search.
template <class T, class Id>
const T* find_by_id(const std::vector<T>& items, Id id) {
  auto it = std::lower_bound(items.begin(), items.end(), id,
                             [](const T& item, Id wanted) { return item.id < wanted; });
  return it != items.end() && it->id == id ? &*it : nullptr;
}

}  // namespace

const NodeInfo* find_node(const RoutingSnapshot& routing, NodeId id) {
  return find_by_id(routing.nodes, id);
}
const TargetInfo* find_target(const RoutingSnapshot& routing, TargetId id) {
  return find_by_id(routing.targets, id);
}
const ChainInfo* find_chain(const RoutingSnapshot& routing, ChainId id) {
  return find_by_id(routing.chains, id);
}
const ChainTable* find_table(const RoutingSnapshot& routing, ChainTableId id) {
  return find_by_id(routing.tables, id);
}

}  // namespace mica::craq
