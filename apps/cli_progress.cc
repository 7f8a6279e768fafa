// `mica status`'s storage part: what each storage node says of its targets.
#include <fmt/format.h>

#include "apps/cli_format.h"

namespace mica::apps {
namespace {

std::string resync_text(const craq::TargetProgress& p) {
  if (!p.resync_running) return "-";
  return fmt::format("{}/{} chunks, {}/{}", p.resync_chunks_done, p.resync_chunks_total,
                     format_bytes(p.resync_bytes_done), format_bytes(p.resync_bytes_total));
}

std::string scrub_text(const craq::TargetProgress& p) {
  return fmt::format("{} pass{}, {} checked, {} corrupt", p.scrub_passes,
                     p.scrub_passes == 1 ? "" : "es", p.scrub_chunks_checked,
                     p.scrub_corrupt_found);
}

}  // namespace

std::string storage_progress_text(const std::vector<NodeProgress>& storage) {
  if (storage.empty()) return "no live storage node\n";
  TextTable table(
      {"TARGET", "NODE", "CHAIN", "STATE", "LOCAL", "CHUNKS", "USED", "RESYNC", "SCRUB"});
  for (const NodeProgress& node : storage) {
    if (!node.status.ok()) {
      table.add_row({"-", fmt::format("{}", node.node), "-", "unreachable", "-", "-", "-",
                     node.status.to_string(), "-"});
      continue;
    }
    for (const craq::TargetProgress& p : node.progress.targets) {
      table.add_row({fmt::format("{}", p.target), fmt::format("{}", node.node),
                     p.chain == 0 ? "-" : fmt::format("{} v{}", p.chain, p.chain_version),
                     std::string(craq::public_state_name(p.state)),
                     std::string(craq::local_state_name(p.local)), fmt::format("{}", p.chunks),
                     format_bytes(p.used_bytes), resync_text(p), scrub_text(p)});
    }
  }
  return table.render();
}

void json_storage_progress(JsonWriter* w, const std::vector<NodeProgress>& storage) {
  w->begin_array();
  for (const NodeProgress& node : storage) {
    w->begin_object().key("node").value(uint64_t{node.node}).key("address").value(node.address);
    if (!node.status.ok()) {
      w->key("error").value(node.status.to_string()).end_object();
      continue;
    }
    w->key("targets").begin_array();
    for (const craq::TargetProgress& p : node.progress.targets) {
      w->begin_object().key("target").value(uint64_t{p.target});
      w->key("chain").value(uint64_t{p.chain}).key("chain_version").value(p.chain_version);
      w->key("state").value(craq::public_state_name(p.state));
      w->key("local").value(craq::local_state_name(p.local));
      w->key("chunks").value(p.chunks).key("used_bytes").value(p.used_bytes);
      w->key("capacity_bytes").value(p.capacity_bytes);
      w->key("resync").begin_object().key("running").value(p.resync_running);
      w->key("chunks_done").value(p.resync_chunks_done);
      w->key("chunks_total").value(p.resync_chunks_total);
      w->key("bytes_done").value(p.resync_bytes_done);
      w->key("bytes_total").value(p.resync_bytes_total).end_object();
      w->key("scrub").begin_object().key("passes").value(p.scrub_passes);
      w->key("chunks_checked").value(p.scrub_chunks_checked);
      w->key("corrupt_found").value(p.scrub_corrupt_found).end_object();
      w->end_object();
    }
    w->end_array().end_object();
  }
  w->end_array();
}

}  // namespace mica::apps
