#include "tests/sim/runner.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>

#include <fmt/format.h>

namespace mica::sim {
namespace {

// A result line starts with this byte, so it cannot be mistaken for what a seed printed.
constexpr char kResultMark = '\x1e';
// Bytes of a seed's own output kept for the failure report (the tail).
constexpr size_t kOutputTailBytesMax = 8 << 10;
// Batches per job a sweep is cut into: small enough to balance, large enough that a fork
// per batch costs nothing.
constexpr uint64_t kBatchesPerJob = 16;
constexpr uint64_t kBatchSeedsMax = 500;

std::optional<uint64_t> parse_u64(std::string_view text) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::string one_line(std::string_view text) {
  std::string line(text);
  std::replace_if(
      line.begin(), line.end(), [](char c) { return c == '\n' || c == '\t' || c == '\r'; }, ' ');
  return line;
}

// "<mark>R seed hash events n name value ...\tfailure\n"
std::string encode_result(uint64_t seed, const ScenarioResult& r) {
  std::string line = fmt::format("{}R {} {} {} {}", kResultMark, seed, r.trace_hash, r.trace_events,
                                 r.counters.size());
  for (const auto& [name, value] : r.counters) line += fmt::format(" {} {}", name, value);
  line += '\t';
  line += one_line(r.failure);
  line += '\n';
  return line;
}

struct DecodedResult {
  uint64_t seed = 0;
  std::string failure;
  ScenarioCounters counters;
};

std::optional<DecodedResult> decode_result(std::string_view line) {
  size_t tab = line.find('\t');
  if (line.size() < 3 || line[0] != kResultMark || line[1] != 'R' || tab == line.npos)
    return std::nullopt;
  std::vector<std::string_view> words;
  std::string_view head = line.substr(3, tab - 3);
  while (!head.empty()) {
    size_t space = head.find(' ');
    words.push_back(head.substr(0, space));
    head = space == head.npos ? std::string_view() : head.substr(space + 1);
  }
  if (words.size() < 4) return std::nullopt;
  DecodedResult out;
  auto seed = parse_u64(words[0]);
  auto n = parse_u64(words[3]);
  if (!seed || !n || words.size() != 4 + 2 * *n) return std::nullopt;
  out.seed = *seed;
  for (uint64_t i = 0; i < *n; ++i) {
    auto value = parse_u64(words[5 + 2 * i]);
    if (!value) return std::nullopt;
    out.counters[std::string(words[4 + 2 * i])] = *value;
  }
  out.failure = std::string(line.substr(tab + 1));
  return out;
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) std::_Exit(3);  // the runner went away
    data.remove_prefix(size_t(n));
  }
}

// The child: runs seeds first..last, one result line each, on the pipe that is also its
// stdout and stderr. Never returns.
[[noreturn]] void child_main(const Scenario& scenario, SeedRange batch, int fd,
                             uint32_t timeout_s) {
  ::dup2(fd, STDOUT_FILENO);
  ::dup2(fd, STDERR_FILENO);
  for (uint64_t seed = batch.first; seed <= batch.last; ++seed) {
    ::alarm(timeout_s);  // a hung seed is killed by SIGALRM and reported as such
    ScenarioResult result = run_scenario(scenario, seed, ScenarioOptions{});
    std::fflush(stdout);
    std::fflush(stderr);
    write_all(fd, encode_result(seed, result));
    if (seed == batch.last) break;  // last may be UINT64_MAX
  }
  std::fflush(nullptr);
  std::_Exit(0);
}

struct Worker {
  pid_t pid = -1;
  int fd = -1;
  SeedRange batch;
  uint64_t results = 0;  // seeds reported; batch.first + results runs now
  std::string buffer;    // bytes not yet split into lines
  std::string output;    // what the current seed printed so far
};

std::string describe_exit(int status, uint32_t timeout_s) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    if (sig == SIGALRM) return fmt::format("hung: no result after {} s of wall time", timeout_s);
    return fmt::format("crashed: killed by signal {} ({})", sig, ::strsignal(sig));
  }
  if (WIFEXITED(status)) return fmt::format("crashed: exited with code {}", WEXITSTATUS(status));
  return "crashed: unknown wait status";
}

class Sweep {
 public:
  Sweep(const Scenario& scenario, const SweepOptions& options)
      : scenario_(scenario), options_(options) {}
  SweepReport run();

 private:
  void start_worker(SeedRange batch);
  void on_readable(Worker& w);
  void on_line(Worker& w, std::string_view line);
  void on_exit(Worker& w);
  void record_failure(SweepFailure failure);

  const Scenario& scenario_;
  const SweepOptions& options_;
  std::deque<SeedRange> batches_;
  std::vector<Worker> workers_;
  SweepReport report_;
};

void Sweep::start_worker(SeedRange batch) {
  int fds[2];
  MICA_ASSERT(::pipe(fds) == 0);
  std::fflush(nullptr);  // nothing buffered may be written twice
  pid_t pid = ::fork();
  MICA_ASSERT_MSG(pid >= 0, "fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    child_main(scenario_, batch, fds[1], options_.seed_timeout_s);
  }
  ::close(fds[1]);
  workers_.push_back(Worker{pid, fds[0], batch, 0, {}, {}});
}

void Sweep::record_failure(SweepFailure failure) {
  FILE* out = options_.out;
  fmt::print(out, "FAIL {} seed {}: {}\n", scenario_.name, failure.seed, failure.why);
  std::string_view rest = failure.output;
  while (!rest.empty()) {
    size_t end = rest.find('\n');
    fmt::print(out, "  | {}\n", rest.substr(0, end));
    rest = end == rest.npos ? std::string_view() : rest.substr(end + 1);
  }
  fmt::print(out, "  replay: {}\n", replay_command(options_.program, scenario_, failure.seed));
  std::fflush(out);
  report_.failures.push_back(std::move(failure));
}

void Sweep::on_line(Worker& w, std::string_view line) {
  std::optional<DecodedResult> result = decode_result(line);
  if (!result) {
    w.output.append(line);
    w.output += '\n';
    if (w.output.size() > kOutputTailBytesMax)
      w.output.erase(0, w.output.size() - kOutputTailBytesMax);
    return;
  }
  MICA_ASSERT_MSG(result->seed == w.batch.first + w.results,
                  "sweep child reported seeds out of order");
  ++report_.seeds_run;
  for (const auto& [name, value] : result->counters) report_.totals[name] += value;
  if (!result->failure.empty())
    record_failure(SweepFailure{result->seed, result->failure, false, std::move(w.output)});
  w.output.clear();
  ++w.results;
}

void Sweep::on_readable(Worker& w) {
  char chunk[4096];
  ssize_t n = ::read(w.fd, chunk, sizeof chunk);
  if (n < 0 && errno == EINTR) return;
  if (n <= 0) {
    on_exit(w);
    return;
  }
  w.buffer.append(chunk, size_t(n));
  size_t start = 0;
  for (size_t end; (end = w.buffer.find('\n', start)) != w.buffer.npos; start = end + 1)
    on_line(w, std::string_view(w.buffer).substr(start, end - start));
  w.buffer.erase(0, start);
}

void Sweep::on_exit(Worker& w) {
  ::close(w.fd);
  w.fd = -1;
  int status = 0;
  while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
  }
  bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  bool finished = w.results == w.batch.count();
  if (clean && finished) return;
  if (!w.buffer.empty()) w.output += w.buffer;
  // A child that died after its last result is blamed on its last seed.
  uint64_t seed = w.batch.first + std::min(w.results, w.batch.count() - 1);
  if (!finished) ++report_.seeds_run;
  std::string why = clean ? "child exited before reporting its seed"
                          : describe_exit(status, options_.seed_timeout_s);
  record_failure(SweepFailure{seed, why, true, std::move(w.output)});
  if (seed < w.batch.last) batches_.push_front(SeedRange{seed + 1, w.batch.last});
}

SweepReport Sweep::run() {
  auto started = std::chrono::steady_clock::now();
  uint64_t count = options_.seeds.count();
  uint32_t jobs = std::max<uint32_t>(1, options_.jobs);
  uint64_t batch = options_.batch_seeds;
  if (batch == 0) batch = std::clamp<uint64_t>(count / (jobs * kBatchesPerJob), 1, kBatchSeedsMax);
  for (uint64_t first = options_.seeds.first;;) {
    uint64_t last = first + std::min(batch, options_.seeds.last - first + 1) - 1;
    batches_.push_back(SeedRange{first, last});
    if (last >= options_.seeds.last) break;
    first = last + 1;
  }
  while (!batches_.empty() || !workers_.empty()) {
    while (!batches_.empty() && workers_.size() < jobs) {
      SeedRange next = batches_.front();
      batches_.pop_front();
      start_worker(next);
    }
    std::vector<pollfd> fds;
    for (Worker& w : workers_) fds.push_back(pollfd{w.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      MICA_ASSERT_MSG(errno == EINTR, "poll failed");
      continue;
    }
    for (size_t i = 0; i < fds.size(); ++i)
      if (fds[i].revents != 0) on_readable(workers_[i]);
    std::erase_if(workers_, [](const Worker& w) { return w.fd < 0; });
  }
  std::sort(report_.failures.begin(), report_.failures.end(),
            [](const SweepFailure& a, const SweepFailure& b) { return a.seed < b.seed; });
  if (scenario_.check_sweep) report_.sweep_failure = scenario_.check_sweep(report_.totals, count);
  report_.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return std::move(report_);
}

void print_summary(const Scenario& scenario, const SweepOptions& options,
                   const SweepReport& report) {
  FILE* out = options.out;
  if (!report.sweep_failure.empty())
    fmt::print(out, "FAIL {} sweep check: {}\n", scenario.name, report.sweep_failure);
  if (options.quiet) return;
  std::string totals;
  for (const auto& [name, value] : report.totals) totals += fmt::format(" {}={}", name, value);
  fmt::print(out, "{} seeds {}-{}: {} run, {} failed; totals:{}\n", scenario.name,
             options.seeds.first, options.seeds.last, report.seeds_run, report.failures.size(),
             totals);
  fmt::print(out, "{}: {:.1f} s wall, {:.1f} seeds/s with {} job(s)\n", scenario.name,
             report.wall_seconds, report.seeds_per_second(), options.jobs);
  std::fflush(out);
}

}  // namespace

std::optional<SeedRange> parse_seed_range(std::string_view text) {
  size_t dash = text.find('-');
  if (dash == text.npos) {
    auto seed = parse_u64(text);
    if (!seed) return std::nullopt;
    return SeedRange{*seed, *seed};
  }
  auto first = parse_u64(text.substr(0, dash));
  auto last = parse_u64(text.substr(dash + 1));
  if (!first || !last || *last < *first) return std::nullopt;
  return SeedRange{*first, *last};
}

SeedRange sweep_seeds(uint64_t default_count) {
  const char* text = std::getenv("MICA_SIM_SEEDS");
  if (text == nullptr || *text == '\0') return SeedRange{1, std::max<uint64_t>(default_count, 1)};
  std::string_view view(text);
  if (view.find('-') != view.npos) {
    std::optional<SeedRange> range = parse_seed_range(view);
    MICA_ASSERT_MSG(range.has_value(), "MICA_SIM_SEEDS is not a count or a range A-B");
    return *range;
  }
  std::optional<uint64_t> count = parse_u64(view);
  MICA_ASSERT_MSG(count.has_value() && *count > 0, "MICA_SIM_SEEDS is not a count or a range");
  return SeedRange{1, *count};
}

std::string replay_command(std::string_view program, const Scenario& scenario, uint64_t seed) {
  return fmt::format("{} --scenario {} --seed {} --trace", program, scenario.name, seed);
}

SweepReport run_sweep(const Scenario& scenario, const SweepOptions& options) {
  Sweep sweep(scenario, options);
  SweepReport report = sweep.run();
  print_summary(scenario, options, report);
  return report;
}

}  // namespace mica::sim
