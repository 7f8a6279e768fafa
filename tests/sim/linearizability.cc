#include "tests/sim/linearizability.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_set>

#include <fmt/format.h>

#include "async/assert.h"

namespace mica::sim {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// Runs a state's description shows before it elides the rest.
constexpr size_t kRunsShownMax = 12;

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Appends [begin, end) of writer to runs, merging with the last run when it continues it.
void append_run(std::vector<ByteRun>& runs, uint32_t begin, uint32_t end, uint64_t writer) {
  if (begin >= end) return;
  if (!runs.empty() && runs.back().writer == writer && runs.back().end == begin) {
    runs.back().end = end;
    return;
  }
  runs.push_back(ByteRun{begin, end, writer});
}

// The runs of `runs` clipped to [begin, end), merged where they meet.
std::vector<ByteRun> clip(const std::vector<ByteRun>& runs, uint32_t begin, uint32_t end) {
  std::vector<ByteRun> out;
  for (const ByteRun& run : runs) {
    if (run.end <= begin || run.begin >= end) continue;
    append_run(out, std::max(run.begin, begin), std::min(run.end, end), run.writer);
  }
  return out;
}

}  // namespace

uint64_t pattern_word(uint64_t writer, uint32_t offset) {
  MICA_ASSERT(writer > 0 && writer <= std::numeric_limits<uint32_t>::max());
  return (writer << 32) | (offset / kLinWordBytes);
}

void fill_pattern(uint64_t writer, uint32_t offset, std::span<std::byte> out) {
  MICA_ASSERT(offset % kLinWordBytes == 0 && out.size() % kLinWordBytes == 0);
  for (size_t i = 0; i < out.size(); i += kLinWordBytes) {
    uint64_t word = pattern_word(writer, uint32_t(offset + i));
    std::memcpy(out.data() + i, &word, sizeof word);
  }
}

std::vector<ByteRun> decode_pattern(uint32_t offset, std::span<const std::byte> bytes) {
  std::vector<ByteRun> runs;
  if (offset % kLinWordBytes != 0) {
    append_run(runs, offset, uint32_t(offset + bytes.size()), kLinGarbage);
    return runs;
  }
  size_t i = 0;
  for (; i + kLinWordBytes <= bytes.size(); i += kLinWordBytes) {
    uint64_t word = 0;
    std::memcpy(&word, bytes.data() + i, sizeof word);
    auto at = uint32_t(offset + i);
    uint64_t writer = word >> 32;
    if (word == 0)
      writer = 0;
    else if (writer == 0 || (word & 0xFFFFFFFFull) != at / kLinWordBytes)
      writer = kLinGarbage;
    append_run(runs, at, at + kLinWordBytes, writer);
  }
  if (i < bytes.size())  // a partial word is no write's pattern
    append_run(runs, uint32_t(offset + i), uint32_t(offset + bytes.size()), kLinGarbage);
  return runs;
}

void ChunkBytesModel::write(uint64_t writer, uint32_t offset, uint32_t length_bytes) {
  std::vector<ByteRun> out = clip(runs, 0, offset);
  if (offset > length) append_run(out, length, offset, 0);
  uint32_t end = offset + length_bytes;
  append_run(out, offset, end, writer);
  for (const ByteRun& run : clip(runs, end, length))
    append_run(out, run.begin, run.end, run.writer);
  runs = std::move(out);
  length = std::max(length, end);
}

void ChunkBytesModel::truncate(uint32_t length_bytes) {
  if (length_bytes <= length) {
    runs = clip(runs, 0, length_bytes);
  } else {
    append_run(runs, length, length_bytes, 0);
  }
  length = length_bytes;
}

void ChunkBytesModel::remove() {
  length = 0;
  runs.clear();
}

bool ChunkBytesModel::read_matches(uint32_t offset, uint32_t length_bytes, uint32_t observed_bytes,
                                   const std::vector<ByteRun>& observed) const {
  uint32_t expected = offset >= length ? 0 : std::min(length_bytes, length - offset);
  if (observed_bytes != expected) return false;
  // clip(runs, offset, offset + expected) == observed, without building the clipped runs
  // (this is the search's inner loop). Both sides are normalised, so they match run by run.
  uint32_t end = offset + expected;
  size_t next = 0;
  for (const ByteRun& run : runs) {
    if (run.end <= offset || run.begin >= end) continue;
    if (next == observed.size()) return false;
    const ByteRun& seen = observed[next++];
    if (seen.writer != run.writer || seen.begin != std::max(run.begin, offset) ||
        seen.end != std::min(run.end, end))
      return false;
  }
  return next == observed.size();
}

uint64_t ChunkBytesModel::hash() const {
  // Each field is mixed in on its own step: folding a run's end and writer into one step with
  // the length let them cancel (the last run ends at the length, and zeros have writer 0), so
  // every all-zero chunk hashed like the empty one and the search pruned branches it needed.
  uint64_t h = mix64(uint64_t{length} + 0x243F6A8885A308D3ull);
  for (const ByteRun& run : runs) {
    h = mix64(h ^ mix64(uint64_t{run.end} + 0x13198A2E03707344ull));
    h = mix64(h ^ mix64(run.writer + 0xA4093822299F31D0ull));
  }
  return h;
}

std::string ChunkBytesModel::describe() const {
  std::string text = fmt::format("length {}:", length);
  for (size_t i = 0; i < runs.size() && i < kRunsShownMax; ++i)
    text += fmt::format(" [{},{})={}", runs[i].begin, runs[i].end, runs[i].writer);
  if (runs.size() > kRunsShownMax) text += fmt::format(" ... ({} runs)", runs.size());
  return text;
}

const char* lin_verdict_name(LinVerdict verdict) {
  switch (verdict) {
    case LinVerdict::kLinearizable:
      return "linearizable";
    case LinVerdict::kViolation:
      return "not linearizable";
    case LinVerdict::kGaveUp:
      return "checker gave up";
  }
  return "?";
}

std::string describe_op(const LinOp& op) {
  static constexpr const char* kKinds[] = {"write", "truncate", "remove", "read"};
  static constexpr const char* kOutcomes[] = {"ok", "failed", "indeterminate"};
  std::string text = fmt::format("op {} (client {}) {}", op.id, op.client, kKinds[int(op.kind)]);
  if (op.kind == LinKind::kWrite || op.kind == LinKind::kRead)
    text += fmt::format(" [{},{})", op.offset, op.offset + op.length);
  if (op.kind == LinKind::kTruncate) text += fmt::format(" to {}", op.length);
  text += fmt::format(" {} invoked {} ns", kOutcomes[int(op.outcome)], op.invoke_ns);
  if (op.outcome != LinOutcome::kIndeterminate)
    text += fmt::format(", completed {} ns", op.complete_ns);
  if (op.kind == LinKind::kRead && op.outcome == LinOutcome::kOk) {
    text += fmt::format(", returned {} bytes:", op.observed_bytes);
    for (size_t i = 0; i < op.observed.size() && i < kRunsShownMax; ++i) {
      const ByteRun& run = op.observed[i];
      if (run.writer == kLinGarbage)
        text += fmt::format(" [{},{})=garbage", run.begin, run.end);
      else
        text += fmt::format(" [{},{})={}", run.begin, run.end, run.writer);
    }
  }
  return text;
}

namespace {

// One Wing & Gong search over a chunk's operations (Porcupine's formulation: a doubly
// linked list of call and return entries in time order; linearizing an operation lifts both
// of its entries out, backtracking puts them back). Memoised on (linearized set, state).
class Search {
 public:
  Search(const std::vector<LinOp>& ops, const CheckOptions& options)
      : ops_(ops), options_(options) {
    build_entries();
  }

  ChunkVerdict run();

 private:
  struct Entry {
    int64_t time = 0;
    bool call = true;
    uint32_t op = 0;
    uint32_t match = 0;  // the other entry of the same operation
  };
  struct Frame {
    uint32_t entry = 0;     // the call entry lifted
    ChunkBytesModel state;  // the state before the operation
  };
  // A visited (linearized set, state), by 192 bits of hashes: two Zobrist hashes of the set
  // and the state's hash. A collision (odds about 2^-128 per pair) could only prune a
  // branch, so it could make a linearizable history look violating, never the reverse.
  struct Seen {
    uint64_t bits_a = 0;
    uint64_t bits_b = 0;
    uint64_t state = 0;
    friend bool operator==(const Seen&, const Seen&) = default;
  };
  struct SeenHash {
    size_t operator()(const Seen& s) const { return size_t(s.bits_a ^ (s.state * 31)); }
  };

  void build_entries();
  bool apply(const LinOp& op, ChunkBytesModel& state) const;
  void lift(uint32_t call);
  void unlift(uint32_t call);
  void flip(uint32_t op);  // adds op to the linearized set, or takes it out
  bool remember(const ChunkBytesModel& state);

  const std::vector<LinOp>& ops_;
  CheckOptions options_;
  std::vector<Entry> entries_;  // index 0 is the list's head sentinel; size() is its end
  std::vector<uint32_t> next_, prev_;
  uint64_t bits_a_ = 0;  // Zobrist hashes of the linearized set
  uint64_t bits_b_ = 0;
  std::unordered_set<Seen, SeenHash> seen_;
};

void Search::build_entries() {
  std::vector<Entry> sorted;
  for (uint32_t i = 0; i < ops_.size(); ++i) {
    const LinOp& op = ops_[i];
    int64_t complete = op.outcome == LinOutcome::kIndeterminate ? kNever : op.complete_ns;
    MICA_ASSERT_MSG(complete >= op.invoke_ns, "an operation completed before it was invoked");
    sorted.push_back(Entry{op.invoke_ns, true, i, 0});
    sorted.push_back(Entry{complete, false, i, 0});
  }
  // At one instant calls come first: an operation that completes when another is invoked
  // counts as concurrent with it (the weaker claim, so no false violation).
  std::sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.call != b.call) return a.call;
    return a.op < b.op;
  });
  entries_.assign(1, Entry{});
  entries_.insert(entries_.end(), sorted.begin(), sorted.end());
  std::vector<uint32_t> call_of(ops_.size(), 0);
  for (uint32_t i = 1; i < entries_.size(); ++i)
    if (entries_[i].call) call_of[entries_[i].op] = i;
  for (uint32_t i = 1; i < entries_.size(); ++i) {
    if (entries_[i].call) continue;
    entries_[i].match = call_of[entries_[i].op];
    entries_[call_of[entries_[i].op]].match = i;
  }
  auto n = uint32_t(entries_.size());
  next_.resize(n);
  prev_.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    next_[i] = i + 1;
    prev_[i] = i == 0 ? 0 : i - 1;
  }
}

bool Search::apply(const LinOp& op, ChunkBytesModel& state) const {
  switch (op.kind) {
    case LinKind::kWrite:
      state.write(op.id, op.offset, op.length);
      return true;
    case LinKind::kTruncate:
      state.truncate(op.length);
      return true;
    case LinKind::kRemove:
      state.remove();
      return true;
    case LinKind::kRead:
      return state.read_matches(op.offset, op.length, op.observed_bytes, op.observed);
  }
  return false;
}

void Search::lift(uint32_t call) {
  for (uint32_t e : {call, entries_[call].match}) {
    next_[prev_[e]] = next_[e];
    if (next_[e] < entries_.size()) prev_[next_[e]] = prev_[e];
  }
}

void Search::unlift(uint32_t call) {
  for (uint32_t e : {entries_[call].match, call}) {
    next_[prev_[e]] = e;
    if (next_[e] < entries_.size()) prev_[next_[e]] = e;
  }
}

void Search::flip(uint32_t op) {
  bits_a_ ^= mix64(op + 1);
  bits_b_ ^= mix64((uint64_t{op} << 32) ^ 0x5BD1E995u);
}

bool Search::remember(const ChunkBytesModel& state) {
  return seen_.insert(Seen{bits_a_, bits_b_, state.hash()}).second;
}

ChunkVerdict Search::run() {
  ChunkVerdict verdict;
  verdict.ops = ops_.size();
  std::vector<Frame> stack;
  ChunkBytesModel state;
  size_t deepest = 0;
  std::string stuck;
  auto end = uint32_t(entries_.size());
  uint32_t entry = next_[0];
  while (entry < end) {
    const Entry& e = entries_[entry];
    if (!e.call && e.time == kNever) break;  // only indeterminate operations are left
    if (!e.call) {
      if (stack.size() >= deepest || stuck.empty()) {
        deepest = stack.size();
        stuck = fmt::format("{} fits no order; after {} of {} operations the chunk could be {}",
                            describe_op(ops_[e.op]), deepest, ops_.size(), state.describe());
      }
      if (stack.empty()) {
        verdict.verdict = LinVerdict::kViolation;
        verdict.why = std::move(stuck);
        return verdict;
      }
      Frame frame = std::move(stack.back());
      stack.pop_back();
      flip(entries_[frame.entry].op);
      unlift(frame.entry);
      state = std::move(frame.state);
      entry = next_[frame.entry];
      continue;
    }
    if (++verdict.steps > options_.steps_max) {
      verdict.verdict = LinVerdict::kGaveUp;
      verdict.why =
          fmt::format("gave up after {} steps over {} operations", options_.steps_max, ops_.size());
      return verdict;
    }
    const LinOp& op = ops_[e.op];
    bool fits = op.kind != LinKind::kRead ||
                state.read_matches(op.offset, op.length, op.observed_bytes, op.observed);
    if (fits) {
      ChunkBytesModel after = state;
      apply(op, after);
      flip(e.op);
      if (remember(after)) {
        stack.push_back(Frame{entry, std::move(state)});
        state = std::move(after);
        lift(entry);
        entry = next_[0];
        continue;
      }
      flip(e.op);
    }
    entry = next_[entry];
  }
  verdict.verdict = LinVerdict::kLinearizable;
  return verdict;
}

// The operations a search needs: failed ones never took effect, and a read that did not
// succeed observed nothing.
std::vector<LinOp> relevant(std::vector<LinOp> ops) {
  std::erase_if(ops, [](const LinOp& op) {
    return op.outcome == LinOutcome::kFailed ||
           (op.kind == LinKind::kRead && op.outcome != LinOutcome::kOk);
  });
  return ops;
}

// The history without some indeterminate operations: "never took effect" is always a legal
// choice for one, so if such a smaller history is linearizable, so is the whole one. Phase 0
// keeps only the indeterminate writes some read saw a byte of, phase 1 adds the
// indeterminate truncations and removals, phase 2 is the whole history. Each indeterminate
// operation stays a candidate at every later point of the search, so each one left out
// halves the work or better.
std::vector<LinOp> phase_ops(const std::vector<LinOp>& ops, int phase) {
  std::vector<uint64_t> seen;
  for (const LinOp& op : ops)
    if (op.kind == LinKind::kRead)
      for (const ByteRun& run : op.observed) seen.push_back(run.writer);
  std::sort(seen.begin(), seen.end());
  std::vector<LinOp> kept;
  for (const LinOp& op : ops) {
    bool keep = op.outcome != LinOutcome::kIndeterminate || phase >= 2 ||
                (op.kind == LinKind::kWrite ? std::binary_search(seen.begin(), seen.end(), op.id)
                                            : phase >= 1);
    if (keep) kept.push_back(op);
  }
  return kept;
}

}  // namespace

ChunkVerdict check_chunk(std::vector<LinOp> ops, const CheckOptions& options) {
  uint64_t key = ops.empty() ? 0 : ops.front().key;
  for (const LinOp& op : ops) {
    MICA_ASSERT_MSG(op.key == key, "check_chunk takes the operations of one chunk");
    MICA_ASSERT(op.id > 0 && op.id <= std::numeric_limits<uint32_t>::max());
  }
  ops = relevant(std::move(ops));
  ChunkVerdict verdict;
  uint64_t steps = 0;
  size_t searched = 0;  // operations in the last phase's history (0: none ran yet)
  for (int phase = 0; phase <= 2; ++phase) {
    std::vector<LinOp> some = phase == 2 ? ops : phase_ops(ops, phase);
    if (searched != 0 && some.size() == searched) continue;  // nothing added
    searched = some.size();
    Search search(some, options);
    verdict = search.run();
    steps += verdict.steps;
    if (verdict.verdict != LinVerdict::kViolation) break;
  }
  verdict.steps = steps;
  verdict.key = key;
  verdict.ops = ops.size();
  return verdict;
}

HistoryVerdict check_history(const std::vector<LinOp>& ops, const CheckOptions& options) {
  std::map<uint64_t, std::vector<LinOp>> by_key;
  for (const LinOp& op : ops) by_key[op.key].push_back(op);
  HistoryVerdict history;
  std::string gave_up;
  for (auto& [key, chunk_ops] : by_key) {
    ChunkVerdict verdict = check_chunk(std::move(chunk_ops), options);
    history.steps += verdict.steps;
    if (verdict.verdict == LinVerdict::kViolation && history.verdict != LinVerdict::kViolation) {
      history.verdict = LinVerdict::kViolation;
      history.why = fmt::format("chunk {}: {}", key, verdict.why);
    }
    if (verdict.verdict == LinVerdict::kGaveUp && history.verdict == LinVerdict::kLinearizable) {
      history.verdict = LinVerdict::kGaveUp;
      history.why = fmt::format("chunk {}: {}", key, verdict.why);
    }
    history.chunks.push_back(std::move(verdict));
  }
  return history;
}

}  // namespace mica::sim
