// Transport choice: RDMA when a device exists (here: a fake one), TCP otherwise.
#include "net/transport_choice.h"

#include <gtest/gtest.h>

#include "async/executor.h"
#include "tests/net/fake_verbs.h"

namespace mica::net {
namespace {

TEST(TransportChoice, AutoFallsBackToTcpWithoutADevice) {
  fake_verbs::FakeVerbs::reset();  // no fake device: the device list is empty, as here
  auto executor = Executor::create_uring();
  Result<std::unique_ptr<Transport>> transport = make_transport(TransportChoice::kAuto);
  ASSERT_TRUE(transport.ok()) << transport.status();
  EXPECT_EQ((*transport)->name(), "tcp");
  Result<std::unique_ptr<Transport>> forced = make_transport(TransportChoice::kRdma);
  EXPECT_EQ(forced.status().code(), StatusCode::kNotSupported);
}

TEST(TransportChoice, AutoPicksRdmaWhenADeviceExists) {
  fake_verbs::FakeVerbs::reset();
  ibv_context* device = fake_verbs::FakeVerbs::open_device("fake-auto");
  auto executor = Executor::create_uring();
  {
    Result<std::unique_ptr<Transport>> transport = make_transport(TransportChoice::kAuto);
    ASSERT_TRUE(transport.ok()) << transport.status();
    EXPECT_EQ((*transport)->name(), "rdma");
    Result<std::unique_ptr<Transport>> tcp = make_transport(TransportChoice::kTcp);
    EXPECT_EQ((*tcp)->name(), "tcp");
  }
  ibv_close_device(device);
}

TEST(TransportChoice, ParsesItsThreeNamesOnly) {
  EXPECT_EQ(*parse_transport_choice("auto"), TransportChoice::kAuto);
  EXPECT_EQ(*parse_transport_choice("rdma"), TransportChoice::kRdma);
  EXPECT_EQ(*parse_transport_choice("tcp"), TransportChoice::kTcp);
  EXPECT_EQ(parse_transport_choice("udp").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mica::net
