// The client examples (client/examples/) run as a user would run them, against a real dev
// cluster: copy_in copies a local file byte for byte, random_reader reads a copied data set
// at random with read_batch and every sample matches the local copy, checkpoint_writer
// writes a file from parallel tasks that reads back as its state; bad arguments print the
// usage line and exit 2.
//
// Heavy: each cluster test starts a dev cluster (tests/client/client_cluster.h states the
// time caps); every example run is capped by kExampleTimeout.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tests/client/client_cluster.h"

namespace mica::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kExampleTimeout{60'000};

std::string example(const std::string& name) {
  return std::string(MICA_EXAMPLES_DIR) + "/" + name;
}

// argv of an example connected to the cluster: NAME --mgmtd M --token-file F args...
std::vector<std::string> example_argv(const ClientCluster& cluster, const std::string& name,
                                      std::vector<std::string> args) {
  std::vector<std::string> argv{example(name), "--mgmtd", cluster.mgmtd(), "--token-file",
                                cluster.token_file()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// Random bytes, a different stream per seed.
std::string random_bytes(size_t size, uint32_t seed) {
  std::mt19937_64 random(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

void write_local(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// The whole of a Mica file as the client reads it after opening it.
Task<Result<std::string>> read_mica_file_task(client::ClientOptions options, std::string path) {
  auto connecting = client::Client::connect(std::move(options));
  CO_TRY_ASSIGN(std::unique_ptr<client::Client> c, co_await std::move(connecting));
  auto opening = c->open(path, client::OpenMode{.flags = O_RDONLY});
  Result<std::unique_ptr<client::File>> file = co_await std::move(opening);
  Status status = file.status();
  std::string bytes;
  if (file.ok()) {
    bytes.resize((*file)->known_length());
    std::span<std::byte> all(reinterpret_cast<std::byte*>(bytes.data()), bytes.size());
    auto reading = (*file)->pread(all, 0);
    Result<size_t> read = co_await std::move(reading);
    status = read.status();
    if (read.ok()) bytes.resize(*read);
    auto closing = (*file)->close();
    Status closed = co_await std::move(closing);
    if (status.ok()) status = closed;
  }
  auto closing = c->close();
  co_await std::move(closing);
  if (!status.ok()) co_return status;
  co_return bytes;
}

Result<std::string> read_mica_file(const ClientCluster& cluster, const std::string& path) {
  std::unique_ptr<Executor> executor = Executor::create_uring();
  return executor->block_on(read_mica_file_task(cluster.options(), path));
}

TEST(ClientExamples, BadArgumentsPrintTheUsageLineAndExitTwo) {
  TempDir dir(binary_dir() + "/client-test-data", "examples-usage");
  for (const char* name : {"copy_in", "random_reader", "checkpoint_writer"}) {
    RunResult none = run({example(name)}, dir.path() + "/" + name);
    EXPECT_EQ(none.exit_code, 2) << name << ": " << none.err;
    EXPECT_NE(none.err.find(std::string("usage: ") + name), std::string::npos) << none.err;
    RunResult unknown =
        run({example(name), "--mgmtd", "127.0.0.1:1", "--no-such-flag", "1", "x", "y"},
            dir.path() + "/" + name + "-unknown");
    EXPECT_EQ(unknown.exit_code, 2) << name << ": " << unknown.err;
    EXPECT_NE(unknown.err.find("unknown option --no-such-flag"), std::string::npos) << unknown.err;
  }
}

TEST(ClientExamples, CopyInOfAMissingLocalFileIsAClearError) {
  TempDir dir(binary_dir() + "/client-test-data", "examples-missing");
  RunResult missing =
      run({example("copy_in"), "--mgmtd", "127.0.0.1:1", dir.path() + "/nope", "/nope"},
          dir.path() + "/copy");
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_NE(missing.err.find("cannot read"), std::string::npos) << missing.err;
}

TEST(ClientExamples, CopyInCopiesALocalFileByteForByte) {
  ClientCluster cluster("examples-copy-in");
  ASSERT_TRUE(cluster.up()) << cluster.up_output();
  // Not a whole number of blocks or chunks: the last write is short.
  std::string bytes = random_bytes((size_t{9} << 20) + 12345, 1);
  std::string local = cluster.dir() + "/local.bin";
  write_local(local, bytes);
  RunResult copied = run(example_argv(cluster, "copy_in", {local, "/copied.bin"}),
                         cluster.dir() + "/copy_in", kExampleTimeout);
  ASSERT_EQ(copied.exit_code, 0) << copied.out << copied.err;
  EXPECT_NE(copied.out.find("copied " + std::to_string(bytes.size()) + " bytes"), std::string::npos)
      << copied.out;
  Result<std::string> in_mica = read_mica_file(cluster, "/copied.bin");
  ASSERT_TRUE(in_mica.ok()) << in_mica.status();
  EXPECT_EQ(in_mica->size(), bytes.size());
  EXPECT_TRUE(*in_mica == bytes) << "the copy differs from the local file";
}

TEST(ClientExamples, RandomReaderSamplesADataSetThatMatchesItsLocalCopy) {
  ClientCluster cluster("examples-random-reader");
  ASSERT_TRUE(cluster.up()) << cluster.up_output();
  ASSERT_EQ(cluster.cli({"mkdir", "/dataset"}).exit_code, 0);
  std::string local_dir = cluster.dir() + "/dataset";
  ASSERT_TRUE(std::filesystem::create_directory(local_dir));
  for (uint32_t shard = 0; shard < 4; ++shard) {
    std::string name = "shard-" + std::to_string(shard) + ".bin";
    write_local(local_dir + "/" + name, random_bytes((size_t{3} << 20) + shard * 4096, shard));
    RunResult copied =
        run(example_argv(cluster, "copy_in", {local_dir + "/" + name, "/dataset/" + name}),
            cluster.dir() + "/copy_in", kExampleTimeout);
    ASSERT_EQ(copied.exit_code, 0) << copied.err;
  }
  RunResult read = run(example_argv(cluster, "random_reader",
                                    {"--batch", "16", "--batches", "8", "--sample-bytes", "70000",
                                     "--verify", local_dir, "/dataset"}),
                       cluster.dir() + "/random_reader", kExampleTimeout);
  ASSERT_EQ(read.exit_code, 0) << read.out << read.err;
  EXPECT_NE(read.out.find("read 128 samples (8960000 bytes) from 4 files"), std::string::npos)
      << read.out;
  EXPECT_NE(read.out.find("every sample matches the local copy"), std::string::npos) << read.out;
}

TEST(ClientExamples, CheckpointWriterWritesFromParallelTasksAFileThatReadsBackAsItsState) {
  ClientCluster cluster("examples-checkpoint");
  ASSERT_TRUE(cluster.up()) << cluster.up_output();
  constexpr uint64_t kBytes = (uint64_t{6} << 20) + 1000;  // parts end inside words
  RunResult wrote = run(example_argv(cluster, "checkpoint_writer",
                                     {"--tasks", "5", "--bytes", std::to_string(kBytes),
                                      "--block-bytes", "300000", "/checkpoint.bin"}),
                        cluster.dir() + "/checkpoint_writer", kExampleTimeout);
  ASSERT_EQ(wrote.exit_code, 0) << wrote.out << wrote.err;
  EXPECT_NE(wrote.out.find("verified"), std::string::npos) << wrote.out;
  // Checked here too, by another client: every 8-byte word holds its offset.
  Result<std::string> in_mica = read_mica_file(cluster, "/checkpoint.bin");
  ASSERT_TRUE(in_mica.ok()) << in_mica.status();
  ASSERT_EQ(in_mica->size(), kBytes);
  for (uint64_t at = 0; at < kBytes; ++at) {
    uint64_t word = at - at % 8;
    auto want = static_cast<unsigned char>(word >> (8 * (at % 8)));
    if (static_cast<unsigned char>((*in_mica)[at]) != want) {
      FAIL() << "byte " << at << " is " << int(static_cast<unsigned char>((*in_mica)[at]))
             << ", not " << int(want);
    }
  }
}

}  // namespace
}  // namespace mica::testing
