// meta/permission.h as rule tables: who may read, write and execute/search, the sticky
// rule, and which set-id bits a write, a chown and a chmod clear.
#include "meta/permission.h"

#include <gtest/gtest.h>

namespace mica::meta {
namespace {

Inode inode_of(InodeType type, uint32_t mode, uint32_t uid = 10, uint32_t gid = 20) {
  return Inode{.id = 2, .type = type, .mode = mode, .uid = uid, .gid = gid};
}

const Credentials kRoot{.uid = 0, .gid = 0};
const Credentials kOwner{.uid = 10, .gid = 99};
const Credentials kGroup{.uid = 11, .gid = 20};
const Credentials kSupplementary{.uid = 12, .gid = 98, .groups = {5, 20}};
const Credentials kOther{.uid = 13, .gid = 97, .groups = {5}};

struct AccessRow {
  const char* who;
  Credentials cred;
  InodeType type;
  uint32_t mode;
  uint32_t mask;
  bool allowed;
};

TEST(PermissionTest, AccessFollowsTheFirstMatchingClass) {
  const AccessRow rows[] = {
      // owner bits
      {"owner r", kOwner, InodeType::kFile, 0400, kAccessRead, true},
      {"owner w", kOwner, InodeType::kFile, 0400, kAccessWrite, false},
      {"owner rw", kOwner, InodeType::kFile, 0600, kAccessRead | kAccessWrite, true},
      {"owner x", kOwner, InodeType::kFile, 0100, kAccessExec, true},
      // the owner class decides even when group or other would allow
      {"owner denied by own bits", kOwner, InodeType::kFile, 0077, kAccessRead, false},
      // group bits, through gid and through a supplementary group
      {"group r", kGroup, InodeType::kFile, 0040, kAccessRead, true},
      {"group w", kGroup, InodeType::kFile, 0040, kAccessWrite, false},
      {"group denied by group bits", kGroup, InodeType::kFile, 0407, kAccessRead, false},
      {"supplementary r", kSupplementary, InodeType::kFile, 0040, kAccessRead, true},
      {"supplementary w", kSupplementary, InodeType::kFile, 0060, kAccessWrite, true},
      // other bits
      {"other r", kOther, InodeType::kFile, 0004, kAccessRead, true},
      {"other w", kOther, InodeType::kFile, 0664, kAccessWrite, false},
      {"other x", kOther, InodeType::kFile, 0001, kAccessExec, true},
      // directories: x is search
      {"other search", kOther, InodeType::kDirectory, 0711, kAccessExec, true},
      {"other no search", kOther, InodeType::kDirectory, 0770, kAccessExec, false},
      {"group search", kGroup, InodeType::kDirectory, 0750, kAccessExec, true},
      // root
      {"root r", kRoot, InodeType::kFile, 0000, kAccessRead, true},
      {"root w", kRoot, InodeType::kFile, 0000, kAccessWrite, true},
      {"root x no bit", kRoot, InodeType::kFile, 0666, kAccessExec, false},
      {"root x other bit", kRoot, InodeType::kFile, 0001, kAccessExec, true},
      {"root x group bit", kRoot, InodeType::kFile, 0010, kAccessExec, true},
      {"root search", kRoot, InodeType::kDirectory, 0000, kAccessExec, true},
      {"root rwx dir", kRoot, InodeType::kDirectory, 0000, kAccessRead | kAccessWrite | kAccessExec,
       true},
  };
  for (const AccessRow& row : rows) {
    Inode inode = inode_of(row.type, row.mode);
    EXPECT_EQ(may_access(row.cred, inode, row.mask), row.allowed) << row.who;
  }
}

TEST(PermissionTest, NamedChecksAreTheirMasks) {
  Inode file = inode_of(InodeType::kFile, 0640);
  EXPECT_TRUE(may_read(kOwner, file));
  EXPECT_TRUE(may_write(kOwner, file));
  EXPECT_FALSE(may_exec(kOwner, file));
  EXPECT_TRUE(may_read(kGroup, file));
  EXPECT_FALSE(may_write(kGroup, file));
  EXPECT_FALSE(may_read(kOther, file));
  Inode dir = inode_of(InodeType::kDirectory, 0751);
  EXPECT_TRUE(may_search(kOther, dir));
  EXPECT_FALSE(may_read(kOther, dir));
  EXPECT_TRUE(is_owner_or_root(kOwner, dir));
  EXPECT_TRUE(is_owner_or_root(kRoot, dir));
  EXPECT_FALSE(is_owner_or_root(kGroup, dir));
}

TEST(PermissionTest, StickyDirectoriesLetOnlyOwnersRemove) {
  Inode sticky = inode_of(InodeType::kDirectory, 01777, /*uid=*/10);
  Inode plain = inode_of(InodeType::kDirectory, 0777, /*uid=*/10);
  Inode others_file = inode_of(InodeType::kFile, 0644, /*uid=*/11);
  Inode strangers_file = inode_of(InodeType::kFile, 0666, /*uid=*/50);
  struct Row {
    const char* who;
    Credentials cred;
    const Inode* dir;
    const Inode* victim;
    bool allowed;
  };
  const Row rows[] = {
      {"not sticky", kOther, &plain, &strangers_file, true},
      {"owner of the entry", kGroup, &sticky, &others_file, true},   // uid 11 owns it
      {"owner of the dir", kOwner, &sticky, &strangers_file, true},  // uid 10 owns the dir
      {"neither", kOther, &sticky, &strangers_file, false},
      {"root", kRoot, &sticky, &strangers_file, true},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(may_delete_in(row.cred, *row.dir, *row.victim), row.allowed) << row.who;
  }
}

TEST(PermissionTest, AWriteByAnyoneButRootClearsSetIdBits) {
  struct Row {
    const char* who;
    Credentials cred;
    uint32_t mode;
    uint32_t after;
  };
  const Row rows[] = {
      {"the owner clears both too", kOwner, 06755, 00755},
      {"root keeps", kRoot, 06755, 06755},
      {"other clears both", kGroup, 06775, 00775},
      {"SGID without group x stays for the group", kGroup, 06764, 02764},
      {"SGID without group x goes outside the group", kOther, 06764, 00764},
  };
  for (const Row& row : rows) {
    Inode inode = inode_of(InodeType::kFile, row.mode);
    EXPECT_EQ(mode_after_write(row.cred, inode), row.after) << row.who;
  }
}

TEST(PermissionTest, ProtectedHardlinksNeedOwnershipOrAPlainReadWriteFile) {
  struct Row {
    const char* who;
    Credentials cred;
    InodeType type;
    uint32_t mode;
    bool allowed;
  };
  const Row rows[] = {
      {"owner of an unreadable file", kOwner, InodeType::kFile, 0000, true},
      {"root", kRoot, InodeType::kFile, 0000, true},
      {"other with read and write", kOther, InodeType::kFile, 0666, true},
      {"other with read only", kOther, InodeType::kFile, 0644, false},
      {"other, SUID file", kOther, InodeType::kFile, 04666, false},
      {"other, SGID group-exec file", kOther, InodeType::kFile, 02676, false},
      {"other, SGID without group x", kOther, InodeType::kFile, 02666, true},
      {"other, a fifo", kOther, InodeType::kFifo, 0666, false},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(may_hardlink(row.cred, inode_of(row.type, row.mode)), row.allowed) << row.who;
  }
}

TEST(PermissionTest, ChownClearsSetIdBitsOfNonDirectories) {
  auto after = [](const Credentials& cred, InodeType type, uint32_t mode, uint32_t new_gid) {
    return mode_after_chown(cred, inode_of(type, mode), new_gid);
  };
  EXPECT_EQ(after(kRoot, InodeType::kFile, 06755, 20), 00755u);
  EXPECT_EQ(after(kRoot, InodeType::kFile, 06745, 20), 02745u);  // SGID without group x
  EXPECT_EQ(after(kRoot, InodeType::kFile, 04644, 20), 00644u);
  EXPECT_EQ(after(kRoot, InodeType::kDirectory, 02775, 20), 02775u);
  // A caller outside the file's group loses SGID even without group x.
  EXPECT_EQ(after(kOwner, InodeType::kFile, 02745, 99), 00745u);
  // The group keeps it without group x; clearing SUID drops SGID outside the new group.
  EXPECT_EQ(after(kGroup, InodeType::kFile, 02745, 20), 02745u);
  EXPECT_EQ(after(kSupplementary, InodeType::kFile, 06745, 20), 02745u);
  EXPECT_EQ(after(kSupplementary, InodeType::kFile, 06745, 97), 00745u);
}

TEST(PermissionTest, ChmodOutsideTheGroupDropsSgid) {
  Inode file = inode_of(InodeType::kFile, 0644);
  EXPECT_EQ(mode_for_chmod(kOwner, file, 02755), 00755u);  // owner not in gid 20
  EXPECT_EQ(mode_for_chmod(Credentials{.uid = 10, .gid = 20}, file, 02755), 02755u);
  EXPECT_EQ(mode_for_chmod(Credentials{.uid = 10, .gid = 1, .groups = {20}}, file, 02755), 02755u);
  EXPECT_EQ(mode_for_chmod(kRoot, file, 02755), 02755u);
  EXPECT_EQ(mode_for_chmod(kOwner, file, 0107755), 07755u & ~kSetGid);  // type bits dropped
}

TEST(PermissionTest, SgidDirectoriesPassTheirGroupOn) {
  Inode sgid_dir = inode_of(InodeType::kDirectory, 02775, 10, 20);
  Inode plain_dir = inode_of(InodeType::kDirectory, 0775, 10, 20);
  Inode file{.type = InodeType::kFile, .mode = 0644};
  inherit_from_parent(kOther, sgid_dir, &file);
  EXPECT_EQ(file.gid, 20u);
  EXPECT_EQ(file.mode, 0644u);
  Inode subdir{.type = InodeType::kDirectory, .mode = 0755};
  inherit_from_parent(kOther, sgid_dir, &subdir);
  EXPECT_EQ(subdir.gid, 20u);
  EXPECT_EQ(subdir.mode, 02755u);
  Inode plain_child{.type = InodeType::kDirectory, .mode = 0755};
  inherit_from_parent(kOther, plain_dir, &plain_child);
  EXPECT_EQ(plain_child.gid, kOther.gid);
  EXPECT_EQ(plain_child.mode, 0755u);
}

}  // namespace
}  // namespace mica::meta
