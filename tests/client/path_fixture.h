// The path tests' shared cluster and checks: a fixture whose suite brings up one dev cluster
// (SetUpTestSuite) for all its tests, each test working in its own top directory, and
// CO_EXPECT_ERRNO(call, errno) that awaits a client call and compares its errno (0: ok)
// through the one status -> errno table (client/errno.h).
//
// ctest runs every test in its own process (gtest_discover_tests), so there a test costs one
// bring-up; a whole binary run (client_tests --gtest_filter=ClientPaths*) costs one per
// suite. Heavy: tests/client/client_cluster.h states the time caps. Test thread only.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <cstring>

#include "client/errno.h"
#include "tests/client/client_cluster.h"
#include "tests/co_test.h"

namespace mica::testing {

class ClientPathTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new ClientCluster("paths"); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->up()) << cluster_->up_output(); }
  static void run(ClientBody body) {
    Status s = with_client(cluster_->options(), body);
    EXPECT_TRUE(s.ok()) << s;
  }
  static inline ClientCluster* cluster_ = nullptr;
};

// The errno of a call's answer (0: ok); T is Status or Result<U>, both of which have status().
template <typename T>
Task<int> error_of(Task<T> call) {
  T answer = co_await std::move(call);
  co_return answer.ok() ? 0 : client::status_to_errno(answer.status());
}

// Awaits call (a client Task) and expects its errno to be `expected` (0: success).
#define CO_EXPECT_ERRNO(call, expected)                               \
  do {                                                                \
    auto mica_call_ = ::mica::testing::error_of(call);                \
    int mica_errno_ = co_await std::move(mica_call_);                 \
    EXPECT_EQ(mica_errno_, (expected)) << #call << ": " << strerror(mica_errno_); \
  } while (0)

// A regular file `name` in directory `dir` made through metadata (opening files is the
// File API's, tested on its own), as root.
inline Task<Result<meta::Inode>> make_file(client::Client* c, std::string dir, std::string name,
                                           uint32_t mode = 0644) {
  auto finding = c->stat(dir);
  CO_TRY_ASSIGN(meta::Inode parent, co_await std::move(finding));
  meta::CreateRequest request{.cred = meta::Credentials{},
                              .parent = parent.id,
                              .name = std::move(name),
                              .type = meta::InodeType::kFile,
                              .mode = mode};
  auto creating = c->meta().create(std::move(request));
  CO_TRY_ASSIGN(meta::CreateReply reply, co_await std::move(creating));
  co_return std::move(reply.inode);
}

// A caller that is not root (uid and gid 1000), for the permission checks.
inline client::CallOptions as_user() {
  return client::CallOptions{.cred = meta::Credentials{.uid = 1000, .gid = 1000}};
}

}  // namespace mica::testing
