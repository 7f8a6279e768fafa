// File layouts: which chain holds chunk i of a file, computed from the layout alone and the
// chain table routing publishes, so clients never ask metadata on the data path.
//
// layout_chains() takes `stripe` chains of the table starting at `start` (wrapping) and
// orders them with craq::seeded_shuffle seeded by `seed`: a fixed output for fixed inputs on
// every standard library. chunk i of the file is on chains[i mod stripe]. new_layout() is
// what a shard gives a new file: the cluster's chunk size (or the caller's, within the
// cluster's bounds), the first table, stripe min(requested, table size) and the start the
// shard rotates per new file. Pure functions: any thread, never suspend.
#pragma once

#include <vector>

#include "craq/types.h"
#include "meta/types.h"

namespace mica::meta {

// kInvalidArgument when the layout names a stripe of 0 or wider than the table.
Result<std::vector<craq::ChainId>> layout_chains(const Layout& layout,
                                                 const craq::ChainTable& table);

// The chain of chunk `index` given layout_chains()'s answer.
inline craq::ChainId chunk_chain(const std::vector<craq::ChainId>& chains, uint32_t index) {
  return chains[index % chains.size()];
}

struct LayoutChoice {
  uint32_t chunk_size_bytes = 0;  // 0: the cluster's default
  uint32_t stripe = 0;            // 0: the whole table
};

// kInvalidArgument for a chunk size outside the cluster's bounds or not a power of two;
// kNotFound when routing has no chain table yet.
Result<Layout> new_layout(const craq::RoutingSnapshot& routing, LayoutChoice choice,
                          uint32_t start, uint64_t seed);

}  // namespace mica::meta
