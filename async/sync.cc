#include "async/sync.h"

namespace mica {

void Event::set() {
  set_ = true;
  waiters_.wake_all();
}

bool Mutex::try_lock() {
  // Waiters queue behind the owner; a newcomer must not overtake them.
  if (locked_ || !waiters_.empty()) return false;
  locked_ = true;
  return true;
}

void Mutex::unlock() {
  MICA_ASSERT_MSG(locked_, "unlock of an unlocked mutex");
  if (Waiter* next = waiters_.front()) {
    waiters_.wake(next);  // ownership passes directly: locked_ stays true
    return;
  }
  locked_ = false;
}

Semaphore::Semaphore(uint64_t units) : available_(units) {
  waiters_.on_leave = &Semaphore::grant;
  waiters_.on_leave_context = this;
}

Semaphore::~Semaphore() = default;

bool Semaphore::try_acquire(uint64_t units) {
  if (!waiters_.empty() || available_ < units) return false;
  available_ -= units;
  return true;
}

void Semaphore::release(uint64_t units) {
  available_ += units;
  grant(this);
}

void Semaphore::grant(void* self) {
  auto* s = static_cast<Semaphore*>(self);
  // First come, first served: a large request at the head blocks smaller ones behind it.
  while (Waiter* w = s->waiters_.front()) {
    if (w->amount > s->available_) return;
    s->available_ -= w->amount;
    s->waiters_.wake(w);
  }
}

void Latch::count_down(uint64_t n) {
  MICA_ASSERT_MSG(n <= count_, "latch counted below zero");
  count_ -= n;
  if (count_ == 0) waiters_.wake_all();
}

}  // namespace mica
