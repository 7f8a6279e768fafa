// Flags: the command-line parser shared by the bench programs that bench/run.sh drives.
//
// Accepts `--name value` pairs and bare `--name` switches, nothing else. A program asks for
// each flag it knows (with a default), then calls finish(), which rejects flags nobody
// asked for so that a typo in run.sh fails loudly instead of silently benchmarking the
// default. Bad values print the usage line and exit with status 2. Single-threaded; used
// only in main() before any executor starts.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

namespace mica::bench {

class Flags {
 public:
  Flags(int argc, char** argv, std::string usage) : usage_(std::move(usage)) {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (!arg.starts_with("--")) fail("unexpected argument '" + std::string(arg) + "'");
      std::string name(arg.substr(2));
      bool has_value = i + 1 < argc && !std::string_view(argv[i + 1]).starts_with("--");
      values_[name] = has_value ? argv[++i] : "";
    }
  }

  std::string text(const std::string& name, std::string fallback) {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    std::string value = it->second;
    values_.erase(it);
    return value;
  }

  // A positive number (sizes, depths, seconds); fractions allowed for durations.
  double number(const std::string& name, double fallback) {
    std::string value = text(name, "");
    if (value.empty()) return fallback;
    char* end = nullptr;
    double parsed = std::strtod(value.c_str(), &end);
    if (*end != '\0' || !(parsed > 0)) fail("--" + name + " needs a positive number");
    return parsed;
  }

  bool is_set(const std::string& name) {
    auto it = values_.find(name);
    if (it == values_.end()) return false;
    if (!it->second.empty()) fail("--" + name + " takes no value");
    values_.erase(it);
    return true;
  }

  void finish() {
    if (!values_.empty()) fail("unknown flag --" + values_.begin()->first);
  }

  [[noreturn]] void fail(const std::string& why) const {
    std::fprintf(stderr, "%s\nusage: %s\n", why.c_str(), usage_.c_str());
    std::exit(2);
  }

 private:
  std::string usage_;
  std::map<std::string, std::string> values_;  // flags not yet asked for
};

}  // namespace mica::bench
