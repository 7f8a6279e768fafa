// What the `mica` CLI prints: aligned tables for people, and JSON (--json) for scripts,
// from the messages mgmtd answers with (craq/mgmtd_service.h).
//
// Every function is pure: it takes a response and returns the complete text to print on
// stdout, ending in a newline. The JSON forms are one document each and keep every field a
// script may want (ids, states by name, versions, ages), so they are the stable interface;
// the tables may change shape. chain_health is the one judgement made here: how a chain
// looks at a glance. Any thread; never suspends.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "apps/json_writer.h"
#include "async/status.h"
#include "craq/mgmtd_service.h"
#include "craq/storage_service.h"

namespace mica::apps {

// kHealthy: every target serving and the chain as long as its table asks. kDegraded: some
// target serving, but not all (one failed, syncing or missing). kBlocked: no target
// serving, so the chain takes no reads or writes (waiting for its lastsrv target).
enum class ChainHealth { kHealthy, kDegraded, kBlocked };
std::string_view chain_health_name(ChainHealth health);
// replica_count: the chain's table's (0 when it belongs to no table).
ChainHealth chain_health(const craq::ChainInfo& chain, uint32_t replica_count);

// Columns padded to their widest cell, two spaces apart, no trailing spaces.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header);
  void add_row(std::vector<std::string> row);
  std::string render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string format_status(const craq::StatusResponse& status, bool json);
// What one live storage node answered to StorageService::progress (status not ok: why not).
struct NodeProgress {
  craq::NodeId node = 0;
  std::string address;
  Status status;
  craq::ProgressResponse progress;
};
// mgmtd's status as above, then every storage target's chunks, resync and scrub progress
// (text: a table after mgmtd's part; JSON: a "storage" member after mgmtd's members).
std::string format_status(const craq::StatusResponse& status, bool json,
                          const std::vector<NodeProgress>& storage);
// The storage part alone (apps/cli_progress.cc): a table with one row per target (an
// unreachable node is one row saying why), and its JSON array.
std::string storage_progress_text(const std::vector<NodeProgress>& storage);
void json_storage_progress(JsonWriter* w, const std::vector<NodeProgress>& storage);
std::string format_nodes(const craq::StatusResponse& status, bool json);
std::string format_targets(const craq::StatusResponse& status, bool json);
std::string format_chains(const craq::StatusResponse& status, bool json);
std::string format_created_table(const craq::CreateChainTableResponse& response, bool json);
std::string format_target_offline(craq::TargetId target, bool offline,
                                  const craq::SetTargetOfflineResponse& response, bool json);
std::string format_replaced(craq::TargetId old_target, craq::TargetId new_target,
                            const craq::ReplaceTargetResponse& response, bool json);
std::string format_promoted(const craq::PromoteTargetResponse& response, bool json);

// "1.5 GiB", "512 B".
std::string format_bytes(uint64_t bytes);

}  // namespace mica::apps
