// The op sequence of the journaled store's crash test, shared by the writer it kills
// (tests/kv/helpers/journal_writer.cc) and the checker (tests/kv/journaled_env_test.cc):
// op i of a seed is a put or a delete of one of kKeys keys, the same in both processes.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>

namespace mica::kv::journal_ops {

inline constexpr uint64_t kKeys = 512;
inline constexpr const char* kTable = "t";

struct Op {
  std::string key;
  std::optional<std::string> value;  // nullopt: delete
};

inline std::string key_of(uint64_t n) {
  std::string key(8, '\0');
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>(n >> (56 - 8 * i));
  return key;
}

// Op i of seed: a quarter are deletes, puts carry 8 to 400 bytes.
inline Op op_of(uint64_t seed, uint64_t i) {
  std::mt19937_64 rng(seed * 1000003 + i);
  Op op{key_of(rng() % kKeys), std::nullopt};
  if (rng() % 4 != 0) {
    std::string value = std::to_string(seed) + ":" + std::to_string(i) + ":";
    value.resize(8 + rng() % 393, char('a' + i % 26));
    op.value = std::move(value);
  }
  return op;
}

}  // namespace mica::kv::journal_ops
