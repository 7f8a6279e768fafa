// Listener::close() racing an accept() that has been woken but has not resumed yet.
//
// A crash (or any turn that both completes the accept and starts a shutdown) wakes the
// accepting task and the closing task together; whichever runs first is up to the
// scheduler. close() must wait for the woken accept() to leave before it frees the
// listener's state. The simulator's seeded scheduling perturbation runs the closer first
// on about half the seeds, so a sweep of seeds covers both orders.
#include <gtest/gtest.h>

#include "async/sim/world.h"
#include "async/socket.h"
#include "async/sync.h"

namespace mica {
namespace {

using namespace std::chrono_literals;

constexpr uint16_t kPort = 7000;
constexpr uint64_t kSeeds = 64;

struct Shared {
  Listener listener;
  bool accept_left = false;
  bool closed = false;
  bool accept_left_before_close_returned = false;
};

Task<void> listen_on(Shared* s, SocketAddress address) {
  Result<Listener> listener = Listener::listen(address);
  MICA_ASSERT(listener.ok());
  s->listener = std::move(*listener);
  co_return;
}

Task<void> accept_until_error(Shared* s) {
  for (;;) {
    auto accepting = s->listener.accept();
    Result<Socket> socket = co_await std::move(accepting);
    if (!socket.ok()) break;
    (void)co_await socket->close();
  }
  s->accept_left = true;
}

// Waits to be cancelled (the crash), then closes the listener, as a server's shutdown does.
Task<void> close_when_cancelled(Shared* s) {
  Event never;
  Status woke = co_await never.wait();
  (void)woke;
  auto closing = s->listener.close();
  co_await std::move(closing);
  s->accept_left_before_close_returned = s->accept_left;
  s->closed = true;
}

TEST(ListenerClose, WaitsForAnAcceptThatWasWokenButHasNotResumed) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    sim::SimConfig config;
    config.perturb_schedule = true;
    sim::SimWorld world(seed, config);
    sim::SimHost& host = world.add_host("server");
    Shared shared;
    world.run(host, listen_on(&shared, host.address(kPort)));
    world.spawn(host, accept_until_error(&shared));
    world.spawn(host, close_when_cancelled(&shared));
    world.run_for(1ms);  // both wait now
    world.crash(host);   // wakes both at once; runs them to their end
    EXPECT_TRUE(shared.closed) << "seed " << seed;
    EXPECT_TRUE(shared.accept_left_before_close_returned) << "seed " << seed;
  }
}

}  // namespace
}  // namespace mica
