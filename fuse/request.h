// Request: one request from the kernel, from /dev/fuse (fuse/dev_transport.h) or from an
// io_uring queue entry (fuse/uring_transport.h), seen the same way by the dispatcher.
//
// Ownership: the transport owns the bytes (a pooled buffer or the ring entry's buffers) and
// fills header/op_in/payload before deliver(); the dispatcher (RequestSink) owns the Request
// object from deliver() until it has called reply() or finish() exactly once, and destroys
// it right after. Threads: a Request belongs to the executor that delivered it; reply() and
// finish() are called there, never suspend, and hand the reply to the transport, which sends
// it asynchronously (the Request may be destroyed as soon as they return).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "fuse/protocol.h"

namespace mica::fuse {

// Which transport delivered a request (metrics count requests per path).
enum class RequestPath : uint8_t { kClassic, kUring };

class Request {
 public:
  virtual ~Request() = default;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  const InHeader& header() const { return header_; }
  Opcode opcode() const { return static_cast<Opcode>(header_.opcode); }
  // The opcode's fixed argument struct (op_in_size bytes; all that arrived for INIT).
  std::span<const std::byte> op_in() const { return op_in_; }
  // What follows op_in: names (NUL-ended), write data, forget arrays. Request extensions
  // (total_extlen) are not part of it: see extensions().
  std::span<const std::byte> payload() const { return payload_; }
  // The request extensions (ExtHeader records; FUSE_EXT_GROUPS), empty when none.
  std::span<const std::byte> extensions() const { return extensions_; }
  RequestPath path() const { return path_; }

  // Room to build the reply's data in before reply(), at least the negotiated
  // max_pages * 4096 bytes (the ring entry's payload buffer on io_uring, so read data lands
  // there with no copy; a pooled buffer on /dev/fuse). Distinct from op_in()/payload()
  // storage on /dev/fuse only where it must be: a handler must finish reading its inputs
  // before writing here.
  virtual std::span<std::byte> reply_area() = 0;
  // error == 0 with the out args in order (they may point into reply_area()), or a negative
  // errno with none. Once per request that takes a reply; never for FORGET / BATCH_FORGET /
  // INTERRUPT (use finish()). Called on the executor that delivered the request; does not
  // suspend.
  virtual void reply(int error, std::span<const std::span<const std::byte>> out) = 0;
  // A request that takes no reply (FORGET, BATCH_FORGET, INTERRUPT): gives back its buffer.
  virtual void finish() = 0;

 protected:
  explicit Request(RequestPath path) : path_(path) {}

  // Set by the transport before deliver().
  InHeader header_{};
  std::span<const std::byte> op_in_;
  std::span<const std::byte> payload_;
  std::span<const std::byte> extensions_;

 private:
  RequestPath path_;
};

// The dispatcher: transports hand each request here, on their executor; it starts a task
// per request and returns at once (it never suspends inside deliver()).
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  virtual void deliver(std::unique_ptr<Request> request) = 0;
};

// The size of an opcode's fixed in-argument struct for a kernel of protocol minor
// `kernel_minor` (the classic transport splits a request into op_in and payload with it;
// the ring did it already). 0 for opcodes with no fixed struct and for unknown opcodes
// (answered ENOSYS). INIT: sizeof(InitIn), of which old kernels send only the first 16
// bytes (the transport takes what arrived). SETXATTR: the 8-byte form, because Mica never
// negotiates SETXATTR_EXT.
size_t op_in_size(uint32_t opcode, uint32_t kernel_minor);

}  // namespace mica::fuse
