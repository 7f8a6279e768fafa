// fsck's checks on namespace images built by hand (meta/fsck.h, check_namespace): a clean
// tree, then one planted problem per rule, each found and named.
#include "meta/fsck.h"

#include <gtest/gtest.h>

namespace mica::meta {
namespace {

Inode directory(InodeId id, InodeId parent, uint32_t nlink) {
  return Inode{.id = id, .type = InodeType::kDirectory, .mode = 0755, .nlink = nlink,
               .parent = parent};
}
Inode file(InodeId id, uint32_t nlink) {
  return Inode{.id = id, .type = InodeType::kFile, .mode = 0644, .nlink = nlink};
}
ScannedEntry entry(InodeId parent, std::string name, InodeId inode, InodeType type) {
  return ScannedEntry{.parent = parent, .name = std::move(name),
                      .entry = DirEntry{.inode = inode, .type = type}};
}

const InodeId kDir = make_inode_id(1, 1);
const InodeId kFileA = make_inode_id(1, 2);
const InodeId kFileB = make_inode_id(0, 2);

// / (root, shard 0) holds dir (shard 1) and b; dir holds a and a hard link to b.
NamespaceImage clean_image() {
  NamespaceImage image;
  image.inodes[kRootInode] = directory(kRootInode, kRootInode, 3);
  image.inodes[kDir] = directory(kDir, kRootInode, 2);
  image.inodes[kFileA] = file(kFileA, 1);
  image.inodes[kFileB] = file(kFileB, 2);
  image.entries = {entry(kRootInode, "dir", kDir, InodeType::kDirectory),
                   entry(kRootInode, "b", kFileB, InodeType::kFile),
                   entry(kDir, "a", kFileA, InodeType::kFile),
                   entry(kDir, "b-link", kFileB, InodeType::kFile)};
  return image;
}

std::string messages(const std::vector<FsckProblem>& problems) {
  std::string out;
  for (const FsckProblem& problem : problems) out += problem.message + "\n";
  return out;
}

TEST(Fsck, ACleanTreeHasNoProblems) {
  std::vector<FsckProblem> problems = check_namespace(clean_image());
  EXPECT_TRUE(problems.empty()) << messages(problems);
}

TEST(Fsck, AnEntryPointingNowhereIsFound) {
  NamespaceImage image = clean_image();
  InodeId ghost = make_inode_id(1, 99);
  image.entries.push_back(entry(kDir, "ghost", ghost, InodeType::kFile));
  std::vector<FsckProblem> problems = check_namespace(image);
  ASSERT_EQ(problems.size(), 1u) << messages(problems);
  EXPECT_EQ(problems[0].inode, ghost);
}

TEST(Fsck, AWrongFileLinkCountIsFound) {
  NamespaceImage image = clean_image();
  image.inodes[kFileB].nlink = 1;
  std::vector<FsckProblem> problems = check_namespace(image);
  ASSERT_EQ(problems.size(), 1u) << messages(problems);
  EXPECT_EQ(problems[0].inode, kFileB);
}

TEST(Fsck, ADirectoryLinkCountCountsSubdirectories) {
  NamespaceImage image = clean_image();
  image.inodes[kRootInode].nlink = 2;
  std::vector<FsckProblem> problems = check_namespace(image);
  ASSERT_EQ(problems.size(), 1u) << messages(problems);
  EXPECT_EQ(problems[0].inode, kRootInode);
}

TEST(Fsck, AWrongParentFieldIsFound) {
  NamespaceImage image = clean_image();
  image.inodes[kDir].parent = kFileA;
  std::vector<FsckProblem> problems = check_namespace(image);
  ASSERT_EQ(problems.size(), 1u) << messages(problems);
  EXPECT_EQ(problems[0].inode, kDir);
}

TEST(Fsck, ALockedEntryIsFound) {
  NamespaceImage image = clean_image();
  image.entries[2].entry.locked_by = 7;
  std::vector<FsckProblem> problems = check_namespace(image);
  ASSERT_EQ(problems.size(), 1u) << messages(problems);
  EXPECT_NE(problems[0].message.find("locked"), std::string::npos);
}

TEST(Fsck, AnUnreachableInodeIsFoundUnlessQueuedOrOpen) {
  NamespaceImage image = clean_image();
  InodeId orphan = make_inode_id(1, 50);
  image.inodes[orphan] = file(orphan, 0);
  std::vector<FsckProblem> problems = check_namespace(image);
  ASSERT_EQ(problems.size(), 1u) << messages(problems);
  EXPECT_EQ(problems[0].inode, orphan);
  image.open_unlinked.insert(orphan);
  EXPECT_TRUE(check_namespace(image).empty());
  image.open_unlinked.clear();
  image.gc_queued.insert(orphan);
  EXPECT_TRUE(check_namespace(image).empty());
}

TEST(Fsck, AnEntryOfTheWrongTypeIsFound) {
  NamespaceImage image = clean_image();
  image.entries[1].entry.type = InodeType::kSymlink;
  std::vector<FsckProblem> problems = check_namespace(image);
  ASSERT_EQ(problems.size(), 1u) << messages(problems);
  EXPECT_EQ(problems[0].inode, kFileB);
}

}  // namespace
}  // namespace mica::meta
