// A shard's tables in kv/ and their key and value encodings (docs/meta.md, "Schema").
//
// Keys are big-endian so byte order is numeric order: a directory's entries are one range
// (parent id ‖ name), a file's xattrs one range (inode ‖ name), a file's sessions one range
// (inode ‖ session). Values are net/serde.h messages behind one
// format byte (kRecordFormat); a value whose format byte or body does not decode is
// kCorruption, naming the table and key, never a crash. The "shard" table holds the
// shard's own record (format version, shard id, next inode sequence, the rotating layout
// start). Pure functions: any thread, never suspend.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kv/kv.h"
#include "meta/meta_service.h"
#include "meta/types.h"

namespace mica::meta {

inline constexpr uint8_t kRecordFormat = 1;
// 2: remembered answers (the requests table) are records like every other value; version 1
// kept them as bare messages. A version-1 environment is still read (its old answers by
// decode_answer) and its record is rewritten as version 2 when it opens.
inline constexpr uint32_t kShardFormatVersion = 2;
inline constexpr uint32_t kShardFormatVersionOldest = 1;  // the oldest this build opens

// Table names, opened by Shard::open in this order.
inline constexpr std::string_view kShardTable = "shard";
inline constexpr std::string_view kInodeTable = "inodes";
inline constexpr std::string_view kEntryTable = "entries";
inline constexpr std::string_view kXattrTable = "xattrs";
inline constexpr std::string_view kSessionTable = "sessions";
inline constexpr std::string_view kGcTable = "gc";
inline constexpr std::string_view kRequestTable = "requests";  // answers of recent retries
inline constexpr std::string_view kStepTable = "steps";        // coordinator steps applied

struct ShardTables {
  kv::Table shard = 0;
  kv::Table inodes = 0;
  kv::Table entries = 0;
  kv::Table xattrs = 0;
  kv::Table sessions = 0;
  kv::Table gc = 0;
  kv::Table requests = 0;
  kv::Table steps = 0;
};
Result<ShardTables> open_shard_tables(kv::Env* env);

// The shard's own record, under key "shard".
struct ShardRecord {
  uint32_t format_version = kShardFormatVersion;
  ShardId shard = 0;
  uint64_t next_sequence = 1;  // the next inode sequence to hand out
  uint32_t next_layout_start = 0;
  uint64_t next_session = 1;  // the next session sequence (ids carry the shard as inodes do)
  static constexpr std::string_view kTypeName = "ShardRecord";
  MICA_FIELDS(ShardRecord, format_version, shard, next_sequence, next_layout_start, next_session)
};

// An open handle (key: inode ‖ session).
struct SessionRecord {
  InodeId inode = 0;
  SessionId session = 0;
  ClientId client = 0;
  OpenFlags flags;
  uint64_t length = 0;  // the longest the writer reported
  int64_t opened_ns = 0;
  Credentials cred;  // the opener's: a write through the session clears set-id bits by it
  static constexpr std::string_view kTypeName = "SessionRecord";
  MICA_FIELDS(SessionRecord, inode, session, client, flags, length, opened_ns, cred)
};

// A file whose chunks wait for removal (key: queue sequence).
struct GcRecord {
  InodeId inode = 0;
  Layout layout;
  uint64_t length = 0;  // bytes to reclaim (the length when queued)
  int64_t queued_ns = 0;
  static constexpr std::string_view kTypeName = "GcRecord";
  MICA_FIELDS(GcRecord, inode, layout, length, queued_ns)
};

// Big-endian integers and the composite keys.
std::string be64(uint64_t value);
uint64_t read_be64(std::string_view bytes);  // the first 8 bytes; asserts there are 8
std::string inode_key(InodeId inode);
std::string entry_key(InodeId parent, std::string_view name);
std::string entry_prefix(InodeId parent);  // every entry of parent starts with it
std::string xattr_key(InodeId inode, std::string_view name);
std::string xattr_prefix(InodeId inode);
std::string session_key(InodeId inode, SessionId session);
std::string session_prefix(InodeId inode);
std::string gc_key(uint64_t sequence);
std::string request_key(RequestTag tag);
// kCorruption for a key too short for its table.
Result<std::pair<InodeId, std::string_view>> split_entry_key(std::string_view key);

// The key of the shard's own record in the shard table.
inline constexpr std::string_view kShardRecordKey = "shard";

// Values: kRecordFormat then the message. decode_record's `what` names the record in the
// kCorruption message ("inode 0x1000000000003").
template <net::Message T>
std::string encode_record(const T& record) {
  std::vector<std::byte> body = net::encode(record);
  std::string out(1, static_cast<char>(kRecordFormat));
  out.append(reinterpret_cast<const char*>(body.data()), body.size());
  return out;
}
// decode_record_named: the same, with `what()` called only on failure, so a hot read (an
// inode per stat, an entry per listed name) formats no message it does not need.
template <net::Message T, class What>
Result<T> decode_record_named(std::string_view bytes, What what) {
  if (bytes.empty() || static_cast<uint8_t>(bytes[0]) != kRecordFormat) {
    return Status(StatusCode::kCorruption, fmt::format("{}: unknown record format", what()));
  }
  auto decoded = net::decode<T>(std::as_bytes(std::span(bytes.data() + 1, bytes.size() - 1)));
  if (!decoded.ok()) {
    return Status(StatusCode::kCorruption,
                  fmt::format("{}: record does not decode: {}", what(), decoded.status()));
  }
  return std::move(decoded).value();
}
template <net::Message T>
Result<T> decode_record(std::string_view bytes, std::string_view what) {
  return decode_record_named<T>(bytes, [what] { return what; });
}

// A remembered answer (a shard's requests table after its 8-byte age, the coordinator's
// answers): encode_record's bytes, or a bare message written before answers were records
// (shard format version 1). A bare message starts with its u32 body length, which matches
// the value's size; a record's starts one byte later, so only a value that decodes as one
// form can be read as that form (both at once only for a 1-byte body, which no answer has).
template <net::Message T>
Result<T> decode_answer(std::string_view bytes, std::string_view what) {
  Result<T> record = decode_record<T>(bytes, what);
  if (record.ok()) return record;
  auto bare = net::decode<T>(std::as_bytes(std::span(bytes.data(), bytes.size())));
  if (bare.ok()) return std::move(bare).value();
  return record.status();
}

// Committed-state reads of one record (decode_record's kCorruption names the key).
Result<std::optional<Inode>> read_inode(kv::ReadTxn& txn, const ShardTables& tables, InodeId id);
Result<std::optional<DirEntry>> read_entry(kv::ReadTxn& txn, const ShardTables& tables,
                                           InodeId parent, std::string_view name);

}  // namespace mica::meta
