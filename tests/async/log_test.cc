// The logger: level filtering before formatting, the shape of a line, rate limiting per call
// site, file sinks, virtual timestamps in the simulator, whole lines from several threads.
#include "async/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "async/sim/world.h"
#include "async/wait_list.h"

namespace mica {
namespace {

using namespace std::chrono_literals;

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::current_path() /
           ("log_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    configure(LogLevel::kDebug, 0, 10s);
  }
  void TearDown() override {
    EXPECT_TRUE(log_configure(LogConfig{}).ok());
    std::filesystem::remove_all(dir_);
  }

  void configure(LogLevel level, uint32_t site_lines_max, Duration interval,
                 std::string name = "log.txt") {
    LogConfig config;
    config.level = level;
    config.path = (dir_ / name).string();
    config.site_lines_max = site_lines_max;
    config.site_interval = interval;
    Status s = log_configure(config);
    ASSERT_TRUE(s.ok()) << s;
  }

  std::vector<std::string> lines(std::string name = "log.txt") {
    std::ifstream in(dir_ / name);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  std::filesystem::path dir_;
};

// One call site, so every call shares one rate-limit window.
void log_repeated(int i) {
  MICA_LOG(Info, "test", "repeated {}", i);
}

TEST_F(LogTest, DisabledLevelsAreNeitherFormattedNorWritten) {
  configure(LogLevel::kWarn, 0, 10s);
  int evaluated = 0;
  auto touch = [&evaluated] { return ++evaluated; };
  MICA_LOG(Debug, "test", "debug {}", touch());
  MICA_LOG(Info, "test", "info {}", touch());
  MICA_LOG(Warn, "test", "warn {}", touch());
  MICA_LOG(Error, "test", "error {}", touch());
  EXPECT_EQ(evaluated, 2);
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].ends_with(" WARN test: warn 1")) << got[0];
  EXPECT_TRUE(got[1].ends_with(" ERROR test: error 2")) << got[1];
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));
  EXPECT_TRUE(log_enabled(LogLevel::kError));
}

TEST_F(LogTest, LineHasWallClockTimestampLevelModuleAndMessage) {
  MICA_LOG(Info, "net", "peer {} closed: {}", "10.0.0.1:7000", 42);
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 1u);
  std::regex shape(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z )"
                   R"(INFO net: peer 10\.0\.0\.1:7000 closed: 42$)");
  EXPECT_TRUE(std::regex_match(got[0], shape)) << got[0];
}

TEST_F(LogTest, EmbeddedNewlinesStayOnOneLine) {
  MICA_LOG(Warn, "chunk", "first\nsecond");
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].ends_with(" WARN chunk: first\\nsecond")) << got[0];
}

TEST_F(LogTest, LongMessagesAreCutToTheLineCap) {
  std::string huge(3 * kLogLineBytesMax, 'x');
  MICA_LOG(Info, "test", "{}", huge);
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_LE(got[0].size() + 1, kLogLineBytesMax);  // + 1: the newline
  EXPECT_GT(got[0].size() + 8, kLogLineBytesMax);
  EXPECT_TRUE(got[0].ends_with("x...")) << got[0].substr(got[0].size() - 10);
}

TEST_F(LogTest, RepeatedLinesAreSuppressedAndTheCountIsReported) {
  configure(LogLevel::kInfo, 3, std::chrono::hours(1));
  for (int i = 0; i < 10; ++i) log_repeated(i);
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[2].ends_with("test: repeated 2")) << got[2];
  // A zero interval has always elapsed: the next line opens a new window and reports.
  configure(LogLevel::kInfo, 3, 0s);
  log_repeated(10);
  got = lines();
  ASSERT_EQ(got.size(), 5u);
  EXPECT_NE(got[3].find(" INFO test: suppressed 7 more lines from async/log_test.cc:"),
            std::string::npos)
      << got[3];
  EXPECT_TRUE(got[4].ends_with("test: repeated 10")) << got[4];
}

TEST_F(LogTest, CallSitesAreLimitedSeparately) {
  configure(LogLevel::kInfo, 1, std::chrono::hours(1));
  for (int i = 0; i < 3; ++i) {
    MICA_LOG(Info, "a", "site a {}", i);
    MICA_LOG(Info, "b", "site b {}", i);
  }
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].ends_with("a: site a 0")) << got[0];
  EXPECT_TRUE(got[1].ends_with("b: site b 0")) << got[1];
}

// Its own call site: rate-limit windows outlive a test.
void log_repeated_in_sim(int i) {
  MICA_LOG(Info, "test", "repeated {}", i);
}

Task<void> log_on_virtual_time() {
  for (int i = 0; i < 5; ++i) log_repeated_in_sim(i);
  SleepAwaiter nap = sleep_for(1500ms);
  Status slept = co_await nap;
  EXPECT_TRUE(slept.ok()) << slept;
  log_repeated_in_sim(5);
}

TEST_F(LogTest, SimulatedExecutorsStampAndLimitByVirtualTime) {
  configure(LogLevel::kInfo, 3, 1s);
  sim::SimWorld world(1);
  sim::SimHost& host = world.add_host("a");
  TimePoint start = world.now();
  world.run(host, log_on_virtual_time());
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 5u);
  std::string first = fmt::format("sim+{}.{:09} INFO test: repeated 0",
                                  to_ns(start) / 1'000'000'000, to_ns(start) % 1'000'000'000);
  EXPECT_EQ(got[0], first);
  int64_t later_ns = to_ns(start + 1500ms);
  std::string stamp =
      fmt::format("sim+{}.{:09} INFO test: ", later_ns / 1'000'000'000, later_ns % 1'000'000'000);
  EXPECT_TRUE(got[3].starts_with(stamp + "suppressed 2 more lines from ")) << got[3];
  EXPECT_EQ(got[4], stamp + "repeated 5");
}

TEST_F(LogTest, FileSinkAppendsAndCanBeSwitched) {
  {
    std::ofstream earlier(dir_ / "log.txt");
    earlier << "earlier content\n";
  }
  MICA_LOG(Info, "test", "one");
  configure(LogLevel::kInfo, 0, 10s, "other.txt");
  MICA_LOG(Info, "test", "two");
  std::vector<std::string> first = lines();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0], "earlier content");
  EXPECT_TRUE(first[1].ends_with("test: one"));
  std::vector<std::string> second = lines("other.txt");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_TRUE(second[0].ends_with("test: two"));
}

TEST_F(LogTest, UnopenableFileFailsAndKeepsTheSink) {
  LogConfig bad;
  bad.level = LogLevel::kError;
  bad.path = (dir_ / "no" / "such" / "dir" / "log.txt").string();
  EXPECT_FALSE(log_configure(bad).ok());
  EXPECT_EQ(log_config().level, LogLevel::kDebug);
  MICA_LOG(Info, "test", "still here");
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].ends_with("test: still here"));
}

TEST(LogLevelTest, NamesParseInAnyCase) {
  EXPECT_EQ(*log_level_from_name("debug"), LogLevel::kDebug);
  EXPECT_EQ(*log_level_from_name("Info"), LogLevel::kInfo);
  EXPECT_EQ(*log_level_from_name("WARN"), LogLevel::kWarn);
  EXPECT_EQ(*log_level_from_name("error"), LogLevel::kError);
  EXPECT_EQ(*log_level_from_name("off"), LogLevel::kOff);
  EXPECT_EQ(log_level_from_name("warning").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(log_level_from_name("").ok());
}

void log_lines(int thread, int count, std::string padding) {
  for (int i = 0; i < count; ++i)
    MICA_LOG(Info, "test", "thread {} line {} {}", thread, i, padding);
}

// 4 threads x 5,000 lines of ~300 bytes: well under a second.
TEST_F(LogTest, ConcurrentThreadsWriteWholeLines) {
  constexpr int kThreads = 4;
  constexpr int kLines = 5000;
  std::string padding(256, 'p');
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(log_lines, t, kLines, padding);
  for (std::thread& t : threads) t.join();
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), size_t{kThreads * kLines});
  std::vector<int> next(kThreads, 0);
  constexpr size_t kStampBytes = sizeof("2026-12-01T08:33:27.123456Z") - 1;
  constexpr std::string_view kPrefix = " INFO test: thread ";
  for (const std::string& line : got) {
    ASSERT_GT(line.size(), kStampBytes + kPrefix.size()) << line;
    ASSERT_EQ(line[kStampBytes - 1], 'Z') << line;
    int thread = line[kStampBytes + kPrefix.size()] - '0';
    ASSERT_TRUE(thread >= 0 && thread < kThreads) << line;
    // Each thread's lines arrive whole and in its own order.
    std::string expected = fmt::format("{}{} line {} {}", kPrefix, thread, next[thread]++, padding);
    ASSERT_EQ(line.substr(kStampBytes), expected);
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kLines);
}

}  // namespace
}  // namespace mica
