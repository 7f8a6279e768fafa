// Choosing a transport: RDMA where the machine has a device, TCP everywhere else.
//
// make_transport(kAuto) opens the first RDMA device with an active port and falls back to
// TCP when there is none — no device, no verbs support in the kernel (as on machines
// without InfiniBand drivers), or every port down; kTcp and kRdma force one (kRdma fails
// with kNotSupported then). The result names itself through Transport::name(). Call on
// the executor that will own the transport.
#pragma once

#include <memory>
#include <string_view>

#include "net/connection.h"

namespace mica::net {

enum class TransportChoice { kAuto, kTcp, kRdma };

// Parses "auto", "tcp" or "rdma" (configuration files and flags).
Result<TransportChoice> parse_transport_choice(std::string_view text);
Result<std::unique_ptr<Transport>> make_transport(TransportChoice choice);

}  // namespace mica::net
