#include "async/scope.h"

namespace mica {

void TaskScope::spawn(Task<void> task) {
  ++active_;
  idle_.reset();
  detail::DetachedTask child = run_spawned(std::move(task), this);
  child.start(source_.token());
}

detail::DetachedTask TaskScope::run_spawned(Task<void> task, TaskScope* scope) {
  co_await std::move(task);
  if (--scope->active_ == 0) scope->idle_.set();
}

Task<void> when_all(std::vector<Task<void>> tasks) {
  std::vector<detail::Slot<void>> slots(tasks.size());
  detail::ChildGroup group(tasks.size());
  CancelToken token = co_await current_token();
  detail::start_children(tasks, slots, group, token);
  auto wait = detail::wait_children(&group, &detail::all_finished);
  co_await std::move(wait);
}

}  // namespace mica
