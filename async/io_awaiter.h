// IoAwaiter<T>: awaits one IoOp on the current executor's backend and yields Result<T>.
//
// The awaiter holds the IoOp, so it must stay where it is while suspended: it is created
// by a file/socket method and awaited at once (`co_await file.read(...)`). If the awaiting
// task's CancelToken is cancelled while the op runs, the awaiter asks the backend to
// cancel it and still waits for the op's own completion. A negative result becomes a
// Status: -ETIME is kTimedOut (the op's deadline), -ECANCELED is kCancelled.
// Owner: the awaiting coroutine frame. Thread: the executor that awaits it.
#pragma once

#include <cerrno>
#include <coroutine>

#include "async/executor.h"
#include "async/io_op.h"
#include "async/status.h"

namespace mica {

// Options every I/O operation accepts.
struct IoOptions {
  TimePoint deadline = kNoDeadline;
  // File reads and writes only: RWF_* flags (RWF_DSYNC: durable on completion).
  int rw_flags = 0;
};

// Converts an op result to a Status (for res < 0).
Status io_status(int32_t result, IoOpcode opcode);

template <class T>
class [[nodiscard]] IoAwaiter {
 public:
  IoAwaiter() = default;
  // Moving is allowed only before the operation starts (returning it from a method).
  IoAwaiter(IoAwaiter&& other) noexcept : op_(other.op_) {
    MICA_ASSERT(other.executor_ == nullptr);
  }
  IoAwaiter& operator=(IoAwaiter&&) = delete;

  IoOp& op() { return op_; }
  // The op's raw result once awaited: >= 0, or the kernel's negated errno (which the Status
  // of await_resume no longer names). For callers that branch on exact errnos.
  int32_t result() const { return result_; }

  bool await_ready() const noexcept { return false; }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    executor_ = Executor::current();
    MICA_ASSERT_MSG(executor_ != nullptr, "I/O awaited outside an executor");
    CancelToken token = detail::token_of(h);
    token_ = token;
    if (token.cancelled()) {
      result_ = -ECANCELED;
      return false;
    }
    waiter_ = h;
    op_.on_complete = &IoAwaiter::on_complete;
    op_.context = this;
    executor_->backend().start(&op_);
    if (token) cancel_.arm(token.state(), &IoAwaiter::on_cancel, this);
    return true;
  }

  Result<T> await_resume() {
    cancel_.reset();
    // A cancelled op reports its token's reason (kTimedOut under with_deadline).
    if (result_ == -ECANCELED && token_.cancelled()) return token_.status();
    if (result_ < 0) return io_status(result_, op_.opcode);
    if constexpr (std::is_void_v<T>)
      return Status();
    else
      return static_cast<T>(result_);
  }

 private:
  static void on_complete(IoOp* op, int32_t result, bool more) {
    MICA_ASSERT(!more);
    auto* self = static_cast<IoAwaiter*>(op->context);
    self->result_ = result;
    self->executor_->post(self->waiter_);
  }
  static void on_cancel(void* context) {
    auto* self = static_cast<IoAwaiter*>(context);
    self->executor_->backend().cancel(&self->op_);
  }

  IoOp op_;
  int32_t result_ = 0;
  Executor* executor_ = nullptr;
  std::coroutine_handle<> waiter_;
  CancelToken token_;
  CancelCallback cancel_;
};

}  // namespace mica
