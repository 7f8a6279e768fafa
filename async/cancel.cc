#include "async/cancel.h"

namespace mica {

bool CancelCallback::arm(CancelState* state, Fn fn, void* context) {
  MICA_ASSERT(state_ == nullptr);
  MICA_ASSERT_MSG(state->owner_ == std::this_thread::get_id(),
                  "cancel token used on another executor thread");
  if (state->cancelled_) return false;
  state_ = state;
  fn_ = fn;
  context_ = context;
  prev_ = nullptr;
  next_ = state->head_;
  if (next_) next_->prev_ = this;
  state->head_ = this;
  return true;
}

void CancelCallback::reset() {
  if (!state_) return;
  if (prev_)
    prev_->next_ = next_;
  else
    state_->head_ = next_;
  if (next_) next_->prev_ = prev_;
  state_ = nullptr;
  prev_ = next_ = nullptr;
}

void CancelState::cancel(StatusCode reason) {
  if (cancelled_) return;
  cancelled_ = true;
  reason_ = reason;
  // Unlink each callback before running it: the callback may destroy its own registration.
  while (CancelCallback* cb = head_) {
    head_ = cb->next_;
    if (head_) head_->prev_ = nullptr;
    cb->state_ = nullptr;
    cb->prev_ = cb->next_ = nullptr;
    cb->fn_(cb->context_);
  }
}

}  // namespace mica
