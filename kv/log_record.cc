// kv/'s log record format (kv/log_record.h).
#include "kv/log_record.h"

#include <cstddef>
#include <cstring>

#include "async/crc32c.h"

namespace mica::kv {
namespace {

constexpr uint32_t kLogMagic = 0x4C564B4D;  // "MKVL"

struct RecordHeader {
  uint32_t magic;
  uint32_t payload_bytes;
  uint64_t seq;
  uint32_t op_count;
  uint32_t crc;  // CRC32C of the header's bytes before it, then of the payload
};
static_assert(sizeof(RecordHeader) == kRecordHeaderBytes);

struct OpHeader {
  uint8_t kind;  // WriteOp::Kind
  uint8_t reserved;
  uint16_t name_bytes;
  uint32_t key_bytes;
  uint32_t value_bytes;
};
static_assert(sizeof(OpHeader) == 12);

uint32_t record_crc(const RecordHeader& h, std::string_view payload) {
  return crc32c_extend(crc32c(&h, offsetof(RecordHeader, crc)), payload.data(), payload.size());
}

}  // namespace

std::string encode_log_record(uint64_t seq, const std::vector<WriteRequest*>& batch,
                              const std::vector<std::string>& names) {
  std::string payload;
  uint32_t op_count = 0;
  for (const WriteRequest* r : batch) {
    for (const WriteOp& op : r->ops) {
      const std::string& name = names[op.table];
      OpHeader o{uint8_t(op.kind), 0, uint16_t(name.size()), uint32_t(op.key.size()),
                 uint32_t(op.value.size())};
      payload.append(reinterpret_cast<const char*>(&o), sizeof(o));
      payload += name;
      payload += op.key;
      payload += op.value;
      ++op_count;
    }
  }
  RecordHeader h{kLogMagic, uint32_t(payload.size()), seq, op_count, 0};
  h.crc = record_crc(h, payload);
  std::string record(reinterpret_cast<const char*>(&h), sizeof(h));
  return record + payload;
}

std::optional<DecodedRecord> decode_log_record(std::string_view log, size_t pos,
                                               std::optional<uint64_t> seq) {
  if (pos > log.size() || log.size() - pos < sizeof(RecordHeader)) return std::nullopt;
  RecordHeader h;
  std::memcpy(&h, log.data() + pos, sizeof(h));
  if (h.magic != kLogMagic || (seq && h.seq != *seq) || h.payload_bytes > kRecordPayloadMaxBytes ||
      log.size() - pos - sizeof(h) < h.payload_bytes)
    return std::nullopt;
  std::string_view payload = log.substr(pos + sizeof(h), h.payload_bytes);
  if (record_crc(h, payload) != h.crc) return std::nullopt;
  DecodedRecord record{.seq = h.seq, .bytes = sizeof(h) + payload.size(), .ops = {}};
  size_t at = 0;
  for (uint32_t i = 0; i < h.op_count; ++i) {
    OpHeader o;
    if (payload.size() - at < sizeof(o)) return std::nullopt;
    std::memcpy(&o, payload.data() + at, sizeof(o));
    at += sizeof(o);
    uint64_t body = uint64_t{o.name_bytes} + o.key_bytes + o.value_bytes;
    if (o.kind > uint8_t(WriteOp::Kind::kDelete) || payload.size() - at < body) return std::nullopt;
    record.ops.push_back(LoggedOp{WriteOp::Kind(o.kind), payload.substr(at, o.name_bytes),
                                  payload.substr(at + o.name_bytes, o.key_bytes),
                                  payload.substr(at + o.name_bytes + o.key_bytes, o.value_bytes)});
    at += body;
  }
  if (at != payload.size()) return std::nullopt;
  return record;
}

uint64_t batch_payload_bytes(const std::vector<WriteRequest*>& batch) {
  uint64_t bytes = 0;
  for (const WriteRequest* r : batch)
    for (const WriteOp& op : r->ops) bytes += op.key.size() + op.value.size();
  return bytes;
}

}  // namespace mica::kv
