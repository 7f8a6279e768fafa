// ServiceDriver: the metadata-service half of the model-based test
// (tests/meta/meta_model_test.cc). It performs one operation of tests/meta/model_ops.h on an
// in-process MetaServer (meta/meta_server.h: its MetaService methods called directly, which
// dispatch to the shards and the coordinator as a request from the network would) the way a
// client's path walk does — a lookup per component with the operation's credentials, a
// symlink met on the way is ENOENT (model_ops.h: targets never resolve) — and answers with
// the model's Outcome (tests/meta/posix_model.h). dump() lists the whole tree in
// PosixModel::dump()'s form through readdir, getattr and the xattr calls as root.
//
// Owned by the test body's coroutine; every call on the server's executor; the server
// outlives the driver. Calls suspend (the server's commits).
#pragma once

#include <map>
#include <string>

#include "async/task.h"
#include "meta/meta_server.h"
#include "tests/meta/model_ops.h"
#include "tests/meta/posix_model.h"

namespace mica::meta::model {

// The attributes of an inode in PosixModel::attr_line()'s form.
std::string service_attr_line(const Inode& inode);

class ServiceDriver {
 public:
  explicit ServiceDriver(MetaServer* server) : server_(server) {}

  Task<Outcome> apply(Op op);
  Task<Result<std::string>> dump();
  // Sets the root directory's mode (as root) before a sequence starts.
  Task<Status> set_root_mode(uint32_t mode);

 private:
  // The directory holding path's last component (lookups of the ones before it).
  Task<Result<InodeId>> walk(Credentials cred, Path path);
  // The inode path names; a final symlink is ENOENT when `follow`.
  Task<Result<Inode>> resolve(Credentials cred, Path path, bool follow);

  Task<Outcome> make(Op op, Credentials cred);
  Task<Outcome> remove(Op op, Credentials cred);
  Task<Outcome> rename(Op op, Credentials cred);
  Task<Outcome> link(Op op, Credentials cred);
  Task<Outcome> setattr(Op op, Credentials cred);
  Task<Outcome> xattr(Op op, Credentials cred);
  Task<Outcome> read_op(Op op, Credentials cred);
  Task<Result<std::string>> read_dir(Credentials cred, InodeId dir);

  Task<Result<std::string>> xattrs_of(InodeId inode);
  Task<Status> dump_dir(InodeId dir, std::string prefix, std::map<InodeId, std::string>* seen,
                        std::string* out);

  RequestTag next_tag() { return RequestTag{.client = 1, .request = ++requests_}; }

  MetaServer* server_;
  uint64_t requests_ = 0;
};

}  // namespace mica::meta::model
