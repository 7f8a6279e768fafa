// AuthenticatedTransport: a Transport whose every connection has proven, both ways, that
// its peer holds the cluster token (net/cluster_token.h), before anything else crosses it.
//
// It wraps any Transport (TCP on io_uring, TCP on the simulator, RDMA). connect() runs the
// client half of the handshake on the new connection before returning it; listen() gives
// an Acceptor whose accept() returns only connections whose handshake succeeded. The
// acceptor runs the handshakes of many incoming connections at once (at most
// handshakes_max), each within handshake_timeout, so a slow or silent peer never holds up
// the others; one that misses its deadline, sends anything but the handshake as its first
// frame, or proves a different token is closed with one log line. The handshake, as kAuth
// frames (net/frame.h):
//   server → client  challenge: a fresh 32-byte nonce Ns
//   client → server  answer:    its own fresh nonce Nc, HMAC(token, "mica-auth-client" ‖ Ns ‖ Nc)
//   server → client  accepted:  HMAC(token, "mica-auth-server" ‖ Nc ‖ Ns)
//                    or refused: a message ("cluster token does not match"), then closes.
// The secret itself never crosses the wire; fresh nonces on both sides make a recorded
// answer or proof worthless on another connection. Until the proofs checked out the peer's
// one-sided requests are refused (Connection::refuse_peer_transfers; the constructor calls
// inner->refuse_peer_transfers_at_start(), so RDMA queue pairs start without remote
// access), and a frame larger than the handshake's (256 bytes) fails the connection on its
// header, before its payload is reserved or read (Connection::limit_incoming_frames; the
// constructor calls inner->limit_incoming_frames_at_start()), so strangers cannot take the
// receive budget. A server's refusal text reaches the client's Status truncated to 200
// bytes and escaped. Traffic after the handshake is not encrypted or authenticated frame
// by frame, and the proofs are not bound to the channel, so a party in the path can relay
// a handshake and sit in the middle (docs/net.md, "Cluster token"). A failed
// connect() is kUnauthenticated (refused, or the server's proof is wrong), kTimedOut (no
// challenge in time: a server without a token?) or the inner transport's error, with a
// message naming the peer. Nonces come from the runtime's random source
// (Backend::random_u64), so simulated runs replay.
// A server that must accept peers without a token simply does not wrap its transport (an
// explicit option of the app's config, off by default).
// Ownership: the inner transport outlives this one and is used through it only; this one
// outlives its acceptors. Connections are the inner transport's own (returned once
// authenticated), so register_memory, limits and name are the inner transport's too.
// Thread rule: the inner transport's (one executor); connect() and accept() suspend, the
// rest does not.
#pragma once

#include <cstdint>

#include "async/time.h"
#include "net/cluster_token.h"
#include "net/connection.h"

namespace mica {
class Counter;
}

namespace mica::net {

struct AuthOptions {
  // A handshake not done within this (from accept, or from connect's return) is abandoned
  // and its connection closed.
  Duration handshake_timeout = std::chrono::seconds(5);
  // Handshakes one acceptor runs at once; beyond this it accepts no more until one ends
  // (the kernel's backlog holds the rest), so a flood of silent peers costs bounded memory.
  uint32_t handshakes_max = 1024;
  // Authenticated connections waiting for accept(); beyond this their handshakes wait.
  uint32_t ready_max = 64;
};

// What an authenticated transport saw, for tests and logs. The process's metrics registry
// counts the same as mica_net_auth_handshakes_total{side, result}: side "server" with
// result accepted, refused (a wrong proof or no handshake at all) or failed, and side
// "client" with connected or failed.
struct AuthStats {
  uint64_t accepted = 0;         // server side: handshakes that succeeded
  uint64_t refused = 0;          // server side: wrong proof (another token)
  uint64_t not_a_handshake = 0;  // server side: the first frame was something else
  uint64_t failed = 0;           // server side: timed out, closed, malformed
  uint64_t connected = 0;        // client side: handshakes that succeeded
  uint64_t connect_failed = 0;   // client side: refused, wrong server proof, timed out
};

class AuthenticatedTransport final : public Transport {
 public:
  AuthenticatedTransport(Transport* inner, ClusterToken token, AuthOptions options = {});
  ~AuthenticatedTransport() override;

  Task<Result<std::unique_ptr<Connection>>> connect(SocketAddress address,
                                                    TimePoint deadline) override;
  Result<std::unique_ptr<Acceptor>> listen(SocketAddress address) override;
  Result<std::unique_ptr<MemoryRegion>> register_memory(std::span<std::byte> bytes) override {
    return inner_->register_memory(bytes);
  }
  const TransportLimits& limits() const override { return inner_->limits(); }
  std::string name() const override { return inner_->name(); }

  Transport* inner() const { return inner_; }
  const AuthOptions& options() const { return options_; }
  const AuthStats& stats() const { return stats_; }

  // The two halves, for the acceptor (and for tests that drive one side by hand). Each
  // runs until done or cancelled; the caller bounds it (handshake_timeout) and closes the
  // connection when it fails.
  Task<Status> client_handshake(Connection* connection);
  Task<Status> server_handshake(Connection* connection);

 private:
  friend class AuthenticatedAcceptor;
  // The metric's series, registered once per transport (async/metrics.h).
  struct Counters {
    Counter* accepted;
    Counter* refused;
    Counter* failed;
    Counter* connected;
    Counter* connect_failed;
  };
  Transport* inner_;
  ClusterToken token_;
  AuthOptions options_;
  AuthStats stats_;
  Counters counters_;
};

}  // namespace mica::net
