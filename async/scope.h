// TaskScope and the combinators when_all / when_any / with_deadline: structured
// concurrency, so no task outlives the code that started it.
//
// TaskScope::spawn() starts a task (on the current executor) that runs concurrently with
// the spawner; `co_await scope.join()` waits until every spawned task has finished, and
// the scope asserts in its destructor that none is left. cancel() cancels them all (their
// waits and I/O end with kCancelled). Spawned tasks inherit the scope's token, which is
// linked to the token given at construction. when_all runs tasks concurrently and returns
// all results; when_any returns the first result, cancels the others and waits for them
// before returning (a loser's result is dropped). with_deadline cancels a task at a time
// point and reports kTimedOut. Children always finish before their combinator returns,
// even when the combinator's own task is cancelled. Everything here runs on one executor:
// a scope's tasks must finish on the scope's executor (a task that hops away hops back).
#pragma once

#include <optional>
#include <variant>
#include <vector>

#include "async/sync.h"

namespace mica {

namespace detail {

// A self-destroying coroutine that runs one child; started by posting its handle.
class DetachedTask {
 public:
  struct promise_type : PromiseBase {
    DetachedTask get_return_object() {
      return DetachedTask{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
  };
  std::coroutine_handle<promise_type> handle;

  // Gives the child a token and queues it on the current executor.
  void start(CancelToken token) {
    handle.promise().set_token(token);
    Executor::current()->post(handle);
  }
};

// Tracks children of one combinator: how many are left and which finished first.
struct ChildGroup {
  explicit ChildGroup(size_t n) : remaining(n) {}
  size_t remaining;
  std::optional<size_t> first;
  Event changed;
  void finished(size_t index) {
    --remaining;
    if (!first) first = index;
    changed.set();
  }
};

// Waits (uncancellably) until pred() holds; children hold pointers into the caller frame.
template <class Pred>
Task<void> wait_children(ChildGroup* group, Pred pred) {
  while (!pred(*group)) {
    group->changed.reset();
    Status s = co_await group->changed.wait_uncancellable();
    MICA_ASSERT(s.ok());
  }
}

template <class T>
using Slot = std::optional<std::conditional_t<std::is_void_v<T>, std::monostate, T>>;

template <class T>
DetachedTask run_child(Task<T> task, Slot<T>* slot, ChildGroup* group, size_t index) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
    slot->emplace();
  } else {
    slot->emplace(co_await std::move(task));
  }
  group->finished(index);
}

inline bool all_finished(const ChildGroup& g) {
  return g.remaining == 0;
}
inline bool one_finished(const ChildGroup& g) {
  return g.first.has_value();
}

template <class T>
void start_children(std::vector<Task<T>>& tasks, std::vector<Slot<T>>& slots, ChildGroup& group,
                    CancelToken token) {
  for (size_t i = 0; i < tasks.size(); ++i) {
    DetachedTask child = run_child<T>(std::move(tasks[i]), &slots[i], &group, i);
    child.start(token);
  }
}

}  // namespace detail

class TaskScope {
 public:
  // parent: usually `co_await current_token()`, so cancelling the spawner cancels the scope.
  explicit TaskScope(CancelToken parent = {}) : source_(parent) {}
  TaskScope(const TaskScope&) = delete;
  TaskScope& operator=(const TaskScope&) = delete;
  ~TaskScope() { MICA_ASSERT_MSG(active_ == 0, "TaskScope destroyed before join()"); }

  // Starts task on the current executor; it runs until it finishes or is cancelled.
  void spawn(Task<void> task);
  void cancel() { source_.cancel(); }
  size_t active() const { return active_; }
  CancelToken token() { return source_.token(); }

  // Waits for every spawned task (uncancellably: they reference the scope). The scope may
  // be reused afterwards.
  struct JoinAwaiter {
    Event::Awaiter wait;
    bool await_ready() const noexcept { return wait.await_ready(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return wait.await_suspend(h);
    }
    void await_resume() { MICA_ASSERT(wait.await_resume().ok()); }
  };
  JoinAwaiter join() {
    if (active_ == 0) idle_.set();
    return JoinAwaiter{idle_.wait_uncancellable()};
  }

 private:
  static detail::DetachedTask run_spawned(Task<void> task, TaskScope* scope);
  CancelSource source_;
  size_t active_ = 0;
  Event idle_;
};

// Runs all tasks concurrently on the current executor; returns their values in order.
template <class T>
requires(!std::is_void_v<T>) Task<std::vector<T>> when_all(std::vector<Task<T>> tasks) {
  std::vector<detail::Slot<T>> slots(tasks.size());
  detail::ChildGroup group(tasks.size());
  CancelToken token = co_await current_token();
  detail::start_children(tasks, slots, group, token);
  auto wait = detail::wait_children(&group, &detail::all_finished);
  co_await std::move(wait);
  std::vector<T> results;
  results.reserve(slots.size());
  for (auto& slot : slots) results.push_back(std::move(*slot));
  co_return results;
}

Task<void> when_all(std::vector<Task<void>> tasks);

template <class T>
struct WhenAnyResult {
  size_t index;  // which task finished first
  T value;
};

// Returns the first task to finish; cancels the others and waits for them first.
template <class T>
requires(!std::is_void_v<T>) Task<WhenAnyResult<T>> when_any(std::vector<Task<T>> tasks) {
  MICA_ASSERT_MSG(!tasks.empty(), "when_any of no tasks");
  std::vector<detail::Slot<T>> slots(tasks.size());
  detail::ChildGroup group(tasks.size());
  CancelSource losers(co_await current_token());
  detail::start_children(tasks, slots, group, losers.token());
  auto first = detail::wait_children(&group, &detail::one_finished);
  co_await std::move(first);
  losers.cancel();
  auto rest = detail::wait_children(&group, &detail::all_finished);
  co_await std::move(rest);
  size_t winner = *group.first;
  co_return WhenAnyResult<T>{winner, std::move(*slots[winner])};
}

namespace detail {
struct DeadlineTimer {
  Timer timer;
  CancelSource* source;
  static void fire(Timer* t) {
    static_cast<DeadlineTimer*>(t->context)->source->cancel(StatusCode::kTimedOut);
  }
};
}  // namespace detail

// Runs task; at `deadline` its token is cancelled with reason kTimedOut, so its waits and
// I/O end with kTimedOut. The task always finishes before this returns.
template <class T>
Task<Result<T>> with_deadline(Task<Result<T>> task, TimePoint deadline) {
  CancelSource source(co_await current_token());
  detail::DeadlineTimer timer{{}, &source};
  timer.timer.when = deadline;
  timer.timer.fire = &detail::DeadlineTimer::fire;
  timer.timer.context = &timer;
  Executor* executor = Executor::current();
  executor->add_timer(&timer.timer);
  task.handle().promise().set_token(source.token());
  Result<T> result = co_await std::move(task);
  executor->remove_timer(&timer.timer);
  if (!result.ok() && source.cancelled() && result.status().code() == StatusCode::kCancelled)
    co_return Status(StatusCode::kTimedOut, "deadline passed");
  co_return result;
}

}  // namespace mica
