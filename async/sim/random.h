// SimRandom: the simulator's one pseudo-random generator (xoshiro256**, seeded by
// splitmix64).
//
// Every random choice of a simulation (latencies, drops, resets, disk errors) is drawn from
// the SimWorld's single SimRandom, in the order the single-threaded world loop makes them,
// so a seed fixes the whole run. We never use std:: distributions: their output differs
// between standard libraries, and a seed must replay the same run under g++ and clang.
// Value type; owned by one SimWorld; never suspends.
#pragma once

#include <cstdint>

#include "async/assert.h"
#include "async/time.h"

namespace mica::sim {

// One step of splitmix64: advances state and returns a well-mixed 64-bit value.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class SimRandom {
 public:
  explicit SimRandom(uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t& word : state_) word = splitmix64(s);
  }

  uint64_t next() {
    uint64_t result = rotl(state_[1] * 5, 7) * 9;
    uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound). Rejection removes the modulo bias so every value is equally likely.
  uint64_t below(uint64_t bound) {
    MICA_ASSERT(bound > 0);
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do x = next();
    while (x >= limit);
    return x % bound;
  }

  // Uniform in [lo, hi] (lo when hi <= lo).
  Duration between(Duration lo, Duration hi) {
    if (hi <= lo) return lo;
    auto span = static_cast<uint64_t>((hi - lo).count());
    return lo + Duration(static_cast<int64_t>(span == UINT64_MAX ? next() : below(span + 1)));
  }

  // True with probability p. p <= 0 draws nothing, so turning a fault off does not shift
  // the other random choices of a run.
  bool chance(double p) {
    if (p <= 0) return false;
    double unit = static_cast<double>(next() >> 11) * 0x1.0p-53;  // exact IEEE arithmetic
    return unit < p;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

}  // namespace mica::sim
