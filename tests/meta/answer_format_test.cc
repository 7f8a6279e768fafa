// Remembered answers are records (meta/schema.h: format byte, then the message), and a shard
// environment of format version 1, whose answers were bare messages, still opens: its record
// is rewritten as the current version and its old answers still answer their retries.
#include "tests/meta/shard_fixture.h"

namespace mica::meta {
namespace {

using testing::call;
using testing::open_test_shard;
using testing::root_cred;
using testing::test_shard_options;

constexpr RequestTag kTag{.client = 3, .request = 7};

SetXattrRequest tagged_set() {
  return SetXattrRequest{.cred = root_cred(),
                         .tag = kTag,
                         .inode = kRootInode,
                         .name = "user.a",
                         .value = "1",
                         .mode = XattrMode::kCreate};
}

// The raw value of the requests table under kTag (age and answer) and the shard record.
struct Raw {
  std::string answer;  // after the 8-byte age
  ShardRecord record;
};

Task<Result<Raw>> read_raw(std::string dir) {
  auto opening = kv::Env::open(dir, kv::EnvOptions{});
  CO_TRY_ASSIGN(std::unique_ptr<kv::Env> env, co_await std::move(opening));
  Result<Raw> raw = Status(StatusCode::kNotFound, "nothing read");
  {
    auto tables = open_shard_tables(env.get());
    auto txn = env->begin_read();
    if (tables.ok() && txn.ok()) {
      auto answer = (*txn)->get(tables->requests, request_key(kTag));
      auto record = (*txn)->get(tables->shard, kShardRecordKey);
      if (answer.ok() && *answer && record.ok() && *record) {
        auto decoded = decode_record<ShardRecord>(**record, "the shard record");
        if (decoded.ok()) raw = Raw{std::string((*answer)->substr(8)), *decoded};
      }
    }
  }
  auto closing = env->close();
  CO_TRY(co_await std::move(closing));
  co_return raw;
}

// Puts the environment back to format 1: the answer under kTag bare, the record version 1.
Task<Status> write_format_one(std::string dir, std::string bare_answer, ShardRecord record) {
  auto opening = kv::Env::open(dir, kv::EnvOptions{});
  CO_TRY_ASSIGN(std::unique_ptr<kv::Env> env, co_await std::move(opening));
  auto tables = open_shard_tables(env.get());
  Status written = tables.status();
  if (tables.ok()) {
    record.format_version = 1;
    kv::WriteRequest request;
    request.put(tables->requests, request_key(kTag), be64(1) + bare_answer);
    request.put(tables->shard, kShardRecordKey, encode_record(record));
    written = co_await env->write(&request);
  }
  auto closing = env->close();
  Status closed = co_await std::move(closing);
  CO_TRY(written);
  co_return closed;
}

Task<Result<InodeReply>> set_once(std::string dir) {
  auto opening = open_test_shard(test_shard_options(dir));
  CO_TRY_ASSIGN(std::unique_ptr<Shard> shard, co_await std::move(opening));
  auto setting = call(shard.get(), &Shard::set_xattr, tagged_set());
  Result<InodeReply> reply = co_await std::move(setting);
  auto closing = shard->close();
  CO_TRY(co_await std::move(closing));
  co_return reply;
}

MICA_CO_TEST(AnswerFormat, ARememberedAnswerIsARecord) {
  auto setting = set_once(dir.path);
  Result<InodeReply> reply = co_await std::move(setting);
  CO_ASSERT_OK(reply);
  auto reading = read_raw(dir.path);
  Result<Raw> raw = co_await std::move(reading);
  CO_ASSERT_OK(raw);
  CO_ASSERT_TRUE(!raw->answer.empty());
  EXPECT_EQ(static_cast<uint8_t>(raw->answer[0]), kRecordFormat);
  EXPECT_EQ(raw->answer, encode_record(*reply));
  EXPECT_EQ(raw->record.format_version, kShardFormatVersion);
}

MICA_CO_TEST(AnswerFormat, AFormatOneShardOpensUpgradedAndItsBareAnswersStillAnswer) {
  auto setting = set_once(dir.path);
  Result<InodeReply> reply = co_await std::move(setting);
  CO_ASSERT_OK(reply);
  auto reading = read_raw(dir.path);
  Result<Raw> raw = co_await std::move(reading);
  CO_ASSERT_OK(raw);
  std::vector<std::byte> bare = net::encode(*reply);
  std::string bare_answer(reinterpret_cast<const char*>(bare.data()), bare.size());
  auto downgrading = write_format_one(dir.path, bare_answer, raw->record);
  CO_ASSERT_OK(co_await std::move(downgrading));

  auto opening = open_test_shard(test_shard_options(dir.path));
  auto shard = co_await std::move(opening);
  CO_ASSERT_OK(shard);
  // The retry gets the bare answer back (a first try would be kAlreadyExists: kCreate).
  auto retrying = call(shard->get(), &Shard::set_xattr, tagged_set());
  Result<InodeReply> again = co_await std::move(retrying);
  EXPECT_TRUE(again.ok()) << again.status();
  if (again.ok()) {
    EXPECT_EQ(*again, *reply);
  }
  SetXattrRequest fresh = tagged_set();
  fresh.tag = RequestTag{.client = 3, .request = 8};
  auto creating = call(shard->get(), &Shard::set_xattr, fresh);
  EXPECT_EQ((co_await std::move(creating)).status().code(), StatusCode::kAlreadyExists);
  auto closing = (*shard)->close();
  CO_ASSERT_OK(co_await std::move(closing));

  auto rereading = read_raw(dir.path);
  Result<Raw> upgraded = co_await std::move(rereading);
  CO_ASSERT_OK(upgraded);
  EXPECT_EQ(upgraded->record.format_version, kShardFormatVersion);
  EXPECT_EQ(upgraded->record.next_sequence, raw->record.next_sequence);
}

}  // namespace
}  // namespace mica::meta
