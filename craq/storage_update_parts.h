// Helpers shared by the update path's head side (storage_update.cc) and member side
// (storage_forward.cc): chunk ids and states between wire and engine, request checks, the
// aligned buffers updates stage bytes in, and pulling a peer's buffer into one.
//
// Internal to craq/storage_update*.cc and storage_forward.cc. Runs on the server's executor;
// pull() and read_whole_pending() suspend (network, disk), the rest does not.
#pragma once

#include <optional>
#include <span>

#include "async/file.h"
#include "craq/buffer_pool.h"
#include "craq/storage_target.h"
#include "net/connection.h"

namespace mica::craq::update_parts {

inline chunk::ChunkId chunk_id(ChunkRef ref) {
  return chunk::ChunkId{.inode = ref.inode, .index = ref.index};
}

inline ChunkState state_of(const chunk::ChunkInfo& info) {
  return ChunkState{.version = info.committed_version,
                    .length_bytes = info.length_bytes,
                    .checksum = info.checksum};
}

inline chunk::UpdateTag tag_of(const UpdateIO& io) {
  return chunk::UpdateTag{.client_id = io.client_id, .request_id = io.request_id};
}

// The engine's version of an update made under target's current chain version.
inline chunk::UpdateVersion version_of(const StorageTarget* target, uint32_t version,
                                       const UpdateIO& io) {
  return chunk::UpdateVersion{.version = version,
                              .chain_version = static_cast<uint32_t>(target->view().version),
                              .tag = tag_of(io)};
}

// Bytes an update holds while it runs, in a buffer aligned for O_DIRECT (so the engine can
// write a whole new chunk as it is).
class Staged {
 public:
  Staged() = default;
  // length bytes from pool (which outlives this), none when 0.
  Staged(BufferPool* pool, size_t length);
  std::span<std::byte> bytes() { return {buffer_.data(), length_}; }
  std::span<const std::byte> view() const { return {buffer_.data(), length_}; }

 private:
  PooledBuffer buffer_;
  size_t length_ = 0;
};

// Checks a client's update against the file's chunk size and the target's limits.
Status validate_update(const UpdateIO& io, const net::RemoteBuffer& payload,
                       const chunk::ChunkEngineConfig& engine);

// The chunk's info, nullopt when the target has no such chunk.
Result<std::optional<chunk::ChunkInfo>> stat_of(chunk::ChunkEngine& engine, chunk::ChunkId id);

// Pulls the peer's buffer (remote) into out, checking that the lengths agree.
Task<Status> pull(net::Connection* connection, net::RemoteBuffer remote, std::span<std::byte> out,
                  TimePoint deadline);

// Reads the chunk's whole pending version into *out; returns its CRC32C.
Task<Result<uint32_t>> read_whole_pending(chunk::ChunkEngine* engine, chunk::ChunkId id,
                                          BufferPool* pool, Staged* out);

}  // namespace mica::craq::update_parts
