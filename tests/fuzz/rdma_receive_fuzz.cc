// libFuzzer target for the RDMA receive path (net/rdma/rdma_receive.h): what a peer can put
// in receive ring slots — immediate data, raw fragments, and well-sealed frames cut at
// arbitrary fragment sizes — interleaved with the application consuming frames. Any input
// must end in frames or a Status, never a crash or sanitizer report; the budgets' counters
// never pass their limits and return to zero; and nothing is allocated for announced bytes
// (while a header may announce up to 64 MiB, no single allocation inside one input may
// pass 1 MiB: operator new is replaced below, so this holds without a sanitizer too).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <span>
#include <vector>

#include "net/rdma/rdma_receive.h"

namespace {

constexpr size_t kAllocationMax = 1 << 20;
bool g_in_input = false;  // only the code under test is held to kAllocationMax

}  // namespace

void* operator new(size_t bytes) {
  if (g_in_input && bytes > kAllocationMax) __builtin_trap();  // allocated by announcement
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}

namespace {

using mica::net::ByteBudget;
using mica::net::Frame;
using mica::net::FrameHeader;
using mica::net::RdmaReceiver;

constexpr uint32_t kSlots = 8;
constexpr uint32_t kSlotBytes = 512;
constexpr uint32_t kFrameBytesMax = 64 << 20;
constexpr uint64_t kConnectionBudget = kFrameBytesMax;
constexpr uint64_t kTransportBudget = 2 * uint64_t(kFrameBytesMax);

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Reads the fuzzer's input in order; past the end everything reads as zero.
struct Input {
  const uint8_t* data;
  size_t size;
  size_t at = 0;
  bool done() const { return at >= size; }
  uint64_t take(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(at < size ? data[at++] : 0) << (8 * i);
    return v;
  }
  std::vector<std::byte> take_bytes(size_t n) {
    std::vector<std::byte> out(n);
    for (size_t i = 0; i < n && at < size; ++i) out[i] = std::byte(data[at++]);
    return out;
  }
};

struct Harness {
  std::vector<std::vector<std::byte>> slots =
      std::vector<std::vector<std::byte>>(kSlots, std::vector<std::byte>(kSlotBytes));
  std::vector<uint32_t> free_slots;
  ByteBudget connection{kConnectionBudget};
  ByteBudget transport{kTransportBudget};
  std::optional<RdmaReceiver> receiver_storage{
      std::in_place, kFrameBytesMax, &connection, &transport,
      [this](uint32_t slot, uint32_t length) {
        return std::span<const std::byte>(slots[slot]).first(length);
      }};
  RdmaReceiver& receiver = *receiver_storage;
  std::vector<uint32_t> freed;
  bool failed = false;

  Harness() {
    for (uint32_t i = 0; i < kSlots; ++i) free_slots.push_back(i);
  }
  ~Harness() {
    receiver_storage.reset();  // gives every reservation back
    check(connection.reserved() == 0 && transport.reserved() == 0);
  }
  void invariants() const {
    check(connection.reserved() <= connection.bytes_max());
    check(transport.reserved() <= transport.bytes_max());
    check(receiver.reserved_bytes() == connection.reserved());
  }
  void give_back() {
    free_slots.insert(free_slots.end(), freed.begin(), freed.end());
    freed.clear();
  }
  // The application takes one frame; freed budget lets held slots go on.
  void consume() {
    std::optional<Frame> frame = receiver.pop_frame();
    if (frame) check(frame->payload.size() == frame->header.payload_length);
    if (!receiver.retry(&freed).ok()) failed = true;
    give_back();
  }
  // One message into a free slot, as the peer's SEND would land (it has a credit).
  void deliver(std::span<const std::byte> bytes) {
    while (free_slots.empty() && !failed) {
      if (receiver.frames_ready() == 0) {
        failed = true;  // all slots held by one frame past both budgets: cannot happen
        check(false);
      }
      consume();
    }
    if (failed) return;
    uint32_t slot = free_slots.back();
    free_slots.pop_back();
    if (!bytes.empty()) std::memcpy(slots[slot].data(), bytes.data(), bytes.size());
    if (!receiver.on_data(slot, static_cast<uint32_t>(bytes.size()), &freed).ok()) failed = true;
    give_back();
    invariants();
  }
};

void raw_fragment(Harness* h, Input* in) {
  (void)mica::net::decode_imm(static_cast<uint32_t>(in->take(4)));
  size_t length = in->take(2) % (kSlotBytes + 1);
  std::vector<std::byte> bytes = in->take_bytes(length);
  h->deliver(bytes);
}

// A frame the way RdmaCore::send cuts it: header and payload, fragments of `cut` bytes.
void sealed_frame(Harness* h, Input* in) {
  FrameHeader header;
  header.kind = static_cast<mica::net::FrameKind>(1 + in->take(1) % 4);
  header.service = static_cast<uint16_t>(in->take(2));
  header.request_id = in->take(8);
  if (header.kind == mica::net::FrameKind::kData) header.flags = mica::net::kFrameFlagBulkTail;
  std::vector<std::byte> payload = in->take_bytes(in->take(2) % 4096);
  mica::net::HeaderBytes head = mica::net::seal_frame(header, payload);
  std::vector<std::byte> stream(head.begin(), head.end());
  stream.insert(stream.end(), payload.begin(), payload.end());
  size_t cut = 2 * mica::net::kFrameHeaderBytes + in->take(1) % (kSlotBytes - 79);
  for (size_t at = 0; at < stream.size() && !h->failed; at += cut)
    h->deliver(std::span(stream).subspan(at, std::min(cut, stream.size() - at)));
}

// A header announcing up to frame_bytes_max and a first fragment of it: what a hostile
// peer sends to make the receiver allocate for bytes that never come.
void announced_frame(Harness* h, Input* in) {
  FrameHeader header;
  header.request_id = in->take(8);
  mica::net::HeaderBytes head = mica::net::seal_frame(header, {});
  uint32_t announced = static_cast<uint32_t>(in->take(4)) % (kFrameBytesMax - 39);
  std::memcpy(head.data() + offsetof(FrameHeader, payload_length), &announced, 4);
  std::vector<std::byte> first(head.begin(), head.end());
  std::vector<std::byte> tail = in->take_bytes(in->take(2) % (kSlotBytes - 39));
  first.insert(first.end(), tail.begin(), tail.end());
  h->deliver(first);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  g_in_input = true;
  {
    Harness h;
    while (!in.done() && !h.failed) {
      switch (in.take(1) % 4) {
        case 0:
          raw_fragment(&h, &in);
          break;
        case 1:
          sealed_frame(&h, &in);
          break;
        case 2:
          announced_frame(&h, &in);
          break;
        default:
          h.consume();
      }
    }
    while (!h.failed && h.receiver.frames_ready() > 0) h.consume();
    h.invariants();
  }
  g_in_input = false;
  return 0;
}
