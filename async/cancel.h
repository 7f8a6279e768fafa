// Cancellation: a request, never a fact.
//
// A CancelSource is owned by whoever may cancel (a TaskScope, when_any, a test). Tasks see
// it through a CancelToken that a child inherits from the task that awaits it. Waits and
// I/O operations register a CancelCallback while they are suspended; cancel() runs the
// callbacks, which *ask* the operation to stop. The operation still completes through its
// normal path (an io_uring op waits for its own CQE), so no buffer or frame is released
// while the kernel may use it.
//
// Thread rule: a source, its tokens and callbacks belong to one executor thread; cancel()
// and registration happen there. A task that hops to another executor must not register
// on a token of the old one (registration asserts it). Never suspends.
#pragma once

#include <thread>

#include "async/assert.h"
#include "async/status.h"

namespace mica {

class CancelState;

// One registered callback; unlinks itself on destruction.
class CancelCallback {
 public:
  using Fn = void (*)(void* context);
  CancelCallback() = default;
  CancelCallback(const CancelCallback&) = delete;
  CancelCallback& operator=(const CancelCallback&) = delete;
  ~CancelCallback() { reset(); }

  // Registers fn(context) to run when the state is cancelled. Returns false, registering
  // nothing, when it is already cancelled (the caller then fails at once).
  bool arm(CancelState* state, Fn fn, void* context);
  void reset();

 private:
  friend class CancelState;
  CancelState* state_ = nullptr;
  Fn fn_ = nullptr;
  void* context_ = nullptr;
  CancelCallback* prev_ = nullptr;
  CancelCallback* next_ = nullptr;
};

class CancelState {
 public:
  CancelState() = default;
  CancelState(const CancelState&) = delete;
  CancelState& operator=(const CancelState&) = delete;
  ~CancelState() { MICA_ASSERT_MSG(head_ == nullptr, "cancel state destroyed with waiters"); }

  bool cancelled() const { return cancelled_; }
  // Why it was cancelled: kCancelled, or kTimedOut for a deadline.
  StatusCode reason() const { return reason_; }
  void cancel(StatusCode reason = StatusCode::kCancelled);

 private:
  friend class CancelCallback;
  bool cancelled_ = false;
  StatusCode reason_ = StatusCode::kCancelled;
  CancelCallback* head_ = nullptr;
  std::thread::id owner_ = std::this_thread::get_id();
};

// A nullable view of a CancelState; a null token is never cancelled.
class CancelToken {
 public:
  CancelToken() = default;
  explicit CancelToken(CancelState* state) : state_(state) {}
  bool cancelled() const { return state_ && state_->cancelled(); }
  Status status() const {
    return state_ && state_->cancelled() ? Status(state_->reason(), "operation cancelled")
                                         : Status();
  }
  CancelState* state() const { return state_; }
  explicit operator bool() const { return state_ != nullptr; }

 private:
  CancelState* state_ = nullptr;
};

// A source that is also cancelled when its parent token is (when_any, TaskScope).
class CancelSource {
 public:
  explicit CancelSource(CancelToken parent = {}) : parent_(parent.state()) {
    if (parent_ && !link_.arm(parent_, &CancelSource::on_parent, this))
      state_.cancel(parent_->reason());
  }
  CancelSource(const CancelSource&) = delete;
  CancelSource& operator=(const CancelSource&) = delete;

  CancelToken token() { return CancelToken(&state_); }
  void cancel(StatusCode reason = StatusCode::kCancelled) { state_.cancel(reason); }
  bool cancelled() const { return state_.cancelled(); }

 private:
  static void on_parent(void* self) {
    auto* source = static_cast<CancelSource*>(self);
    source->state_.cancel(source->parent_->reason());
  }
  CancelState* parent_;
  CancelState state_;
  CancelCallback link_;  // declared after state_: unlinked from the parent first
};

}  // namespace mica
