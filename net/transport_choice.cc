#include "net/transport_choice.h"

#include "net/rdma/rdma_transport.h"
#include "net/tcp_transport.h"

namespace mica::net {

Result<TransportChoice> parse_transport_choice(std::string_view text) {
  if (text == "auto") return TransportChoice::kAuto;
  if (text == "tcp") return TransportChoice::kTcp;
  if (text == "rdma") return TransportChoice::kRdma;
  return Status(StatusCode::kInvalidArgument,
                fmt::format("transport '{}' is none of auto, tcp, rdma", text));
}

Result<std::unique_ptr<Transport>> make_transport(TransportChoice choice) {
  if (choice != TransportChoice::kTcp) {
    Result<std::unique_ptr<Transport>> rdma = open_rdma_transport();
    if (rdma.ok() || choice == TransportChoice::kRdma) return rdma;
    // No device or no active port: TCP. Anything else (a device that fails) is reported.
    StatusCode why = rdma.status().code();
    if (why != StatusCode::kNotSupported && why != StatusCode::kUnreachable) return rdma.status();
  }
  return std::unique_ptr<Transport>(new TcpTransport());
}

}  // namespace mica::net
