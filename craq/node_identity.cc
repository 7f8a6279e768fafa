#include "craq/node_identity.h"

#include <fmt/format.h>

#include <charconv>
#include <vector>

#include "async/crc32c.h"
#include "async/executor.h"
#include "async/file.h"

namespace mica::craq {
namespace {

// What both files hold: "mica <kind> v1\nid N\nidentity HEX\ncrc32c XXXXXXXX\n", the CRC
// over everything before its line.
struct IdentityRecord {
  uint64_t id = 0;
  std::string identity;
};

std::string encode_record(std::string_view kind, const IdentityRecord& record) {
  std::string body =
      fmt::format("mica {} v1\nid {}\nidentity {}\n", kind, record.id, record.identity);
  return body + fmt::format("crc32c {:08x}\n", crc32c(body.data(), body.size()));
}

// Splits off the next line (without its newline); false when no newline is left.
bool next_line(std::string_view* text, std::string_view* line) {
  size_t end = text->find('\n');
  if (end == std::string_view::npos) return false;
  *line = text->substr(0, end);
  text->remove_prefix(end + 1);
  return true;
}

bool parse_field(std::string_view line, std::string_view name, std::string_view* value) {
  if (line.size() <= name.size() || line.substr(0, name.size()) != name || line[name.size()] != ' ')
    return false;
  *value = line.substr(name.size() + 1);
  return !value->empty();
}

template <class T>
bool parse_number(std::string_view text, T* out, int base) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out, base);
  return error == std::errc() && end == text.data() + text.size();
}

Result<IdentityRecord> decode_record(std::string_view kind, std::string_view text,
                                     const std::string& path) {
  auto corrupt = [&path](std::string_view why) {
    return Status(StatusCode::kCorruption, fmt::format("{}: {}", path, why));
  };
  std::string_view rest = text, header, id_line, identity_line, crc_line, id, identity, crc;
  if (!next_line(&rest, &header) || !next_line(&rest, &id_line) ||
      !next_line(&rest, &identity_line) || !next_line(&rest, &crc_line) || !rest.empty())
    return corrupt("not four lines");
  if (header != fmt::format("mica {} v1", kind)) return corrupt("unknown header");
  size_t body_bytes = text.size() - crc_line.size() - 1;
  uint32_t stored_crc = 0;
  if (!parse_field(crc_line, "crc32c", &crc) || !parse_number(crc, &stored_crc, 16) ||
      stored_crc != crc32c(text.data(), body_bytes))
    return corrupt("checksum mismatch");
  IdentityRecord record;
  if (!parse_field(id_line, "id", &id) || !parse_number(id, &record.id, 10))
    return corrupt("bad id line");
  if (!parse_field(identity_line, "identity", &identity)) return corrupt("bad identity line");
  record.identity = std::string(identity);
  return record;
}

// The file's content, or kNotFound when it does not exist.
Task<Result<std::string>> read_small_file(std::string path) {
  auto opening = File::open(path, O_RDONLY);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  std::vector<std::byte> buffer(kIdentityFileBytesMax + 1);
  auto reading = file.read_full(std::span(buffer), 0);
  Result<size_t> got = co_await std::move(reading);
  auto closing = file.close();
  Status closed = co_await std::move(closing);
  if (!got.ok()) co_return got.status();
  if (!closed.ok()) co_return closed;
  if (*got > kIdentityFileBytesMax)
    co_return Status(StatusCode::kCorruption, fmt::format("{}: too long", path));
  co_return std::string(reinterpret_cast<const char*>(buffer.data()), *got);
}

// Writes path.tmp, fsyncs it, renames it over path and fsyncs dir.
Task<Status> write_atomically(std::string dir, std::string name, std::string content) {
  std::string path = dir + "/" + name;
  std::string temp = path + ".tmp";
  auto opening = File::open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CO_TRY_ASSIGN(File file, co_await std::move(opening));
  auto bytes = std::as_bytes(std::span(content.data(), content.size()));
  auto writing = file.write_full(bytes, 0);
  Status written = co_await std::move(writing);
  if (written.ok()) {
    auto syncing = file.fsync();
    written = co_await std::move(syncing);
  }
  auto closing = file.close();
  Status closed = co_await std::move(closing);
  if (!written.ok()) co_return written;
  if (!closed.ok()) co_return closed;
  auto renaming = rename_path(temp, path);
  CO_TRY(co_await std::move(renaming));
  auto syncing = sync_directory(dir);
  co_return co_await std::move(syncing);
}

Task<Result<IdentityRecord>> load_or_create(std::string dir, std::string name, std::string kind) {
  std::string path = dir + "/" + name;
  // A temp file is what a crash during a save leaves behind: the real file is whole (the
  // old content or the new), so the temp one is ignored and removed.
  auto removing = remove_file(path + ".tmp");
  Status removed = co_await std::move(removing);
  if (!removed.ok() && removed.code() != StatusCode::kNotFound) co_return removed;
  auto reading = read_small_file(path);
  Result<std::string> text = co_await std::move(reading);
  if (text.ok()) co_return decode_record(kind, *text, path);
  if (text.status().code() != StatusCode::kNotFound) co_return text.status();
  IdentityRecord record{.id = 0, .identity = new_identity()};
  auto writing = write_atomically(dir, name, encode_record(kind, record));
  CO_TRY(co_await std::move(writing));
  co_return record;
}

}  // namespace

std::string new_identity() {
  Backend& backend = Executor::current()->backend();
  uint64_t high = backend.random_u64();
  uint64_t low = backend.random_u64();
  return fmt::format("{:016x}{:016x}", high, low);
}

Task<Result<NodeIdentity>> load_or_create_node_identity(std::string dir) {
  auto loading = load_or_create(dir, kNodeIdentityFile, "node");
  CO_TRY_ASSIGN(IdentityRecord record, co_await std::move(loading));
  if (record.id > UINT32_MAX)
    co_return Status(StatusCode::kCorruption, fmt::format("{}: node id out of range", dir));
  co_return NodeIdentity{NodeId(record.id), std::move(record.identity)};
}

Task<Status> save_node_identity(std::string dir, NodeIdentity identity) {
  IdentityRecord record{identity.node, std::move(identity.identity)};
  auto writing = write_atomically(dir, kNodeIdentityFile, encode_record("node", record));
  co_return co_await std::move(writing);
}

Task<Result<TargetIdentity>> load_or_create_target_identity(std::string dir) {
  auto loading = load_or_create(dir, kTargetIdentityFile, "target");
  CO_TRY_ASSIGN(IdentityRecord record, co_await std::move(loading));
  co_return TargetIdentity{record.id, std::move(record.identity)};
}

Task<Status> save_target_identity(std::string dir, TargetIdentity identity) {
  IdentityRecord record{identity.target, std::move(identity.identity)};
  auto writing = write_atomically(dir, kTargetIdentityFile, encode_record("target", record));
  co_return co_await std::move(writing);
}

}  // namespace mica::craq
