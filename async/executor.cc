#include "async/executor.h"

#include "async/uring_backend.h"

namespace mica {

namespace {
thread_local Executor* t_current = nullptr;
// Lowest stack address the thread may reach before resumptions are bounced through the
// loop; 0 when no executor loop runs on this thread.
thread_local uintptr_t t_stack_limit = 0;
constexpr size_t kInitialReadyCapacity = 1024;

// Makes `e` current on this thread for a scope and arms the stack guard below the
// caller's frame.
class CurrentScope {
 public:
  CurrentScope(Executor* e, uint32_t guard_bytes) : saved_(t_current), saved_limit_(t_stack_limit) {
    t_current = e;
    auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    t_stack_limit = sp > guard_bytes ? sp - guard_bytes : 0;
  }
  ~CurrentScope() {
    t_current = saved_;
    t_stack_limit = saved_limit_;
  }

 private:
  Executor* saved_;
  uintptr_t saved_limit_;
};
}  // namespace

std::coroutine_handle<> detail::guarded(std::coroutine_handle<> h) noexcept {
  auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (sp >= t_stack_limit) [[likely]]
    return h;
  t_current->post(h);
  return std::noop_coroutine();
}

Executor::Executor(std::unique_ptr<Backend> backend, ExecutorOptions options)
    : backend_(std::move(backend)), options_(options), ready_(kInitialReadyCapacity) {}

Executor::~Executor() {
  MICA_ASSERT_MSG(!has_ready(), "executor destroyed with runnable tasks");
}

std::unique_ptr<Executor> Executor::create_uring(bool big_sqes) {
  auto backend = std::make_unique<UringBackend>(UringOptions{.big_sqes = big_sqes});
  return std::make_unique<Executor>(std::move(backend));
}

Executor* Executor::current() {
  return t_current;
}

void Executor::push_ready(std::coroutine_handle<> h) {
  size_t capacity = ready_.size();
  if (ready_tail_ - ready_head_ == capacity) {
    // Grow: copy in order into a buffer twice the size.
    std::vector<std::coroutine_handle<>> grown(capacity * 2);
    for (size_t i = 0; i < capacity; ++i) grown[i] = ready_[(ready_head_ + i) & (capacity - 1)];
    ready_.swap(grown);
    ready_head_ = 0;
    ready_tail_ = capacity;
    capacity *= 2;
  }
  ready_[ready_tail_ & (capacity - 1)] = h;
  ++ready_tail_;
}

void Executor::post(std::coroutine_handle<> h) {
  push_ready(h);
}

void Executor::post_remote(std::coroutine_handle<> h) {
  // The wake-up stays inside the lock: the executor can take h only after the lock is
  // released, and h may finish its task and let the owner destroy this executor at once, so
  // nothing here may touch the executor after the unlock (ASan caught a blocking-pool
  // thread waking an executor that a finished Runtime had just freed).
  std::lock_guard lock(inbox_mutex_);
  inbox_.push_back(h);
  inbox_nonempty_.store(true, std::memory_order_release);
  if (sleeping_.exchange(false, std::memory_order_acq_rel)) backend_->wake();
}

void Executor::drain_inbox() {
  if (!inbox_nonempty_.load(std::memory_order_acquire)) return;
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_spare_.swap(inbox_);
    inbox_nonempty_.store(false, std::memory_order_relaxed);
  }
  for (auto h : inbox_spare_) push_ready(h);
  inbox_spare_.clear();
}

size_t Executor::run_ready(size_t budget) {
  CurrentScope scope(this, options_.stack_guard_bytes);
  size_t ran = 0;
  while (ran < budget && has_ready()) {
    auto h = ready_[ready_head_ & (ready_.size() - 1)];
    ++ready_head_;
    ++ran;
    h.resume();
    if (options_.submit_eagerly) backend_->submit();
  }
  return ran;
}

void Executor::turn() {
  // Poll the backend first (without blocking when work is queued), then run: a caller that
  // checks for completion between turns sees the effect of the handles this turn ran.
  drain_inbox();
  TimePoint until = next_timer();
  if (has_ready()) {
    until = TimePoint::min();
  } else {
    // Announce the sleep, then look at the inbox once more: a poster that saw
    // sleeping_=false has already queued its handle where drain_inbox() finds it.
    sleeping_.store(true, std::memory_order_seq_cst);
    if (inbox_nonempty_.load(std::memory_order_seq_cst)) until = TimePoint::min();
  }
  {
    CurrentScope scope(this, options_.stack_guard_bytes);
    backend_->wait(until);
  }
  sleeping_.store(false, std::memory_order_relaxed);
  drain_inbox();
  if (!heap_.empty()) fire_due_timers(backend_->now());
  run_ready(options_.ready_budget);
}

// ---- timer heap (intrusive binary min-heap keyed by `when`) ----

void Executor::add_timer(Timer* timer) {
  MICA_ASSERT(!timer->queued());
  timer->heap_index = static_cast<uint32_t>(heap_.size());
  heap_.push_back(timer);
  heap_up(timer->heap_index);
}

void Executor::remove_timer(Timer* timer) {
  if (!timer->queued()) return;
  uint32_t i = timer->heap_index;
  uint32_t last = static_cast<uint32_t>(heap_.size() - 1);
  heap_swap(i, last);
  heap_.pop_back();
  timer->heap_index = Timer::kNotQueued;
  if (i < heap_.size()) {
    heap_up(i);
    heap_down(i);
  }
}

size_t Executor::fire_due_timers(TimePoint now) {
  CurrentScope scope(this, options_.stack_guard_bytes);
  size_t fired = 0;
  while (!heap_.empty() && heap_[0]->when <= now) {
    Timer* t = heap_[0];
    remove_timer(t);
    t->fire(t);
    ++fired;
  }
  return fired;
}

void Executor::heap_swap(uint32_t a, uint32_t b) {
  std::swap(heap_[a], heap_[b]);
  heap_[a]->heap_index = a;
  heap_[b]->heap_index = b;
}

void Executor::heap_up(uint32_t i) {
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (heap_[parent]->when <= heap_[i]->when) break;
    heap_swap(i, parent);
    i = parent;
  }
}

void Executor::heap_down(uint32_t i) {
  for (;;) {
    uint32_t smallest = i;
    uint32_t left = 2 * i + 1, right = 2 * i + 2;
    if (left < heap_.size() && heap_[left]->when < heap_[smallest]->when) smallest = left;
    if (right < heap_.size() && heap_[right]->when < heap_[smallest]->when) smallest = right;
    if (smallest == i) return;
    heap_swap(i, smallest);
    i = smallest;
  }
}

}  // namespace mica
