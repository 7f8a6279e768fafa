#include "chunk/engine.h"

#include <array>
#include <cstring>
#include <filesystem>

#include "async/crc32c.h"
#include "chunk/block_crc.h"

namespace mica::chunk {
namespace {

constexpr std::string_view kFormatKey = "format";

std::string parent_directory(const std::string& path) {
  std::filesystem::path p(path);
  if (!p.has_filename()) p = p.parent_path();  // "a/b/" names b
  std::string parent = p.parent_path().string();
  return parent.empty() ? "." : parent;
}

Status validate_config(const ChunkEngineConfig& c) {
  uint32_t max = c.chunk_size_max_bytes;
  if (max < size_class_bytes(0) || max > kChunkSizeLimitBytes || (max & (max - 1)) != 0)
    return Status(StatusCode::kInvalidArgument,
                  "chunk_size_max_bytes must be a power of two in 64 KiB … 64 MiB");
  if (c.group_commit_batch_max == 0 || c.updates_in_flight_max == 0 || c.list_batch_max == 0)
    return Status(StatusCode::kInvalidArgument, "a *_max limit of the chunk engine is zero");
  return Status();
}

uint64_t slot_key(const Placement& p) {
  return (uint64_t{p.size_class} << 32) | p.slot;
}

Status stale(ChunkId id, std::string_view why) {
  return Status(StatusCode::kStaleVersion, fmt::format("chunk {}: {}", id, why));
}

}  // namespace

ChunkEngine::ChunkEngine(std::string path, ChunkEngineConfig config)
    : path_(std::move(path)), config_(config), updates_(config.updates_in_flight_max) {}

ChunkEngine::~ChunkEngine() = default;

Task<Result<std::unique_ptr<ChunkEngine>>> ChunkEngine::open(std::string path,
                                                             ChunkEngineConfig config) {
  Status s = validate_config(config);
  if (!s.ok()) co_return s;
  std::array<std::string, 3> dirs = {path, path + "/meta", path + "/data"};
  for (std::string& dir : dirs) {
    auto making = ensure_directory(dir);
    s = co_await std::move(making);
    if (!s.ok()) co_return s;
  }
  // Durable names before durable contents: the target directory in its parent, meta/ and
  // data/ in the target (cheap when nothing was created).
  auto syncing_parent = sync_directory(parent_directory(path));
  s = co_await std::move(syncing_parent);
  if (!s.ok()) co_return s;
  auto syncing_target = sync_directory(path);
  s = co_await std::move(syncing_target);
  if (!s.ok()) co_return s;
  std::unique_ptr<ChunkEngine> engine(new ChunkEngine(path, config));
  auto opening_meta = engine->open_metadata();
  s = co_await std::move(opening_meta);
  if (!s.ok()) co_return s;
  // kv/ syncs its files' contents on commit, never the directory that holds their names.
  auto syncing_meta = sync_directory(path + "/meta");
  s = co_await std::move(syncing_meta);
  if (!s.ok()) co_return s;
  auto opening = SlotStore::open(path + "/data", &engine->config_);
  Result<std::unique_ptr<SlotStore>> slots = co_await std::move(opening);
  if (!slots.ok()) co_return slots.status();
  engine->slots_ = std::move(*slots);
  s = engine->scan_records();
  if (!s.ok()) {
    auto closing = engine->slots_->close();
    Status closed = co_await std::move(closing);  // the scan's failure is the one to report
    (void)closed;
    co_return s;
  }
  co_return engine;
}

Task<Status> ChunkEngine::open_metadata() {
  kv::EnvOptions options;
  options.map_size_bytes = config_.lmdb_map_size_bytes;
  options.tables_max = 4;
  options.readers_max = config_.lmdb_readers_max;
  options.group_commit_batch_max = config_.group_commit_batch_max;
  auto opening = kv::Env::open(path_ + "/meta", options);
  Result<std::unique_ptr<kv::Env>> env = co_await std::move(opening);
  if (!env.ok()) co_return env.status();
  env_ = std::move(*env);
  CO_TRY_ASSIGN(chunks_table_, env_->open_table("chunks"));
  CO_TRY_ASSIGN(target_table_, env_->open_table("target"));
  CO_TRY_ASSIGN(read_txn_, env_->begin_read());
  read_txn_->reset();
  auto checking = check_format();
  co_return co_await std::move(checking);
}

Task<Status> ChunkEngine::check_format() {
  CO_TRY(read_txn_->renew());
  Status status;
  bool has_format = false;
  {
    auto format = read_txn_->get(target_table_, kFormatKey);
    if (!format.ok()) {
      status = format.status();
    } else if (*format) {
      has_format = true;
      status = check_format_record(**format);
    } else {
      // The cursor closes before the snapshot is reset.
      auto cursor = read_txn_->cursor(chunks_table_);
      auto first = cursor.ok() ? (*cursor)->first() : cursor.status();
      if (!first.ok())
        status = first.status();
      else if (*first)
        status = Status(StatusCode::kCorruption, "target has chunk records but no format record");
    }
  }
  read_txn_->reset();
  if (!status.ok() || has_format) co_return status;
  kv::WriteRequest request;
  request.put(target_table_, kFormatKey, encode_format_record());
  co_return co_await env_->write(&request);
}

Status ChunkEngine::scan_records() {
  return with_chunks_cursor([this](kv::Cursor& cursor) -> Status {
    for (auto entry = cursor.first();; entry = cursor.next()) {
      RETURN_IF_ERROR(entry.status());
      if (!*entry) return Status();
      auto [key, value] = **entry;
      ChunkId id;
      if (!decode_chunk_key(key, &id)) {
        ++open_problems_;
        fsck_note(nullptr, fmt::format("a key of {} bytes is not a chunk id", key.size()));
        continue;
      }
      ++chunk_count_;
      Result<ChunkRecord> record = decode_record(value);
      if (!record.ok()) {
        ++open_problems_;
        fsck_note(nullptr, fmt::format("chunk {}: {}", id, record.status().message()));
        continue;
      }
      for (int which = 0; which < 2; ++which) {
        bool present = which == 0 ? record->has_committed() : record->has_pending();
        const Placement& p = which == 0 ? record->committed : record->pending;
        if (!present) continue;
        const char* name = which == 0 ? "committed" : "pending";
        if (p.slot >= slots_->slot_count(p.size_class)) {
          ++open_problems_;
          fsck_note(nullptr, fmt::format("chunk {}: {} slot {} of class {} is past the end of "
                                         "its file",
                                         id, name, p.slot, p.size_class));
        } else if (!slots_->mark_referenced(p)) {
          ++open_problems_;
          fsck_note(nullptr, fmt::format("chunk {}: {} slot {} of class {} is used twice", id, name,
                                         p.slot, p.size_class));
        }
      }
    }
  });
}

Result<std::optional<ChunkRecord>> ChunkEngine::load(ChunkId id) {
  RETURN_IF_ERROR(read_txn_->renew());
  ChunkKey key = encode_chunk_key(id);
  auto value = read_txn_->get(chunks_table_, key_view(key));
  Result<std::optional<ChunkRecord>> out = std::optional<ChunkRecord>();
  if (!value.ok()) {
    out = value.status();
  } else if (*value) {
    Result<ChunkRecord> record = decode_record(**value);  // copies out of the map
    if (record.ok())
      out = std::optional<ChunkRecord>(std::move(*record));
    else
      out = Status(StatusCode::kCorruption,
                   fmt::format("chunk {}: {}", id, record.status().message()));
  }
  read_txn_->reset();
  return out;
}

Status ChunkEngine::validate_range(uint64_t offset, uint64_t length) const {
  if (offset + length > config_.chunk_size_max_bytes)
    return Status(StatusCode::kOutOfRange,
                  fmt::format("bytes [{}, {}) lie past the chunk size limit {}", offset,
                              offset + length, config_.chunk_size_max_bytes));
  return Status();
}

Task<Status> ChunkEngine::read_verified(ChunkId id, Placement placement,
                                        const std::vector<uint32_t>* crcs, uint32_t offset,
                                        std::span<std::byte> out) {
  MICA_ASSERT(offset % kBlockBytes == 0 && out.size() % kBlockBytes == 0);
  slots_->pin(placement);
  auto reading = slots_->read(placement, offset, out);
  Status s = co_await std::move(reading);
  slots_->unpin(placement);
  if (!s.ok()) co_return s;
  // Checksummed in batches so that the blocks' CRCs are computed interleaved.
  constexpr uint32_t kBatchBlocks = 64;
  std::array<uint32_t, kBatchBlocks> got;
  for (size_t done = 0; done < out.size(); done += size_t{kBatchBlocks} * kBlockBytes) {
    uint32_t start = offset + static_cast<uint32_t>(done);
    uint32_t bytes = static_cast<uint32_t>(std::min<uint64_t>(
        {out.size() - done, uint64_t{kBatchBlocks} * kBlockBytes, placement.length_bytes - start}));
    std::span<uint32_t> batch(got.data(), block_count(bytes));
    fill_block_crcs(out.data() + done, bytes, batch);
    for (uint32_t k = 0; k < batch.size(); ++k) {
      uint32_t block = start / kBlockBytes + k;
      if (batch[k] == (*crcs)[block]) continue;
      ++counters_.checksum_mismatches;
      uint32_t from = block * kBlockBytes;
      uint32_t n = std::min(kBlockBytes, placement.length_bytes - from);
      co_return Status(StatusCode::kChecksumMismatch,
                       fmt::format("chunk {}: block {} (bytes {}..{}) does not match its CRC32C",
                                   id, block, from, from + n));
    }
  }
  co_return Status();
}

Task<Result<ReadResult>> ChunkEngine::read_version(ChunkId id, uint32_t offset,
                                                   std::span<std::byte> out, bool want_crc,
                                                   bool pending) {
  Status valid = validate_range(offset, out.size());
  if (!valid.ok()) co_return valid;
  ++counters_.reads;
  CO_TRY_ASSIGN(std::optional<ChunkRecord> record, load(id));
  if (!record || !(pending ? record->has_pending() : record->has_committed()))
    co_return Status(StatusCode::kNotFound, fmt::format("chunk {} has no {} version", id,
                                                        pending ? "pending" : "committed"));
  const Placement& placement = pending ? record->pending : record->committed;
  const std::vector<uint32_t>& crcs = pending ? record->pending_crcs : record->committed_crcs;
  uint32_t length = placement.length_bytes;
  if (offset >= length || out.empty()) co_return ReadResult{};
  uint32_t end = static_cast<uint32_t>(std::min<uint64_t>(offset + out.size(), length));
  uint32_t first = static_cast<uint32_t>(align_down(offset, kBlockBytes));
  size_t span_bytes = align_up(end, kBlockBytes) - first;
  bool in_place = reinterpret_cast<uintptr_t>(out.data()) % kDirectIoAlignment == 0 &&
                  offset == first && out.size() >= span_bytes;
  std::span<std::byte> blocks = out.first(std::min(span_bytes, out.size()));
  AlignedBuffer buffer;
  if (!in_place) {
    buffer = AlignedBuffer(span_bytes);
    blocks = buffer.span();
  }
  auto reading = read_verified(id, placement, &crcs, first, blocks);
  CO_TRY(co_await std::move(reading));
  // The blocks matched their recorded CRCs, so those CRCs describe the bytes returned.
  ReadResult result{end - offset, 0};
  if (want_crc) result.crc = range_crc(blocks.data(), first, crcs, length, offset, end);
  if (!in_place) std::memcpy(out.data(), buffer.data() + (offset - first), end - offset);
  co_return result;
}

Task<Result<size_t>> ChunkEngine::read(ChunkId id, uint32_t offset, std::span<std::byte> out) {
  auto reading = read_version(id, offset, out, false, false);
  CO_TRY_ASSIGN(ReadResult result, co_await std::move(reading));
  co_return result.bytes;
}

Task<Result<ReadResult>> ChunkEngine::read_with_crc(ChunkId id, uint32_t offset,
                                                    std::span<std::byte> out) {
  auto reading = read_version(id, offset, out, true, false);
  co_return co_await std::move(reading);
}

Task<Result<ReadResult>> ChunkEngine::read_pending(ChunkId id, uint32_t offset,
                                                   std::span<std::byte> out) {
  auto reading = read_version(id, offset, out, true, true);
  co_return co_await std::move(reading);
}

Status ChunkEngine::check_update_version(const std::optional<ChunkRecord>& record, ChunkId id,
                                         const UpdateArgs& args) const {
  uint32_t v = args.version.version;
  if (v == 0) return Status(StatusCode::kInvalidArgument, "version 0 is reserved for 'none'");
  if (record && args.version.chain_version < record->chain_version)
    return stale(id, fmt::format("chain version {} is older than the chunk's {}",
                                 args.version.chain_version, record->chain_version));
  if (args.kind == UpdateKind::kReplace) return Status();
  uint32_t committed = record ? record->committed_version : 0;
  if (record && record->has_pending()) {
    uint32_t pending = record->pending_version;
    if (v == pending) return stale(id, fmt::format("version {} is already pending", v));
    return stale(
        id, fmt::format("version {} while version {} is pending (commit or abort it)", v, pending));
  }
  if (v <= committed)
    return stale(id, fmt::format("version {} is not above committed version {}", v, committed));
  if (v != committed + 1)
    return stale(id,
                 fmt::format("version {} skips versions after committed version {}", v, committed));
  return Status();
}

Task<Status> ChunkEngine::build_content(const ChunkRecord* old, const UpdateArgs* args,
                                        uint32_t new_length, AlignedBuffer* buffer) {
  std::byte* b = buffer->data();
  uint32_t old_length = old != nullptr && old->has_committed() ? old->committed.length_bytes : 0;
  uint32_t keep = args->kind == UpdateKind::kReplace ? 0 : std::min(old_length, new_length);
  uint32_t keep_blocks = block_count(keep);
  // Blocks of the old version that the change does not cover completely are read back.
  uint32_t head_end = keep_blocks;
  uint32_t tail_begin = keep_blocks;
  if (args->kind == UpdateKind::kWrite || args->kind == UpdateKind::kWriteCommit) {
    uint64_t write_end = uint64_t{args->offset} + args->data.size();
    head_end = std::min(keep_blocks, block_count(args->offset));
    tail_begin = std::max<uint32_t>(head_end, static_cast<uint32_t>(write_end / kBlockBytes));
  }
  if (head_end > 0) {
    auto reading = read_verified(args->id, old->committed, &old->committed_crcs, 0,
                                 std::span(b, size_t{head_end} * kBlockBytes));
    CO_TRY(co_await std::move(reading));
  }
  if (tail_begin < keep_blocks) {
    auto reading =
        read_verified(args->id, old->committed, &old->committed_crcs, tail_begin * kBlockBytes,
                      std::span(b + size_t{tail_begin} * kBlockBytes,
                                size_t{keep_blocks - tail_begin} * kBlockBytes));
    CO_TRY(co_await std::move(reading));
  }
  // Whatever lies past the kept bytes (old slot garbage, the extension) becomes zeros.
  size_t aligned = align_up(new_length, kBlockBytes);
  std::memset(b + keep, 0, aligned - keep);
  if (args->kind != UpdateKind::kTruncate && !args->data.empty())
    std::memcpy(b + args->offset, args->data.data(), args->data.size());
  co_return Status();
}

Task<Result<ChunkEngine::UpdateTicket>> ChunkEngine::begin_update(ChunkId id) {
  Status admitted = co_await updates_.acquire();
  if (!admitted.ok()) co_return admitted;
  SemaphoreGuard admission(updates_);
  auto locking = locks_.lock(id);
  Result<ChunkLocks::Guard> lock = co_await std::move(locking);
  if (!lock.ok()) co_return lock.status();
  ++counters_.updates;
  co_return UpdateTicket{std::move(admission), std::move(*lock)};
}

Task<Result<ChunkInfo>> ChunkEngine::update(UpdateArgs args) {
  uint64_t end = args.kind == UpdateKind::kTruncate ? args.length_bytes
                                                    : uint64_t{args.offset} + args.data.size();
  Status valid = validate_range(0, end);
  if (!valid.ok()) co_return valid;
  auto admitting = begin_update(args.id);
  Result<UpdateTicket> ticket = co_await std::move(admitting);
  if (!ticket.ok()) co_return ticket.status();
  auto updating = update_locked(args);
  co_return co_await std::move(updating);
}

bool ChunkEngine::writes_caller_bytes(const UpdateArgs& args, uint32_t new_length) {
  return args.kind != UpdateKind::kTruncate && args.offset == 0 && args.data.size() == new_length &&
         is_direct_io_aligned(new_length) &&
         is_direct_io_aligned(reinterpret_cast<uintptr_t>(args.data.data()));
}

uint32_t ChunkEngine::new_length_of(const UpdateArgs& args, uint32_t old_length) {
  switch (args.kind) {
    case UpdateKind::kWrite:
    case UpdateKind::kWriteCommit:
      return std::max<uint32_t>(old_length, args.offset + static_cast<uint32_t>(args.data.size()));
    case UpdateKind::kTruncate:
      return args.length_bytes;
    case UpdateKind::kReplace:
      return static_cast<uint32_t>(args.data.size());
  }
  MICA_ASSERT_MSG(false, "unknown update kind");
  return 0;
}

Status ChunkEngine::verify_payload(const UpdateArgs& args, std::span<const std::byte> content,
                                   const std::vector<uint32_t>& crcs, uint32_t new_length) {
  if (args.kind == UpdateKind::kTruncate) return Status();  // carries no bytes
  uint32_t end = args.offset + static_cast<uint32_t>(args.data.size());
  uint32_t got = range_crc(content.data(), 0, crcs, new_length, args.offset, end);
  if (got == args.data_crc) return Status();
  ++counters_.payload_checksum_mismatches;
  return Status(StatusCode::kChecksumMismatch,
                fmt::format("chunk {}: the {} bytes received at offset {} have CRC32C {:#010x}, "
                            "the writer sent {:#010x}: damaged on the way, nothing stored",
                            args.id, args.data.size(), args.offset, got, args.data_crc));
}

Task<Result<ChunkInfo>> ChunkEngine::update_locked(UpdateArgs args) {
  CO_TRY_ASSIGN(std::optional<ChunkRecord> record, load(args.id));
  CO_TRY(check_update_version(record, args.id, args));
  uint32_t old_length = record && record->has_committed() ? record->committed.length_bytes : 0;
  uint32_t new_length = new_length_of(args, old_length);
  // The new content: the caller's bytes as they are when they are the whole new version and
  // O_DIRECT can take them (no old byte survives, no copy, no allocation); otherwise built
  // in a buffer from the old version and the change.
  std::span<const std::byte> content = args.data;
  AlignedBuffer buffer;
  if (!writes_caller_bytes(args, new_length)) {
    buffer = AlignedBuffer(align_up(new_length, kBlockBytes));
    auto building = build_content(record ? &*record : nullptr, &args, new_length, &buffer);
    CO_TRY(co_await std::move(building));
    content = std::span<const std::byte>(buffer.data(), buffer.size());
  }
  // The block CRCs the record will hold also verify the writer's payload CRC: no second pass
  // over the data, and nothing allocated or written yet when the bytes turn out damaged.
  std::vector<uint32_t> crcs(block_count(new_length));
  uint32_t checksum = compute_block_crcs(content.data(), new_length, crcs);
  CO_TRY(verify_payload(args, content, crcs, new_length));
  auto storing =
      store_version(args, std::move(record), content, std::move(crcs), new_length, checksum);
  co_return co_await std::move(storing);
}

Task<Result<ChunkInfo>> ChunkEngine::store_version(UpdateArgs args,
                                                   std::optional<ChunkRecord> record,
                                                   std::span<const std::byte> content,
                                                   std::vector<uint32_t> crcs, uint32_t new_length,
                                                   uint32_t checksum) {
  auto allocating = slots_->allocate(new_length);
  CO_TRY_ASSIGN(Placement placement, co_await std::move(allocating));
  placement.checksum = checksum;
  in_flight_slots_.insert(slot_key(placement));
  Status s;
  if (new_length > 0) {
    auto writing = slots_->write(placement, content);
    s = co_await std::move(writing);
  }
  ChunkRecord next = record.value_or(ChunkRecord{});
  if (args.kind == UpdateKind::kReplace || args.kind == UpdateKind::kWriteCommit) {
    next.committed_version = args.version.version;
    next.committed = placement;
    next.committed_crcs = std::move(crcs);
    next.committed_tag = args.version.tag;
    next.pending_version = 0;
    next.pending = {};
    next.pending_crcs.clear();
    next.pending_tag = {};
    next.chain_version = args.kind == UpdateKind::kReplace
                             ? args.version.chain_version
                             : std::max(next.chain_version, args.version.chain_version);
  } else {
    next.pending_version = args.version.version;
    next.pending = placement;
    next.pending_crcs = std::move(crcs);
    next.pending_tag = args.version.tag;
  }
  if (s.ok()) {
    auto putting = put_record(args.id, &next);
    s = co_await std::move(putting);
  }
  in_flight_slots_.erase(slot_key(placement));
  if (!s.ok()) {
    // A failed LMDB commit may still have reached the disk (fsync error after the write):
    // then the record points at the slot, so it is kept until a restart rebuilds the map.
    bool clean = s.code() != StatusCode::kIoError && s.code() != StatusCode::kInternal;
    if (clean) slots_->release(placement);
    co_return s;
  }
  if (!record) ++chunk_count_;
  // Versions the new record no longer names are unreachable only now that it is durable.
  if ((args.kind == UpdateKind::kReplace || args.kind == UpdateKind::kWriteCommit) && record) {
    if (record->has_committed()) slots_->release(record->committed);
    if (record->has_pending()) slots_->release(record->pending);
  }
  co_return next.info(args.id);
}

Task<Status> ChunkEngine::put_record(ChunkId id, const ChunkRecord* record) {
  kv::WriteRequest request;
  ChunkKey key = encode_chunk_key(id);
  request.put(chunks_table_, key_view(key), encode_record(*record));
  co_return co_await env_->write(&request);
}

Task<Status> ChunkEngine::erase_record(ChunkId id) {
  kv::WriteRequest request;
  ChunkKey key = encode_chunk_key(id);
  request.erase(chunks_table_, key_view(key));
  co_return co_await env_->write(&request);
}

Task<Result<ChunkInfo>> ChunkEngine::write(ChunkId id, uint32_t offset,
                                           std::span<const std::byte> data, uint32_t data_crc,
                                           UpdateVersion v) {
  auto updating = update(UpdateArgs{UpdateKind::kWrite, id, offset, 0, data, data_crc, v});
  co_return co_await std::move(updating);
}

Task<Result<ChunkInfo>> ChunkEngine::write_and_commit(ChunkId id, uint32_t offset,
                                                      std::span<const std::byte> data,
                                                      uint32_t data_crc, UpdateVersion v) {
  auto updating = update(UpdateArgs{UpdateKind::kWriteCommit, id, offset, 0, data, data_crc, v});
  co_return co_await std::move(updating);
}

Task<Result<ChunkInfo>> ChunkEngine::truncate(ChunkId id, uint32_t length_bytes, UpdateVersion v) {
  auto updating = update(UpdateArgs{UpdateKind::kTruncate, id, 0, length_bytes, {}, 0, v});
  co_return co_await std::move(updating);
}

Task<Result<ChunkInfo>> ChunkEngine::replace(ChunkId id, std::span<const std::byte> data,
                                             uint32_t data_crc, UpdateVersion v) {
  auto updating = update(UpdateArgs{UpdateKind::kReplace, id, 0, 0, data, data_crc, v});
  co_return co_await std::move(updating);
}

}  // namespace mica::chunk
