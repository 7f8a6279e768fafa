// The FUSE codec (fuse/codec.h) on bytes built here: request splitting and its refusals,
// names and forget lists read with bounds checks, and the reply structs and directory pages
// as the kernel reads them.
#include "fuse/codec.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "fuse/node_id.h"
#include "fuse/request.h"

namespace mica::fuse {
namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

template <class T>
void append(std::vector<std::byte>* out, const T& value) {
  const auto* p = reinterpret_cast<const std::byte*>(&value);
  out->insert(out->end(), p, p + sizeof(T));
}

// A request as /dev/fuse delivers it: header, op struct bytes, payload.
std::vector<std::byte> raw_request(Opcode op, std::span<const std::byte> op_in,
                                   std::span<const std::byte> payload, uint16_t extlen = 0) {
  InHeader h{};
  h.opcode = static_cast<uint32_t>(op);
  h.unique = 42;
  h.nodeid = 7;
  h.total_extlen = extlen;
  h.len = static_cast<uint32_t>(sizeof(h) + op_in.size() + payload.size());
  std::vector<std::byte> out;
  append(&out, h);
  out.insert(out.end(), op_in.begin(), op_in.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

TEST(FuseCodec, SplitsAMkdirIntoItsStructAndName) {
  MkdirIn in{.mode = 0755, .umask = 022};
  std::vector<std::byte> raw =
      raw_request(Opcode::kMkdir, as_bytes(in), bytes_of(std::string_view("dir\0", 4)));
  SplitRequest split;
  ASSERT_EQ(split_request(raw, kKernelMinorVersion, &split), 0);
  EXPECT_EQ(split.header.unique, 42u);
  EXPECT_EQ(split.op_in.size(), sizeof(MkdirIn));
  ASSERT_EQ(split.payload.size(), 4u);
  EXPECT_EQ(read_one_name(split.payload), "dir");
}

TEST(FuseCodec, RefusesARequestShorterThanItsStruct) {
  std::byte half[4] = {};
  std::vector<std::byte> raw = raw_request(Opcode::kSetattr, half, {});
  SplitRequest split;
  EXPECT_EQ(split_request(raw, kKernelMinorVersion, &split), -EINVAL);
  EXPECT_EQ(split.header.unique, 42u);  // still known, so the error can be answered
}

TEST(FuseCodec, RefusesALengthThatDisagreesWithTheRead) {
  std::vector<std::byte> raw = raw_request(Opcode::kGetattr, {}, {});
  raw.push_back(std::byte{0});  // one byte more than header.len says
  SplitRequest split;
  EXPECT_EQ(split_request(raw, kKernelMinorVersion, &split), -EINVAL);
}

TEST(FuseCodec, TakesExtensionsOffTheEnd) {
  std::vector<std::byte> ext;
  append(&ext, ExtHeader{.size = 16, .type = kExtGroups});
  append(&ext, SuppGroups{.nr_groups = 1});
  append(&ext, uint32_t{1234});
  std::vector<std::byte> payload = bytes_of(std::string_view("f\0", 2));
  payload.insert(payload.end(), ext.begin(), ext.end());
  CreateIn in{};
  std::vector<std::byte> raw = raw_request(Opcode::kCreate, as_bytes(in), payload, 2);
  SplitRequest split;
  ASSERT_EQ(split_request(raw, kKernelMinorVersion, &split), 0);
  EXPECT_EQ(split.payload.size(), 2u);
  EXPECT_EQ(extension_groups(split.extensions), std::vector<uint32_t>{1234});
}

TEST(FuseCodec, AcceptsAShortInitFromAnOldKernel) {
  std::byte init[kInitInCompatBytes] = {};
  std::vector<std::byte> raw = raw_request(Opcode::kInit, init, {});
  SplitRequest split;
  ASSERT_EQ(split_request(raw, 0, &split), 0);
  EXPECT_EQ(split.op_in.size(), kInitInCompatBytes);
}

TEST(FuseCodec, ANameWithoutItsNulIsRefused) {
  std::vector<std::byte> payload = bytes_of("abc");
  EXPECT_FALSE(read_one_name(payload).has_value());
  PayloadReader reader(payload);
  EXPECT_FALSE(reader.name().has_value());
  EXPECT_EQ(reader.rest().size(), 3u);  // nothing consumed
}

TEST(FuseCodec, ReadsTwoNamesInARow) {
  std::vector<std::byte> payload = bytes_of(std::string_view("old\0new\0", 8));
  PayloadReader reader(payload);
  EXPECT_EQ(reader.name(), "old");
  EXPECT_EQ(reader.name(), "new");
  EXPECT_FALSE(reader.name().has_value());
}

TEST(FuseCodec, NameErrorsFollowPosix) {
  EXPECT_EQ(name_error("a"), 0);
  EXPECT_EQ(name_error(".."), -EINVAL);
  EXPECT_EQ(name_error(std::string(meta::kNameMax + 1, 'x')), -ENAMETOOLONG);
}

TEST(FuseCodec, AForgetListLongerThanItsBytesIsRefused) {
  std::vector<std::byte> payload;
  append(&payload, ForgetOne{.nodeid = 5, .nlookup = 2});
  BatchForgetIn two{.count = 2, .dummy = 0};
  EXPECT_FALSE(read_forgets(two, payload).has_value());
  BatchForgetIn one{.count = 1, .dummy = 0};
  auto forgets = read_forgets(one, payload);
  ASSERT_TRUE(forgets.has_value());
  EXPECT_EQ((*forgets)[0].nodeid, 5u);
}

TEST(FuseCodec, OpInSizesMatchTheKernelStructs) {
  EXPECT_EQ(op_in_size(static_cast<uint32_t>(Opcode::kSetattr), 45), 88u);
  EXPECT_EQ(op_in_size(static_cast<uint32_t>(Opcode::kWrite), 45), 40u);
  EXPECT_EQ(op_in_size(static_cast<uint32_t>(Opcode::kLookup), 45), 0u);
  EXPECT_EQ(op_in_size(static_cast<uint32_t>(Opcode::kRename2), 45), 16u);
  EXPECT_EQ(op_in_size(9999, 45), 0u);
}

TEST(FuseCodec, AttrCarriesTypeModeTimesAndDevice) {
  meta::Inode inode;
  inode.id = meta::make_inode_id(3, 9);
  inode.type = meta::InodeType::kCharDevice;
  inode.mode = 0640;
  inode.nlink = 1;
  inode.mtime_ns = 1'700'000'000'123'456'789;
  inode.rdev = makedev(4, 300);
  inode.length = 1000;
  Attr attr = to_attr(inode);
  EXPECT_EQ(attr.ino, inode.id);
  EXPECT_EQ(attr.mode, S_IFCHR | 0640u);
  EXPECT_EQ(attr.mtime, 1'700'000'000u);
  EXPECT_EQ(attr.mtimensec, 123'456'789u);
  EXPECT_EQ(attr.blocks, 2u);
  EXPECT_EQ(rdev_from_kernel(attr.rdev), inode.rdev);
  EXPECT_EQ(to_attr(inode, 5000).size, 5000u);
}

TEST(FuseCodec, TheRootIsNodeOne) {
  EXPECT_EQ(to_nodeid(meta::kRootInode), kRootId);
  EXPECT_EQ(to_inode(kRootId), meta::kRootInode);
  EXPECT_EQ(to_inode(to_nodeid(meta::make_inode_id(2, 5))), meta::make_inode_id(2, 5));
}

TEST(FuseCodec, EntryAndNegativeEntryCarryTheirTimeouts) {
  CacheTimes times{.entry_ns = 1'500'000'000, .attr_ns = 2'000'000'000, .negative_ns = 250};
  meta::Inode inode;
  inode.id = 77;
  EntryOut e = make_entry_out(inode, times);
  EXPECT_EQ(e.nodeid, 77u);
  EXPECT_EQ(e.entry_valid, 1u);
  EXPECT_EQ(e.entry_valid_nsec, 500'000'000u);
  EXPECT_EQ(e.attr_valid, 2u);
  EntryOut negative = make_negative_entry(times);
  EXPECT_EQ(negative.nodeid, 0u);
  EXPECT_EQ(negative.entry_valid_nsec, 250u);
}

TEST(FuseCodec, DirentPagesAreAlignedAndStopWhenFull) {
  std::vector<std::byte> area(64);
  DirentWriter writer(area, area.size(), false);
  EXPECT_TRUE(writer.add("a", 10, 8, 1));        // 24 + 1 -> 32 bytes
  EXPECT_TRUE(writer.add("bcdefgh", 11, 8, 2));  // 24 + 7 -> 32 bytes
  EXPECT_FALSE(writer.add("c", 12, 8, 3));       // no room: nothing written
  EXPECT_EQ(writer.entries(), 2u);
  ASSERT_EQ(writer.bytes().size(), 64u);
  Dirent second;
  std::memcpy(&second, area.data() + 32, sizeof(second));
  EXPECT_EQ(second.ino, 11u);
  EXPECT_EQ(second.off, 2u);
  EXPECT_EQ(second.namelen, 7u);
}

TEST(FuseCodec, DirentplusRecordsHoldTheirEntry) {
  std::vector<std::byte> area(4096);
  DirentWriter writer(area, 200, true);  // the kernel's size bounds the page
  EntryOut entry{};
  entry.nodeid = 99;
  EXPECT_TRUE(writer.add("x", 99, 8, 1, &entry));  // 152 + 1 -> 160
  EXPECT_FALSE(writer.add("y", 100, 8, 2, &entry));
  Direntplus record;
  std::memcpy(&record, area.data(), sizeof(record));
  EXPECT_EQ(record.entry_out.nodeid, 99u);
  EXPECT_EQ(record.dirent.namelen, 1u);
  EXPECT_EQ(writer.bytes().size(), dirent_align(sizeof(Direntplus) + 1));
}

TEST(FuseCodec, InvalEntryNotificationIsWholeAndNulEnded) {
  std::vector<std::byte> out(128);
  std::span<const std::byte> message = build_inval_entry(out, 5, "name");
  ASSERT_EQ(message.size(), sizeof(OutHeader) + sizeof(NotifyInvalEntryOut) + 5);
  OutHeader h;
  std::memcpy(&h, message.data(), sizeof(h));
  EXPECT_EQ(h.unique, 0u);
  EXPECT_EQ(h.error, static_cast<int32_t>(NotifyCode::kInvalEntry));
  EXPECT_EQ(h.len, message.size());
  EXPECT_EQ(message.back(), std::byte{0});
  std::vector<std::byte> small(20);
  EXPECT_TRUE(build_inval_entry(small, 5, "name").empty());
}

TEST(FuseCodec, StatfsReportsBlocksInItsBlockSize) {
  meta::StatfsReply reply{.total_bytes = 1 << 30,
                          .free_bytes = 1 << 29,
                          .inodes = 10,
                          .block_size = 4096,
                          .name_max = 255};
  StatfsOut out = make_statfs_out(reply);
  EXPECT_EQ(out.st.bsize, 4096u);
  EXPECT_EQ(out.st.blocks, (1u << 30) / 4096);
  EXPECT_EQ(out.st.bfree, (1u << 29) / 4096);
  EXPECT_EQ(out.st.namelen, 255u);
}

}  // namespace
}  // namespace mica::fuse
