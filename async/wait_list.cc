#include "async/wait_list.h"

namespace mica {

bool WaitList::suspend_with_token(Waiter* w, std::coroutine_handle<> h, TimePoint deadline,
                                  CancelToken token) {
  MICA_ASSERT(!w->linked());
  if (token.cancelled()) {
    w->status = token.status();
    return false;
  }
  w->handle = h;
  w->executor = Executor::current();
  MICA_ASSERT_MSG(w->executor != nullptr, "wait outside an executor");
  w->status = Status();
  w->deadline_fired = false;
  w->token_state = token.state();
  push_back(w);
  if (deadline != kNoDeadline) {
    w->timer.when = deadline;
    w->timer.fire = &WaitList::on_timer;
    w->timer.context = w;
    w->executor->add_timer(&w->timer);
  }
  if (token) w->cancel.arm(token.state(), &WaitList::on_cancel, w);
  return true;
}

void WaitList::push_back(Waiter* w) {
  w->list = this;
  w->prev = tail_;
  w->next = nullptr;
  if (tail_)
    tail_->next = w;
  else
    head_ = w;
  tail_ = w;
}

void WaitList::unlink(Waiter* w) {
  MICA_ASSERT(w->list == this);
  if (w->prev)
    w->prev->next = w->next;
  else
    head_ = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    tail_ = w->prev;
  w->list = nullptr;
  w->prev = w->next = nullptr;
  w->executor->remove_timer(&w->timer);
  w->cancel.reset();
}

void WaitList::wake(Waiter* w, Status status) {
  unlink(w);
  w->status = std::move(status);
  w->executor->post(w->handle);
}

void WaitList::wake_all(const Status& status) {
  while (head_) wake(head_, status);
}

void WaitList::on_timer(Timer* t) {
  auto* w = static_cast<Waiter*>(t->context);
  WaitList* list = w->list;
  w->deadline_fired = true;
  list->wake(w, Status(StatusCode::kTimedOut, "deadline passed while waiting"));
  if (list->on_leave) list->on_leave(list->on_leave_context);
}

void WaitList::on_cancel(void* context) {
  auto* w = static_cast<Waiter*>(context);
  WaitList* list = w->list;
  // The callback registration is already unlinked by CancelState::cancel().
  list->wake(w, Status(w->token_state->reason(), "wait cancelled"));
  if (list->on_leave) list->on_leave(list->on_leave_context);
}

}  // namespace mica
