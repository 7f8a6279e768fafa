// The coordinator as the MetaServer holds it (meta/meta_server.h): a handle over
// meta/coordinator.h's Coordinator, opened by open_coordinator_handle(). Keeping the
// server behind this handle lets meta_server*.cc build whether or not the coordinator's
// implementation is linked in: without it the handle cannot be opened (kNotSupported) and
// directory operations answer that. Internal to meta/; executor-bound like Coordinator (the
// server's executor); the request references must outlive the returned tasks.
#pragma once

#include <memory>

#include "meta/coordinator.h"

namespace mica::meta {

class CoordinatorHandle {
 public:
  virtual ~CoordinatorHandle() = default;
  virtual Task<Result<InodeReply>> run(const MkdirRequest& request) = 0;
  virtual Task<Result<RemoveReply>> run(const RemoveRequest& request) = 0;
  virtual Task<Result<RenameReply>> run(const RenameRequest& request) = 0;
  virtual Task<Result<InodeReply>> run(const LinkRequest& request) = 0;
  virtual uint64_t pending() const = 0;
  virtual Task<Status> close() = 0;
};

Task<Result<std::unique_ptr<CoordinatorHandle>>> open_coordinator_handle(
    CoordinatorOptions options);

}  // namespace mica::meta
