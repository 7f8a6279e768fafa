// open_coordinator_handle (meta/meta_server_coordinator.h): the Coordinator behind the
// handle, or kNotSupported while the coordinator's implementation is not in the build.
#include "meta/meta_server_coordinator.h"

#if __has_include("meta/coordinator_state.h")
#define MICA_META_COORDINATOR_BUILT 1
#else
#define MICA_META_COORDINATOR_BUILT 0
#endif

namespace mica::meta {

#if MICA_META_COORDINATOR_BUILT

namespace {

class Handle final : public CoordinatorHandle {
 public:
  explicit Handle(std::unique_ptr<Coordinator> coordinator)
      : coordinator_(std::move(coordinator)) {}
  Task<Result<InodeReply>> run(const MkdirRequest& request) override {
    return coordinator_->mkdir(request);
  }
  Task<Result<RemoveReply>> run(const RemoveRequest& request) override {
    return coordinator_->rmdir(request);
  }
  Task<Result<RenameReply>> run(const RenameRequest& request) override {
    return coordinator_->rename(request);
  }
  Task<Result<InodeReply>> run(const LinkRequest& request) override {
    return coordinator_->link(request);
  }
  uint64_t pending() const override { return coordinator_->pending(); }
  Task<Status> close() override { return coordinator_->close(); }

 private:
  std::unique_ptr<Coordinator> coordinator_;
};

}  // namespace

Task<Result<std::unique_ptr<CoordinatorHandle>>> open_coordinator_handle(
    CoordinatorOptions options) {
  auto opening = Coordinator::open(std::move(options));
  CO_TRY_ASSIGN(std::unique_ptr<Coordinator> coordinator, co_await std::move(opening));
  co_return std::unique_ptr<CoordinatorHandle>(new Handle(std::move(coordinator)));
}

#else

Task<Result<std::unique_ptr<CoordinatorHandle>>> open_coordinator_handle(
    CoordinatorOptions options) {
  (void)options;
  co_return Status(StatusCode::kNotSupported,
                   "the coordinator is not in this build: directory operations are refused");
}

#endif

}  // namespace mica::meta
