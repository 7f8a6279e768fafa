// The record format of kv/'s own logs, shared by the simulated store's log (kv/sim_store.h)
// and the journaled store's journal (kv/journaled_env.h): one record is one committed
// batch of puts and deletes.
//
// A record is a 24-byte header (magic, payload length, sequence number, op count, CRC32C of
// the header's bytes before the CRC and of the payload) and its ops, each a 12-byte header
// (kind, table name length, key length, value length) and the table's name, the key and the
// value. Tables are named, not numbered, so a log outlives the order in which a program
// opens its tables. Integers are in the host's byte order (the logs never leave the
// machine). A record that is short, damaged or out of sequence does not decode: readers
// stop there (a torn tail). Nothing here does I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/kv.h"

namespace mica::kv {

// A record's header; zeroing it makes the record undecodable.
inline constexpr size_t kRecordHeaderBytes = 24;
// One record's payload; a batch beyond half of it is refused before any I/O.
inline constexpr uint32_t kRecordPayloadMaxBytes = uint32_t{256} << 20;

// An op as it lies in a decoded record: views into the log's bytes.
struct LoggedOp {
  WriteOp::Kind kind;
  std::string_view table;
  std::string_view key;
  std::string_view value;
};

// The record numbered seq holding every op of batch, in order; names[t] names Table t.
std::string encode_log_record(uint64_t seq, const std::vector<WriteRequest*>& batch,
                              const std::vector<std::string>& names);

struct DecodedRecord {
  uint64_t seq = 0;
  size_t bytes = 0;  // header and payload
  std::vector<LoggedOp> ops;
};

// The record at log[pos...] if it is whole, undamaged and (when given) numbered seq.
std::optional<DecodedRecord> decode_log_record(std::string_view log, size_t pos,
                                               std::optional<uint64_t> seq);

// The key and value bytes of batch: what must stay under kRecordPayloadMaxBytes / 2.
uint64_t batch_payload_bytes(const std::vector<WriteRequest*>& batch);

}  // namespace mica::kv
