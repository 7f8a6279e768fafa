// A storage cluster of real processes under a streaming write load, for the kill and the
// network-namespace tests: the cluster (storage_cluster_process.h), the workload and its
// writer thread (storage_workload.h), and the steps the tests are made of — start and
// stream, take a node out (killed or partitioned) while the writes go on, heal and verify
// everything. Owned by one test on its thread; the steps block and report gtest failures
// (call them under ASSERT_NO_FATAL_FAILURE). Members are destroyed in reverse: the writer
// stops before the processes die, and those before the network they ran in.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/apps/storage_cluster_process.h"
#include "tests/apps/storage_workload.h"

namespace mica::testing {

// Writes acknowledged between the steps of a test: enough that each step streams for a
// while (a round is one write per chunk).
constexpr uint64_t kAcksPerStep = 48;
constexpr std::chrono::milliseconds kStepTimeout{20'000};
constexpr std::chrono::milliseconds kHealTimeout{30'000};

class StorageUnderLoad {
 public:
  // Starts the cluster, waits for full strength, and starts streaming writes over every
  // chain; returns once kAcksPerStep writes were acknowledged.
  void start(std::string dir, ClusterProcessOptions options) {
    cluster = std::make_unique<StorageClusterProcess>(std::move(dir), std::move(options));
    ASSERT_NO_FATAL_FAILURE(cluster->start());
    std::optional<ClusterSeen> seen = cluster->seen();
    ASSERT_TRUE(seen.has_value());
    std::vector<craq::ChainId> chains;
    for (const ChainSeen& chain : seen->chains) chains.push_back(chain.id);
    workload = std::make_unique<WriteWorkload>(WorkloadOptions{}, chains);
    config = SessionConfig{.token_file = cluster->token_path(),
                           .mgmtd = cluster->mgmtd_address(),
                           .chains = chains.size()};
    writer = std::make_unique<StreamingWriter>(config, workload.get());
    ASSERT_TRUE(writer->wait_for_acks(kAcksPerStep, kStepTimeout))
        << "no writes acknowledged: " << workload->last_error() << "\n"
        << cluster->describe() << cluster->log_tails();
  }

  // Waits until mgmtd took storage node `node`'s targets out, then for more writes to be
  // acknowledged by the remaining replicas.
  void expect_node_out_and_writes_going_on(int node) {
    ASSERT_TRUE(cluster->wait_node_out(node, kStepTimeout)) << cluster->describe();
    ASSERT_TRUE(writer->wait_for_acks(kAcksPerStep, kStepTimeout))
        << "writes stopped with node " << node << " out: " << workload->last_error();
  }

  void kill_storage_under_load(int node) {
    cluster->kill_storage(node);
    ASSERT_NO_FATAL_FAILURE(expect_node_out_and_writes_going_on(node));
  }

  // Waits for every chain at full strength, streams a little more, stops the stream and
  // checks everything: reads, replica states, then (after a clean stop) every engine.
  void heal_and_verify() {
    ASSERT_TRUE(cluster->wait_full_strength(kHealTimeout))
        << "the cluster did not return to full strength:\n"
        << cluster->describe();
    ASSERT_TRUE(writer->wait_for_acks(kAcksPerStep, kStepTimeout)) << workload->last_error();
    ASSERT_EQ(writer->stop(), "");
    std::string online = run_on_executor(verify_online(config, workload.get()));
    EXPECT_EQ(online, "");
    std::optional<ClusterSeen> seen = cluster->seen();
    ASSERT_TRUE(seen.has_value());
    std::vector<std::pair<std::string, craq::ChainId>> dirs;
    for (const ChainSeen& chain : seen->chains) {
      for (const auto& [target, state] : chain.targets) {
        dirs.emplace_back(seen->target_disk.at(target), static_cast<craq::ChainId>(chain.id));
      }
    }
    EXPECT_EQ(dirs.size(), cluster->chain_count() * cluster->options().replicas);
    cluster->stop_all();
    std::string offline = run_on_executor(verify_engines(dirs, workload.get()));
    EXPECT_EQ(offline, "");
    ::testing::Test::RecordProperty("acked_writes", std::to_string(workload->acked.load()));
    ::testing::Test::RecordProperty("failed_write_calls", std::to_string(workload->failed.load()));
    std::printf("%llu writes acknowledged (%llu bytes), %llu write calls failed and resent\n",
                static_cast<unsigned long long>(workload->acked.load()),
                static_cast<unsigned long long>(workload->acked_bytes.load()),
                static_cast<unsigned long long>(workload->failed.load()));
  }

  std::unique_ptr<StorageClusterProcess> cluster;
  std::unique_ptr<WriteWorkload> workload;
  SessionConfig config;
  std::unique_ptr<StreamingWriter> writer;
};

}  // namespace mica::testing
