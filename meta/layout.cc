#include "meta/layout.h"

#include <bit>
#include <span>

#include <fmt/format.h>

#include "craq/chain_table.h"

namespace mica::meta {

Result<std::vector<craq::ChainId>> layout_chains(const Layout& layout,
                                                 const craq::ChainTable& table) {
  if (layout.stripe == 0 || layout.stripe > table.chains.size()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("a stripe of {} chains does not fit chain table {} of {}",
                              layout.stripe, table.id, table.chains.size()));
  }
  std::vector<craq::ChainId> chains;
  chains.reserve(layout.stripe);
  for (uint32_t i = 0; i < layout.stripe; ++i) {
    chains.push_back(table.chains[(uint64_t{layout.start} + i) % table.chains.size()]);
  }
  craq::PlacementRandom random(layout.seed);
  craq::seeded_shuffle(std::span<craq::ChainId>(chains), random);
  return chains;
}

Result<Layout> new_layout(const craq::RoutingSnapshot& routing, LayoutChoice choice,
                          uint32_t start, uint64_t seed) {
  if (routing.tables.empty() || routing.tables.front().chains.empty()) {
    return Status(StatusCode::kNotFound, "no chain table yet: files have nowhere to live");
  }
  const craq::ChainTable& table = routing.tables.front();
  uint64_t chunk = choice.chunk_size_bytes != 0 ? choice.chunk_size_bytes
                                                : routing.config.chunk_size_default_bytes;
  if (chunk < routing.config.chunk_size_min_bytes || chunk > routing.config.chunk_size_max_bytes ||
      !std::has_single_bit(chunk)) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("a chunk size of {} bytes is not a power of two in [{}, {}]", chunk,
                              routing.config.chunk_size_min_bytes,
                              routing.config.chunk_size_max_bytes));
  }
  auto size = static_cast<uint32_t>(table.chains.size());
  Layout layout;
  layout.chunk_size_bytes = static_cast<uint32_t>(chunk);
  layout.table = table.id;
  layout.stripe = choice.stripe == 0 ? size : std::min(choice.stripe, size);
  layout.start = start % size;
  layout.seed = seed;
  return layout;
}

}  // namespace mica::meta
