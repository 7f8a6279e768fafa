#include "tests/meta/model_ops.h"

#include <array>
#include <sstream>

#include <fmt/format.h>

namespace mica::meta::model {
namespace {

constexpr std::array<const char*, 18> kKindNames = {
    "create",  "mknod", "mkdir",    "rmdir",    "unlink",   "rename",
    "link",    "symlink", "readlink", "chmod",  "chown",    "truncate",
    "utimens", "setxattr", "getxattr", "removexattr", "readdir", "stat"};

constexpr std::array<const char*, 4> kNames = {"a", "b", "c", "d"};
// Modes as programs pass them, SUID/SGID/sticky among them.
constexpr std::array<uint32_t, 12> kFileModes = {0644, 0600, 0666, 0755, 0640, 0604,
                                                 04755, 02755, 02745, 0444, 0000, 0660};
constexpr std::array<uint32_t, 11> kDirModes = {0755, 0777, 0700, 0711, 0750, 0770,
                                                01777, 02775, 01770, 0555, 0730};
constexpr std::array<uint32_t, 16> kChmodModes = {0755, 0700, 0777, 0644, 0600, 0711,
                                                  0555, 0000, 01777, 02775, 02755, 04755,
                                                  06755, 02745, 0770, 01730};
constexpr std::array<uint32_t, 5> kIds = {0, 1000, 1001, 1002, 1003};
constexpr std::array<const char*, 4> kXattrNames = {"user.a", "user.b", "user.c",
                                                    "trusted.t"};
constexpr std::array<const char*, 3> kTargets = {"t-x", "t-y/z", "t-long-target"};

std::string time_word(TimeSet set, int64_t ns) {
  if (set == TimeSet::kOmit) return "omit";
  if (set == TimeSet::kNow) return "now";
  return std::to_string(ns);
}

bool parse_time(const std::string& word, TimeSet& set, int64_t& ns) {
  if (word == "omit") {
    set = TimeSet::kOmit;
  } else if (word == "now") {
    set = TimeSet::kNow;
  } else {
    set = TimeSet::kValue;
    ns = std::stoll(word);
  }
  return true;
}

std::string id_word(const std::optional<uint32_t>& id) {
  return id ? std::to_string(*id) : std::string("-1");
}

std::optional<uint32_t> parse_id(const std::string& word) {
  if (word == "-1") return std::nullopt;
  return static_cast<uint32_t>(std::stoul(word));
}

Path parse_path(const std::string& text) {
  Path path;
  if (text == ".") return path;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, '/')) path.push_back(part);
  return path;
}

}  // namespace

const char* op_kind_name(OpKind kind) { return kKindNames[static_cast<size_t>(kind)]; }

const std::vector<Credentials>& users() {
  static const std::vector<Credentials> all = {
      {.uid = 0, .gid = 0, .groups = {}},
      {.uid = 1000, .gid = 1000, .groups = {}},
      {.uid = 1001, .gid = 1001, .groups = {1000}},
      {.uid = 1002, .gid = 1000, .groups = {1001, 1003}},
  };
  return all;
}

std::string path_string(const Path& path) {
  if (path.empty()) return ".";
  std::string out;
  for (const std::string& part : path) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

std::string op_to_line(const Op& op) {
  std::string line = std::to_string(op.user) + " " + op_kind_name(op.kind) + " " +
                     path_string(op.path);
  auto octal = [](uint32_t mode) { return fmt::format("0{:o}", mode); };
  switch (op.kind) {
    case OpKind::kCreate:
    case OpKind::kMknod:
    case OpKind::kMkdir:
    case OpKind::kChmod:
      return line + " " + octal(op.mode);
    case OpKind::kRename:
      return line + " " + path_string(op.path2) + (op.noreplace ? " noreplace" : " -") +
             (op.exchange ? " exchange" : " -");
    case OpKind::kLink:
      return line + " " + path_string(op.path2);
    case OpKind::kSymlink:
      return line + " " + op.target;
    case OpKind::kChown:
      return line + " " + id_word(op.uid) + " " + id_word(op.gid);
    case OpKind::kTruncate:
      return line + " " + std::to_string(op.size);
    case OpKind::kUtimens:
      return line + " " + time_word(op.atime, op.atime_ns) + " " +
             time_word(op.mtime, op.mtime_ns);
    case OpKind::kSetxattr:
      return line + " " + op.xname + " " + op.xvalue + " " +
             std::to_string(static_cast<int>(op.xmode));
    case OpKind::kGetxattr:
    case OpKind::kRemovexattr:
      return line + " " + op.xname;
    default:
      return line;
  }
}

std::optional<Op> parse_op(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  if (words.size() < 3) return std::nullopt;
  Op op;
  op.user = static_cast<uint32_t>(std::stoul(words[0]));
  size_t kind = 0;
  while (kind < kKindNames.size() && words[1] != kKindNames[kind]) ++kind;
  if (kind == kKindNames.size()) return std::nullopt;
  op.kind = static_cast<OpKind>(kind);
  op.path = parse_path(words[2]);
  auto arg = [&](size_t i) { return i < words.size() ? words[i] : std::string(); };
  switch (op.kind) {
    case OpKind::kCreate:
    case OpKind::kMknod:
    case OpKind::kMkdir:
    case OpKind::kChmod:
      op.mode = static_cast<uint32_t>(std::stoul(arg(3), nullptr, 8));
      break;
    case OpKind::kRename:
      op.path2 = parse_path(arg(3));
      op.noreplace = arg(4) == "noreplace";
      op.exchange = arg(5) == "exchange";
      break;
    case OpKind::kLink:
      op.path2 = parse_path(arg(3));
      break;
    case OpKind::kSymlink:
      op.target = arg(3);
      break;
    case OpKind::kChown:
      op.uid = parse_id(arg(3));
      op.gid = parse_id(arg(4));
      break;
    case OpKind::kTruncate:
      op.size = std::stoull(arg(3));
      break;
    case OpKind::kUtimens:
      parse_time(arg(3), op.atime, op.atime_ns);
      parse_time(arg(4), op.mtime, op.mtime_ns);
      break;
    case OpKind::kSetxattr:
      op.xname = arg(3);
      op.xvalue = arg(4);
      op.xmode = static_cast<XattrMode>(std::stoi(arg(5)));
      break;
    case OpKind::kGetxattr:
    case OpKind::kRemovexattr:
      op.xname = arg(3);
      break;
    default:
      break;
  }
  return op;
}

uint64_t Random::next() {
  state_ += 0x9e3779b97f4a7c15ull;
  uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

Path OpGenerator::random_path(bool parent_only) {
  // Depth 1 most often, 2 and 3 less: deeper paths walk through directories that may be
  // files, symlinks or missing.
  uint32_t depth = 1 + (random_.chance(30) ? 1 : 0) + (random_.chance(10) ? 1 : 0);
  Path path;
  for (uint32_t i = 0; i < depth; ++i) {
    // Parents come from {a, b, c}, the final name from all four.
    uint32_t n = (parent_only || i + 1 < depth) ? 3 : 4;
    path.push_back(kNames[random_.below(n)]);
  }
  return path;
}

Path OpGenerator::pick_path(const std::vector<Path>& existing, bool dir_like) {
  if (!existing.empty() && random_.chance(65)) {
    Path path = existing[random_.below(static_cast<uint32_t>(existing.size()))];
    // Sometimes a new name inside an existing path, so creations succeed.
    if (dir_like && path.size() < 3 && random_.chance(40)) {
      path.push_back(kNames[random_.below(4)]);
    }
    return path;
  }
  return random_path(false);
}

void OpGenerator::fill_args(Op& op) {
  switch (op.kind) {
    case OpKind::kCreate:
    case OpKind::kMknod:
      op.mode = kFileModes[random_.below(kFileModes.size())];
      break;
    case OpKind::kMkdir:
      op.mode = kDirModes[random_.below(kDirModes.size())];
      break;
    case OpKind::kChmod:
      op.mode = kChmodModes[random_.below(kChmodModes.size())];
      break;
    case OpKind::kRename:
      op.noreplace = random_.chance(20);
      op.exchange = random_.chance(20);
      break;
    case OpKind::kSymlink:
      op.target = kTargets[random_.below(kTargets.size())];
      break;
    case OpKind::kChown: {
      uint32_t which = random_.below(3);
      if (which != 1) op.uid = kIds[random_.below(kIds.size())];
      if (which != 0) op.gid = kIds[random_.below(kIds.size())];
      break;
    }
    case OpKind::kTruncate:
      op.size = random_.chance(50) ? 0 : 1000 * (1 + random_.below(3));
      break;
    case OpKind::kUtimens: {
      std::array<TimeSet, 3> sets = {TimeSet::kOmit, TimeSet::kNow, TimeSet::kValue};
      op.atime = sets[random_.below(3)];
      op.mtime = sets[random_.below(3)];
      op.atime_ns = 1'000'000'000ll * (1 + random_.below(1000));
      op.mtime_ns = 1'000'000'000ll * (1 + random_.below(1000));
      break;
    }
    case OpKind::kSetxattr:
      op.xvalue = "v" + std::to_string(random_.below(10));
      op.xmode = static_cast<XattrMode>(random_.below(3));
      [[fallthrough]];
    case OpKind::kGetxattr:
    case OpKind::kRemovexattr:
      op.xname = kXattrNames[random_.below(kXattrNames.size())];
      break;
    default:
      break;
  }
}

Op OpGenerator::next(const std::vector<Path>& existing) {
  // Weights: creations and removals dominate so the tree keeps changing.
  struct Weighted {
    OpKind kind;
    uint32_t weight;
  };
  static constexpr std::array<Weighted, 18> kWeights = {{
      {OpKind::kCreate, 10},  {OpKind::kMknod, 3},     {OpKind::kMkdir, 12},
      {OpKind::kRmdir, 5},    {OpKind::kUnlink, 6},    {OpKind::kRename, 12},
      {OpKind::kLink, 5},     {OpKind::kSymlink, 4},   {OpKind::kReadlink, 2},
      {OpKind::kChmod, 8},    {OpKind::kChown, 6},     {OpKind::kTruncate, 3},
      {OpKind::kUtimens, 4},  {OpKind::kSetxattr, 5},  {OpKind::kGetxattr, 3},
      {OpKind::kRemovexattr, 2}, {OpKind::kReaddir, 4}, {OpKind::kStat, 3},
  }};
  uint32_t total = 0;
  for (const Weighted& w : kWeights) total += w.weight;
  uint32_t pick = random_.below(total);
  Op op;
  for (const Weighted& w : kWeights) {
    if (pick < w.weight) {
      op.kind = w.kind;
      break;
    }
    pick -= w.weight;
  }
  op.user = random_.below(static_cast<uint32_t>(users().size()));
  bool creates = op.kind == OpKind::kCreate || op.kind == OpKind::kMknod ||
                 op.kind == OpKind::kMkdir || op.kind == OpKind::kSymlink;
  op.path = pick_path(existing, creates);
  if (op.kind == OpKind::kReaddir && random_.chance(20)) op.path.clear();
  if (op.kind == OpKind::kRename || op.kind == OpKind::kLink) {
    op.path2 = pick_path(existing, true);
  }
  fill_args(op);
  return op;
}

}  // namespace mica::meta::model
