// Cluster token files: what load_cluster_token refuses (and says so, naming the file), what
// it trims, that a generated file loads back, and that the secret is never printed.
#include "net/cluster_token.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/temp_dir.h"

namespace mica::net::testing {
namespace {

constexpr std::string_view kSecret = "a-cluster-secret-of-32-bytes-000";

class ClusterToken : public ::testing::Test {
 protected:
  // Writes contents to a new file of the given mode (exactly: fchmod ignores the umask).
  std::string write_file(const std::string& name, std::string_view contents, mode_t mode) {
    std::string path = dir_.path() + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, contents.data(), contents.size()), ssize_t(contents.size()));
    EXPECT_EQ(::fchmod(fd, mode), 0);
    ::close(fd);
    return path;
  }

  mica::testing::TempDir dir_{mica::testing::binary_dir() + "/test-tmp", "cluster-token"};
};

TEST_F(ClusterToken, FileReadableByOthersIsRefusedNamingThePath) {
  std::string path = write_file("token", kSecret, 0644);
  Result<net::ClusterToken> token = load_cluster_token(path);
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(token.status().message().find(path), std::string_view::npos) << token.status();
  EXPECT_NE(token.status().message().find("0644"), std::string_view::npos) << token.status();
}

TEST_F(ClusterToken, FileReadableByItsGroupIsRefused) {
  std::string path = write_file("token", kSecret, 0640);
  EXPECT_EQ(load_cluster_token(path).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(ClusterToken, ReadOnlyFileOfItsOwnerIsAccepted) {
  std::string path = write_file("token", kSecret, 0400);
  Result<net::ClusterToken> token = load_cluster_token(path);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->size(), kSecret.size());
}

TEST_F(ClusterToken, MissingFileIsRefusedNamingThePath) {
  std::string path = dir_.path() + "/no-such-token";
  Result<net::ClusterToken> token = load_cluster_token(path);
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), StatusCode::kNotFound);
  EXPECT_NE(token.status().message().find(path), std::string_view::npos) << token.status();
}

TEST_F(ClusterToken, ShortTokenIsRefused) {
  std::string path = write_file("token", "fifteen-bytes!!\n", 0600);
  Result<net::ClusterToken> token = load_cluster_token(path);
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(token.status().message().find(path), std::string_view::npos) << token.status();
  EXPECT_NE(token.status().message().find("15 bytes"), std::string_view::npos) << token.status();
}

TEST_F(ClusterToken, EmptyTokenIsRefused) {
  std::string path = write_file("token", " \n\n", 0600);
  Result<net::ClusterToken> token = load_cluster_token(path);
  ASSERT_FALSE(token.ok());
  EXPECT_NE(token.status().message().find("empty"), std::string_view::npos) << token.status();
}

TEST_F(ClusterToken, TokenLongerThanTheLimitIsRefused) {
  std::string path = write_file("token", std::string(kClusterTokenBytesMax + 1, 'x'), 0600);
  EXPECT_EQ(load_cluster_token(path).status().code(), StatusCode::kInvalidArgument);
  std::string huge = write_file("huge", std::string(1 << 20, 'x'), 0600);
  EXPECT_EQ(load_cluster_token(huge).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ClusterToken, TrailingNewlineIsTrimmed) {
  std::string path = write_file("token", std::string(kSecret) + " \r\n\n", 0600);
  Result<net::ClusterToken> loaded = load_cluster_token(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Result<net::ClusterToken> expected = net::ClusterToken::from_secret(std::string(kSecret));
  ASSERT_TRUE(expected.ok());
  EXPECT_TRUE(*loaded == *expected);
}

TEST_F(ClusterToken, GeneratedFileLoadsBack) {
  std::string path = dir_.path() + "/generated";
  Status generated = generate_cluster_token_file(path);
  ASSERT_TRUE(generated.ok()) << generated;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.size(), 2 * kGeneratedTokenRandomBytes + 1);  // hex and a newline
  Result<net::ClusterToken> loaded = load_cluster_token(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Result<net::ClusterToken> expected = net::ClusterToken::from_secret(text.substr(0, 64));
  ASSERT_TRUE(expected.ok());
  EXPECT_TRUE(*loaded == *expected);
}

TEST_F(ClusterToken, GeneratingNeverReplacesAFileAndDrawsAFreshSecret) {
  std::string first = dir_.path() + "/first";
  std::string second = dir_.path() + "/second";
  ASSERT_TRUE(generate_cluster_token_file(first).ok());
  EXPECT_EQ(generate_cluster_token_file(first).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(generate_cluster_token_file(second).ok());
  Result<net::ClusterToken> a = load_cluster_token(first);
  Result<net::ClusterToken> b = load_cluster_token(second);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(*a == *b);
}

TEST_F(ClusterToken, PrintingNeverShowsTheSecret) {
  Result<net::ClusterToken> token = net::ClusterToken::from_secret(std::string(kSecret));
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(fmt::format("{}", *token), "<token>");
  std::ostringstream out;
  out << *token;
  EXPECT_EQ(out.str(), "<token>");
  // A refused secret is not echoed in the message either.
  Result<net::ClusterToken> short_one = net::ClusterToken::from_secret("short-secret");
  ASSERT_FALSE(short_one.ok());
  EXPECT_EQ(short_one.status().message().find("short-secret"), std::string_view::npos);
}

TEST_F(ClusterToken, ProofsDependOnTheSecretTheLabelAndBothNonces) {
  auto a = net::ClusterToken::from_secret(std::string(kSecret));
  auto b = net::ClusterToken::from_secret(std::string(kSecret) + "!");
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<std::byte> n1(32, std::byte{1}), n2(32, std::byte{2});
  TokenProof proof = a->prove("label", n1, n2);
  EXPECT_TRUE(a->verify("label", n1, n2, proof));
  EXPECT_FALSE(b->verify("label", n1, n2, proof));
  EXPECT_FALSE(a->verify("other", n1, n2, proof));
  EXPECT_FALSE(a->verify("label", n2, n1, proof));
  EXPECT_FALSE(a->verify("label", n1, n2, std::span(proof).first(31)));
}

}  // namespace
}  // namespace mica::net::testing
