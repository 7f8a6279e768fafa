// Node and target identities: the stable id mgmtd assigned and the random identity drawn at
// the first start, kept in a small file of a data directory (a node's, or a target's).
//
// A node (one server process) keeps `node_identity` in its data directory; a target keeps
// `target_identity` in its own directory, so a new disk mounted in the same place carries a
// new identity and is never mistaken for the old target. The identity is 128 random bits
// in hex (Backend::random_u64: getrandom on io_uring, the seeded generator in the
// simulator); the id is 0 until mgmtd assigns one, and save_*() records it. Each write is
// crash-safe: the new content goes to a temp file that is fsynced, renamed over the old
// one and the directory fsynced, so a crash leaves the old file or the new one whole; a
// leftover (possibly torn) temp file is ignored and removed. The file carries a CRC32C, so
// a corrupted one is kCorruption, never a silently different identity.
//
// Every call goes through the runtime's file calls (async/file.h), so it runs on io_uring
// and in the simulator alike. Coroutines on the caller's executor; each suspends for its
// I/O. The directory must exist.
#pragma once

#include <cstdint>
#include <string>

#include "async/task.h"
#include "craq/types.h"

namespace mica::craq {

inline constexpr const char* kNodeIdentityFile = "node_identity";
inline constexpr const char* kTargetIdentityFile = "target_identity";
// The identity file is a few lines; anything longer is not one of ours.
inline constexpr size_t kIdentityFileBytesMax = 1024;

struct NodeIdentity {
  NodeId node = 0;  // 0: mgmtd has not assigned one yet
  std::string identity;
  bool operator==(const NodeIdentity&) const = default;
};

struct TargetIdentity {
  TargetId target = 0;  // 0: mgmtd has not assigned one yet
  std::string identity;
  bool operator==(const TargetIdentity&) const = default;
};

// Reads dir/node_identity, or creates it with a new random identity and node 0.
Task<Result<NodeIdentity>> load_or_create_node_identity(std::string dir);
// Replaces dir/node_identity (crash-safely) with identity, e.g. once mgmtd assigned the id.
Task<Status> save_node_identity(std::string dir, NodeIdentity identity);

Task<Result<TargetIdentity>> load_or_create_target_identity(std::string dir);
Task<Status> save_target_identity(std::string dir, TargetIdentity identity);

// A new random identity (32 hex digits) from the current executor's backend.
std::string new_identity();

}  // namespace mica::craq
