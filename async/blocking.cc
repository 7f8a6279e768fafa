#include "async/blocking.h"

namespace mica {

BlockingPool& BlockingPool::shared() {
  static BlockingPool pool(BlockingPoolOptions{});
  return pool;
}

BlockingPool::BlockingPool(BlockingPoolOptions options) : options_(options) {
  for (uint32_t i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { worker(); });
}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  MICA_ASSERT(queue_.empty());
}

bool BlockingPool::try_submit(Job* job) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.queue_max) return false;
    queue_.push_back(job);
  }
  cv_.notify_one();
  return true;
}

void BlockingPool::worker() {
  for (;;) {
    Job* job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = queue_.front();
      queue_.pop_front();
    }
    job->run(job);
  }
}

}  // namespace mica
