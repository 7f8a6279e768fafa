// The command line the three client examples share: `--mgmtd H:P --token-file F`, the
// program's own `--name value` options, then its positional arguments, and the one way
// they report errors (a status with its errno name) so every example reads the same.
//
// Plain functions for main(), before any executor runs; nothing here suspends or keeps
// state. A bad command line is the caller's cue to print its usage line and exit 2.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "async/status.h"
#include "client/client.h"
#include "client/errno.h"

namespace mica::examples {

struct ExampleArgs {
  client::ClientOptions client;                // mgmtd and token_file filled in
  std::map<std::string, std::string> options;  // the program's own --name value pairs
  std::vector<std::string> positional;
};

// Parses argv; nullopt (after printing why) when --mgmtd is missing, an option is not in
// `known`, an option has no value or the count of positional arguments is not `positional`.
inline std::optional<ExampleArgs> parse_example_args(int argc, char** argv,
                                                     const std::vector<std::string>& known,
                                                     size_t positional) {
  ExampleArgs args;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (!arg.starts_with("--")) {
      args.positional.emplace_back(arg);
      continue;
    }
    std::string name(arg.substr(2));
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: --%s needs a value\n", argv[0], name.c_str());
      return std::nullopt;
    }
    std::string value = argv[++i];
    if (name == "mgmtd") {
      args.client.mgmtd = value;
    } else if (name == "token-file") {
      args.client.token_file = value;
    } else if (std::find(known.begin(), known.end(), name) != known.end()) {
      args.options[name] = value;
    } else {
      std::fprintf(stderr, "%s: unknown option --%s\n", argv[0], name.c_str());
      return std::nullopt;
    }
  }
  if (args.client.mgmtd.empty()) {
    std::fprintf(stderr, "%s: --mgmtd is required\n", argv[0]);
    return std::nullopt;
  }
  if (args.positional.size() != positional) {
    std::fprintf(stderr, "%s: expected %zu argument%s, got %zu\n", argv[0], positional,
                 positional == 1 ? "" : "s", args.positional.size());
    return std::nullopt;
  }
  return args;
}

// The value of option `name` as a positive integer (fallback when absent); nullopt (after
// printing why) when it is not one.
inline std::optional<uint64_t> positive_option(const ExampleArgs& args, const char* program,
                                               const std::string& name, uint64_t fallback) {
  auto it = args.options.find(name);
  if (it == args.options.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(it->second.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || value == 0 || it->second.starts_with('-')) {
    std::fprintf(stderr, "%s: --%s needs a positive integer, not '%s'\n", program, name.c_str(),
                 it->second.c_str());
    return std::nullopt;
  }
  return value;
}

// "program: what: status (errno name)" on stderr.
inline void report_error(const char* program, const std::string& what, const Status& status) {
  int error = client::status_to_errno(status);
  std::fprintf(stderr, "%s: %s: %s (%s)\n", program, what.c_str(), status.to_string().c_str(),
               error == 0 ? "no errno" : std::strerror(error));
}

}  // namespace mica::examples
