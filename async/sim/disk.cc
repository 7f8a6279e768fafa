// SimDisk: names, content changes and power loss (see disk.h). The ops of SimBackend that
// use it live in disk_ops.cc.
#include "async/sim/disk.h"

#include <cerrno>
#include <cstring>
#include <set>

#include "async/assert.h"

namespace mica::sim {
namespace {

std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();  // ".." of the root is the root
    } else if (!part.empty() && part != ".") {
      parts.emplace_back(part);
    }
    i = j + 1;
  }
  return parts;
}

void apply_write(std::string& content, uint64_t offset, std::string_view data) {
  uint64_t end = offset + data.size();
  if (content.size() < end) content.resize(end, '\0');
  if (!data.empty()) std::memcpy(content.data() + offset, data.data(), data.size());
}

void apply_change(std::string& content, const SimChange& change) {
  if (change.kind == SimChange::Kind::kResize)
    content.resize(change.offset, '\0');
  else
    apply_write(content, change.offset, change.data);
}

}  // namespace

SimDisk::SimDisk() {
  SimNode& root = nodes_[kRoot];
  root.directory = true;
  root.links = 1;  // the root is named by the disk itself
}

std::string SimDisk::normalize(std::string_view path) {
  std::string out;
  for (const std::string& part : components(path)) {
    out += '/';
    out += part;
  }
  return out.empty() ? std::string("/") : out;
}

SimNode* SimDisk::node(SimNodeId id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

const SimNode* SimDisk::node(SimNodeId id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

SimNodeId SimDisk::new_node(bool directory) {
  SimNodeId id = next_id_++;
  nodes_[id].directory = directory;
  return id;
}

int32_t SimDisk::resolve_parent(std::string_view path, SimNodeId* parent, std::string* name) const {
  std::vector<std::string> parts = components(path);
  SimNodeId at = kRoot;
  name->clear();
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const SimNode* dir = node(at);
    if (!dir->directory) return -ENOTDIR;
    auto it = dir->entries.find(parts[i]);
    if (it == dir->entries.end()) return -ENOENT;
    at = it->second;
  }
  if (!node(at)->directory) return -ENOTDIR;
  *parent = at;
  if (!parts.empty()) *name = parts.back();
  return 0;
}

int32_t SimDisk::lookup(std::string_view path, SimNodeId* id) const {
  SimNodeId parent = kRoot;
  std::string name;
  if (int32_t rc = resolve_parent(path, &parent, &name); rc != 0) return rc;
  if (name.empty()) {
    *id = kRoot;
    return 0;
  }
  const SimNode* dir = node(parent);
  auto it = dir->entries.find(name);
  if (it == dir->entries.end()) return -ENOENT;
  *id = it->second;
  return 0;
}

void SimDisk::unlink(SimNodeId id) {
  SimNode* n = node(id);
  if (n == nullptr) return;  // already collected (a cycle left by a crash)
  MICA_ASSERT(n->links > 0);
  --n->links;
  collect(id);
}

void SimDisk::collect(SimNodeId id) {
  SimNode* n = node(id);
  if (id == kRoot || n == nullptr || n->links > 0 || n->open_fds > 0) return;
  // A directory no name reaches still names its children (its synced names at least).
  std::vector<SimNodeId> children;
  for (auto& [name, child] : n->entries) children.push_back(child);
  for (auto& [name, child] : n->durable_entries) children.push_back(child);
  nodes_.erase(id);
  for (SimNodeId child : children) unlink(child);
}

void SimDisk::close_fd(SimNodeId id) {
  SimNode* n = node(id);
  MICA_ASSERT(n != nullptr && n->open_fds > 0);
  --n->open_fds;
  collect(id);
}

void SimDisk::set_entry(SimNodeId dir, const std::string& name, SimNodeId target) {
  link(target);
  auto [it, inserted] = node(dir)->entries.try_emplace(name, target);
  if (inserted) return;
  SimNodeId old = it->second;
  it->second = target;
  unlink(old);
}

void SimDisk::erase_entry(SimNodeId dir, const std::string& name) {
  SimNode* d = node(dir);
  auto it = d->entries.find(name);
  MICA_ASSERT(it != d->entries.end());
  SimNodeId old = it->second;
  d->entries.erase(it);
  unlink(old);
}

int32_t SimDisk::create_file(std::string_view path, bool exclusive, SimNodeId* id) {
  SimNodeId parent = kRoot;
  std::string name;
  if (int32_t rc = resolve_parent(path, &parent, &name); rc != 0) return rc;
  if (name.empty()) return -EISDIR;  // the root
  SimNode* dir = node(parent);
  if (auto it = dir->entries.find(name); it != dir->entries.end()) {
    if (exclusive) return -EEXIST;
    *id = it->second;
    return 0;
  }
  *id = new_node(false);
  set_entry(parent, name, *id);
  return 0;
}

int32_t SimDisk::make_directory(std::string_view path) {
  SimNodeId parent = kRoot;
  std::string name;
  if (int32_t rc = resolve_parent(path, &parent, &name); rc != 0) return rc;
  if (name.empty() || node(parent)->entries.count(name) != 0) return -EEXIST;
  set_entry(parent, name, new_node(true));
  return 0;
}

int32_t SimDisk::rename(std::string_view from, std::string_view to) {
  SimNodeId from_dir = kRoot, to_dir = kRoot;
  std::string from_name, to_name;
  if (int32_t rc = resolve_parent(from, &from_dir, &from_name); rc != 0) return rc;
  if (from_name.empty()) return -EBUSY;
  auto it = node(from_dir)->entries.find(from_name);
  if (it == node(from_dir)->entries.end()) return -ENOENT;
  SimNodeId source = it->second;
  if (int32_t rc = resolve_parent(to, &to_dir, &to_name); rc != 0) return rc;
  if (to_name.empty()) return -EBUSY;
  std::string from_path = normalize(from), to_path = normalize(to);
  if (from_path == to_path) return 0;
  bool is_dir = node(source)->directory;
  if (is_dir && to_path.starts_with(from_path + "/")) return -EINVAL;  // into itself
  if (auto target = node(to_dir)->entries.find(to_name); target != node(to_dir)->entries.end()) {
    const SimNode* replaced = node(target->second);
    if (target->second == source) return 0;
    if (is_dir && !replaced->directory) return -ENOTDIR;
    if (!is_dir && replaced->directory) return -EISDIR;
    if (replaced->directory && !replaced->entries.empty()) return -ENOTEMPTY;
  }
  set_entry(to_dir, to_name, source);  // links source before the old name lets go of it
  erase_entry(from_dir, from_name);
  return 0;
}

int32_t SimDisk::remove(std::string_view path, bool directory) {
  SimNodeId parent = kRoot;
  std::string name;
  if (int32_t rc = resolve_parent(path, &parent, &name); rc != 0) return rc;
  if (name.empty()) return -EBUSY;
  auto it = node(parent)->entries.find(name);
  if (it == node(parent)->entries.end()) return -ENOENT;
  const SimNode* n = node(it->second);
  if (directory && !n->directory) return -ENOTDIR;
  if (!directory && n->directory) return -EISDIR;
  if (directory && !n->entries.empty()) return -ENOTEMPTY;
  erase_entry(parent, name);
  return 0;
}

void SimDisk::sync_directory(SimNodeId id) {
  SimNode* dir = node(id);
  MICA_ASSERT(dir != nullptr && dir->directory);
  std::map<std::string, SimNodeId> old = std::move(dir->durable_entries);
  dir->durable_entries = dir->entries;
  // Link the new names first: a node named by both must not be collected in between.
  for (auto& [name, target] : dir->durable_entries) link(target);
  for (auto& [name, target] : old) unlink(target);
}

void SimDisk::make_durable_directories(std::string_view path) {
  SimNodeId at = kRoot;
  for (const std::string& part : components(path)) {
    SimNode* dir = node(at);
    MICA_ASSERT_MSG(dir->directory, "make_durable_directories through a file");
    if (auto it = dir->entries.find(part); it != dir->entries.end()) {
      at = it->second;
      continue;
    }
    SimNodeId id = new_node(true);
    set_entry(at, part, id);
    node(at)->durable_entries[part] = id;
    link(id);
    at = id;
  }
}

const SimFile* SimDisk::find(const std::string& path) const {
  SimNodeId id = 0;
  if (lookup(path, &id) != 0) return nullptr;
  const SimNode* n = node(id);
  return n->directory ? nullptr : &n->file;
}

uint64_t SimDisk::used_bytes() const {
  uint64_t used = 0;
  for (auto& [id, n] : nodes_)
    if (!n.directory) used += n.file.usage_bytes();
  return used;
}

// ---- content ----

void SimDisk::write(SimFile& file, uint64_t offset, std::string_view data, bool synced) {
  apply_write(file.current, offset, data);
  if (synced && file.changes.empty()) {  // nothing older is pending: durable at once
    apply_write(file.durable, offset, data);
    return;
  }
  file.changes.push_back(SimChange{SimChange::Kind::kWrite, synced, offset, std::string(data)});
  file.change_bytes += data.size();
  while (file.changes.size() > kChangesPerFileMax || file.change_bytes > kChangeBytesPerFileMax)
    write_back_oldest(file);
}

void SimDisk::resize(SimFile& file, uint64_t size_bytes) {
  file.current.resize(size_bytes, '\0');
  file.changes.push_back(SimChange{SimChange::Kind::kResize, false, size_bytes, {}});
  while (file.changes.size() > kChangesPerFileMax) write_back_oldest(file);
}

void SimDisk::sync(SimFile& file) {
  // Every change to `current` is in the list, so replaying it gives `current` again, at the
  // cost of the changes rather than of the whole file (a log fsynced per append).
  for (const SimChange& change : file.changes) apply_change(file.durable, change);
  MICA_ASSERT(file.durable.size() == file.current.size());
  file.changes.clear();
  file.change_bytes = 0;
}

void SimDisk::write_back_oldest(SimFile& file) {
  // The oldest change reaches the disk, and with it any synced ones right behind it.
  do {
    const SimChange& oldest = file.changes.front();
    apply_change(file.durable, oldest);
    file.change_bytes -= oldest.data.size();
    file.changes.pop_front();
  } while (!file.changes.empty() && file.changes.front().synced);
}

// ---- power loss ----

void SimDisk::recover(SimFile& file, SimRandom& random, const SimDiskConfig& config) {
  std::string content = std::move(file.durable);
  for (SimChange& change : file.changes) {
    if (!change.synced && !random.chance(config.crash_keep_unsynced_probability)) continue;
    uint64_t end = change.offset + change.data.size();
    uint64_t first = (change.offset / kTearBoundaryBytes + 1) * kTearBoundaryBytes;
    if (!change.synced && change.kind == SimChange::Kind::kWrite && first < end &&
        random.chance(config.crash_tear_probability)) {
      uint64_t boundaries = (end - 1 - first) / kTearBoundaryBytes + 1;
      uint64_t cut = first + random.below(boundaries) * kTearBoundaryBytes - change.offset;
      if (random.below(2) == 0)
        change.data.resize(cut);  // the head reached the disk
      else {
        change.data.erase(0, cut);  // the tail did
        change.offset += cut;
      }
    }
    apply_change(content, change);
  }
  file.current = content;
  file.durable = std::move(content);
  file.changes.clear();
  file.change_bytes = 0;
}

void SimDisk::forget_unreachable() {
  std::set<SimNodeId> reached{kRoot};
  std::vector<SimNodeId> to_visit{kRoot};
  while (!to_visit.empty()) {
    SimNodeId id = to_visit.back();
    to_visit.pop_back();
    for (auto& [name, child] : node(id)->entries)
      if (reached.insert(child).second) to_visit.push_back(child);
  }
  for (auto it = nodes_.begin(); it != nodes_.end();)
    it = reached.count(it->first) ? std::next(it) : nodes_.erase(it);
  for (auto& [id, n] : nodes_) {
    n.links = id == kRoot ? 1 : 0;
    n.open_fds = 0;
  }
  for (auto& [id, n] : nodes_) {
    for (auto& [name, child] : n.entries) ++node(child)->links;
    for (auto& [name, child] : n.durable_entries) ++node(child)->links;
  }
}

void SimDisk::crash(SimRandom& random, const SimDiskConfig& config) {
  for (auto& [id, n] : nodes_)
    if (n.directory) n.entries = n.durable_entries;
  forget_unreachable();
  for (auto& [id, n] : nodes_)
    if (!n.directory) recover(n.file, random, config);
}

}  // namespace mica::sim
