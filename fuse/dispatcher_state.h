// The Dispatcher's per-lane state (fuse/dispatcher.h): the lane's request scope, the request
// tasks an INTERRUPT may cancel, its supplementary-group cache and its last STATFS answer;
// and the mount's directory handles.
// Owned by the Dispatcher, touched only on the lane's executor; private to fuse/dispatcher*.cc
// and fuse/ops_*.cc.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "async/scope.h"
#include "async/time.h"
#include "fuse/dispatcher.h"
#include "meta/meta_service.h"
#include "meta/types.h"

namespace mica::fuse {

// An open directory: READDIR offsets are entry numbers (1 ".", 2 "..", then 3, 4, ...);
// `page` maps the offsets of the last page sent back to names, so the kernel's next offset
// becomes the metadata service's "after name" without re-reading from the start.
struct Dispatcher::DirHandle {
  meta::Inode dir;
  std::vector<std::pair<uint64_t, std::string>> page;  // offset -> name, ascending
  bool end = false;  // the last page sent reached the end of the directory
  uint64_t end_offset = 0;
};

// Open directories of the mount: any lane may receive a handle's READDIR or RELEASEDIR (the
// kernel's input queue is shared by all fds), so this one table is under a mutex, never held
// across a suspension.
struct Dispatcher::DirTable {
  std::mutex mutex;
  std::map<uint64_t, DirHandle> dirs;  // fh -> open directory
  uint64_t next_handle = 1;
};

struct Dispatcher::LaneState {
  struct Groups {
    uint32_t uid = 0;
    std::vector<uint32_t> groups;
    TimePoint expires{};
  };
  TaskScope scope;                           // every request task of the lane
  std::map<uint64_t, TaskScope*> in_flight;  // unique -> a cancellable request's scope
  std::map<uint32_t, Groups> groups;         // pid -> its supplementary groups
  // The last STATFS answer, reused until it expires (tools such as stress-ng ask before
  // every operation; the metadata service's answer sums every shard).
  std::optional<meta::StatfsReply> statfs;
  TimePoint statfs_expires{};
};

}  // namespace mica::fuse
