#include "meta/truncate.h"

#include "async/hop.h"
#include "craq/storage_client.h"
#include "meta/layout.h"

namespace mica::meta {

Task<Status> truncate_chunks(craq::StorageClient* storage, Executor* storage_executor,
                             const craq::RoutingSnapshot& routing, const Inode& inode,
                             uint64_t new_length, TimePoint deadline) {
  const Layout layout = inode.layout;
  const InodeId id = inode.id;
  if (layout.chunk_size_bytes == 0) {
    co_return Status(StatusCode::kInvalidArgument,
                     fmt::format("inode {:#x} has no layout to truncate", id));
  }
  const craq::ChainTable* table = craq::find_table(routing, layout.table);
  if (table == nullptr) {
    co_return Status(
        StatusCode::kNotFound,
        fmt::format("routing has no chain table {} (the layout of {:#x})", layout.table, id));
  }
  Result<std::vector<craq::ChainId>> chains = layout_chains(layout, *table);
  CO_TRY(chains);
  const uint64_t chunk = layout.chunk_size_bytes;
  const uint64_t first_removed = (new_length + chunk - 1) / chunk;
  if (first_removed > UINT32_MAX) co_return Status::ok_status();  // no chunk index that high
  Executor* home = Executor::current();
  // The storage client (its pool, its routing) belongs to storage_executor: its calls run there.
  auto removing = storage->remove_from(*chains, id, static_cast<uint32_t>(first_removed), deadline);
  auto removing_there = mica::hop(home, storage_executor, std::move(removing));
  CO_TRY(co_await std::move(removing_there));
  const uint32_t inside = static_cast<uint32_t>(new_length % chunk);
  if (inside == 0) co_return Status::ok_status();
  const uint32_t index = static_cast<uint32_t>(new_length / chunk);
  auto truncating =
      storage->truncate(chunk_chain(*chains, index), craq::ChunkRef{.inode = id, .index = index},
                        inside, layout.chunk_size_bytes, deadline);
  auto truncating_there = mica::hop(home, storage_executor, std::move(truncating));
  Result<craq::ChunkState> cut = co_await std::move(truncating_there);
  // A hole at the new end has nothing to cut.
  if (!cut.ok() && cut.status().code() != StatusCode::kNotFound) co_return cut.status();
  co_return Status::ok_status();
}

}  // namespace mica::meta
