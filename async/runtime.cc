#include "async/runtime.h"

#include "async/scope.h"

namespace mica {
namespace {
detail::DetachedTask own_root(Task<void> root) {
  co_await std::move(root);
}
}  // namespace

Runtime::Runtime(RuntimeOptions options) : big_sqes_(options.big_sqes) {
  MICA_ASSERT(options.threads > 0);
  executors_.resize(options.threads, nullptr);
  for (size_t i = 0; i < options.threads; ++i) threads_.emplace_back([this, i] { thread_main(i); });
  std::unique_lock lock(start_mutex_);
  start_cv_.wait(lock, [&] { return started_ == options.threads; });
}

// An executor thread that wakes for its own reasons once stopping_ is set leaves and
// destroys its executor at once, so the interrupts are sent under start_mutex_ and only to
// executors still listed (a leaving thread unlists its own under the same lock).
Runtime::~Runtime() {
  stopping_.store(true);
  {
    std::lock_guard lock(start_mutex_);
    for (Executor* e : executors_)
      if (e != nullptr) e->interrupt();
  }
  for (auto& t : threads_) t.join();
}

void Runtime::thread_main(size_t index) {
  // The ring is created here: SINGLE_ISSUER binds it to the creating thread.
  std::unique_ptr<Executor> executor = Executor::create_uring(big_sqes_);
  {
    std::lock_guard lock(start_mutex_);
    executors_[index] = executor.get();
    ++started_;
  }
  start_cv_.notify_all();
  while (!stopping_.load(std::memory_order_acquire)) executor->turn();
  // Let work already queued finish its current step before the ring goes away.
  executor->drain_inbox();
  executor->run_ready(SIZE_MAX);
  std::lock_guard lock(start_mutex_);
  executors_[index] = nullptr;
}

void Runtime::start_detached(Executor& executor, Task<void> root) {
  detail::DetachedTask owner = own_root(std::move(root));
  executor.post_remote(owner.handle);
}

}  // namespace mica
