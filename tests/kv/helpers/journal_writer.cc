// The process the journaled store's crash test kills (tests/kv/journaled_env_test.cc):
// `kv_journal_writer DIR SEED FD` opens the journaled store in DIR (64 KiB journal files,
// so journal turns and checkpoints happen all the time) and applies the ops of SEED
// (tests/kv/journal_ops.h) one at a time, writing "i\n" to FD once op i is acknowledged,
// until it is killed.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "async/executor.h"
#include "kv/kv.h"
#include "tests/kv/journal_ops.h"

namespace mica::kv {
namespace {

Task<int> write_forever(std::string dir, uint64_t seed, int fd) {
  EnvOptions options{.implementation = Implementation::kJournaled,
                     .journal_file_bytes = uint64_t{64} << 10};
  auto opening = Env::open(dir, options);
  Result<std::unique_ptr<Env>> env = co_await std::move(opening);
  if (!env.ok()) {
    std::fprintf(stderr, "journal writer: open: %s\n", env.status().to_string().c_str());
    co_return 1;
  }
  Result<Table> table = (*env)->open_table(journal_ops::kTable);
  if (!table.ok()) co_return 1;
  for (uint64_t i = 0;; ++i) {
    journal_ops::Op op = journal_ops::op_of(seed, i);
    WriteRequest request;
    if (op.value) {
      request.put(*table, op.key, *op.value);
    } else {
      request.erase(*table, op.key);
    }
    Status written = co_await (*env)->write(&request);
    if (!written.ok()) {
      std::fprintf(stderr, "journal writer: op %lu: %s\n", static_cast<unsigned long>(i),
                   written.to_string().c_str());
      co_return 1;
    }
    std::string line = std::to_string(i) + "\n";
    if (::write(fd, line.data(), line.size()) != ssize_t(line.size())) co_return 1;
  }
}

}  // namespace
}  // namespace mica::kv

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: kv_journal_writer DIR SEED FD\n");
    return 2;
  }
  auto executor = mica::Executor::create_uring();
  return executor->block_on(
      mica::kv::write_forever(argv[1], std::strtoull(argv[2], nullptr, 10), std::atoi(argv[3])));
}
