// libFuzzer target for the frame and message decoders: any input must yield a value or a
// Status, never a crash, a sanitizer report or an allocation beyond the input's size.
#include <cstddef>
#include <cstdint>
#include <span>

#include "net/frame.h"
#include "net/serde.h"

namespace {

struct Inner {
  int32_t x = 0;
  std::string label;
  MICA_FIELDS(Inner, x, label)
};

struct Sample {
  uint64_t id = 0;
  bool flag = false;
  std::string name;
  std::vector<std::byte> blob;
  std::vector<Inner> items;
  std::optional<uint32_t> maybe;
  mica::Status status;
  MICA_FIELDS(Sample, id, flag, name, blob, items, maybe, status)
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::as_bytes(std::span(data, size));
  if (bytes.size() >= mica::net::kFrameHeaderBytes) {
    std::span<const std::byte, mica::net::kFrameHeaderBytes> head(bytes.data(),
                                                                 mica::net::kFrameHeaderBytes);
    auto header = mica::net::parse_header(head, 1 << 20);
    auto rest = bytes.subspan(mica::net::kFrameHeaderBytes);
    if (header.ok() && header->payload_length == rest.size())
      (void)mica::net::verify_payload(*header, rest);
  }
  auto sample = mica::net::decode<Sample>(bytes);
  if (sample.ok()) {
    // Whatever decodes must encode back to the same value.
    auto again = mica::net::decode<Sample>(mica::net::encode(*sample));
    if (!again.ok() || !(*again == *sample)) __builtin_trap();
  }
  size_t used = 0;
  (void)mica::net::decode_prefix<Inner>(bytes, &used);
  return 0;
}
