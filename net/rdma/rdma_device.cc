#include "net/rdma/rdma_device.h"

#include <cerrno>

#include <fmt/format.h>

namespace mica::net {

Status RdmaConfig::validate() const {
  auto bad = [](const char* why) { return Status(StatusCode::kInvalidArgument, why); };
  if (slot_bytes < 2 * kFrameHeaderBytes) return bad("slot_bytes must hold two headers");
  if (send_slots_max == 0 || recv_slots_max == 0) return bad("rings need slots");
  if (recv_slots_max > 0xffffff) return bad("credits travel in 24 bits");
  if (ack_recv_slots_max < 2) return bad("ack_recv_slots_max must be at least 2");
  if (credit_batch_max == 0 || credit_batch_max > recv_slots_max)
    return bad("credit_batch_max must be in [1, recv_slots_max]");
  if (send_signal_batch_max == 0) return bad("send_signal_batch_max must be positive");
  if (frames_queued_max == 0 || frames_queued_bytes_max == 0)
    return bad("frames_queued_max and frames_queued_bytes_max must be positive");
  if (frame_bytes_max < kFrameHeaderBytes) return bad("frame_bytes_max below a header");
  if (bulk_wrs_per_post_max == 0 || bulk_wrs_per_post_max > bulk_wrs_in_flight_max)
    return bad("bulk_wrs_per_post_max must be in [1, bulk_wrs_in_flight_max]");
  if (bulk_wr_bytes_max == 0 || bounce_buffers_max == 0 || bounce_buffer_bytes == 0)
    return bad("bulk sizes must be positive");
  if (cq_poll_batch_max == 0 || cq_event_ack_batch_max == 0) return bad("batches must be > 0");
  if (rnr_retry_count > 7 || retry_count > 7) return bad("retry counts are 3-bit fields");
  return Status();
}

ibv_mtu mtu_from_bytes(uint32_t bytes) {
  if (bytes >= 4096) return IBV_MTU_4096;
  if (bytes >= 2048) return IBV_MTU_2048;
  if (bytes >= 1024) return IBV_MTU_1024;
  if (bytes >= 512) return IBV_MTU_512;
  return IBV_MTU_256;
}

uint32_t mtu_bytes(ibv_mtu mtu) {
  return 128u << static_cast<int>(mtu);
}

Result<std::shared_ptr<RdmaDevice>> RdmaDevice::open(ibv_context* context, bool owns_context,
                                                     const RdmaConfig& config) {
  RETURN_IF_ERROR(config.validate());
  std::shared_ptr<RdmaDevice> device(new RdmaDevice);
  device->context_ = context;
  device->owns_context_ = owns_context;
  ibv_port_attr port{};
  if (int rc = ibv_query_port(context, config.port_num, &port); rc != 0)
    return Status::from_errno(rc, "ibv_query_port");
  if (port.state != IBV_PORT_ACTIVE)
    return Status(StatusCode::kUnreachable, fmt::format("port {} is not active", config.port_num));
  device->lid_ = port.lid;
  device->active_mtu_ = port.active_mtu;
  if (config.gid_index >= 0 &&
      ibv_query_gid(context, config.port_num, config.gid_index, &device->gid_) != 0)
    return Status(StatusCode::kInvalidArgument, fmt::format("no GID {}", config.gid_index));
  device->pd_ = ibv_alloc_pd(context);
  if (device->pd_ == nullptr) return Status::from_errno(errno ? errno : ENOMEM, "ibv_alloc_pd");
  return device;
}

RdmaDevice::~RdmaDevice() {
  MICA_ASSERT_MSG(regions_.empty(), "RDMA device destroyed with registered memory");
  if (pd_ != nullptr) MICA_ASSERT(ibv_dealloc_pd(pd_) == 0);
  if (owns_context_) ibv_close_device(context_);
}

std::optional<uint32_t> RdmaDevice::find_lkey(const void* data, size_t size) const {
  auto start = reinterpret_cast<uintptr_t>(data);
  auto it = regions_.upper_bound(start);
  if (it == regions_.begin()) return std::nullopt;
  --it;
  if (start + size > it->first + it->second.size) return std::nullopt;
  return it->second.lkey;
}

void RdmaDevice::add_region(const void* data, size_t size, uint32_t lkey) {
  regions_[reinterpret_cast<uintptr_t>(data)] = Region{size, lkey};
}

void RdmaDevice::remove_region(const void* data) {
  regions_.erase(reinterpret_cast<uintptr_t>(data));
}

RdmaRegion::RdmaRegion(std::shared_ptr<RdmaDevice> device, std::span<std::byte> bytes, ibv_mr* mr)
    : device_(std::move(device)), bytes_(bytes), mr_(mr) {
  device_->add_region(bytes_.data(), bytes_.size(), mr_->lkey);
}

RdmaRegion::~RdmaRegion() {
  device_->remove_region(bytes_.data());
  MICA_ASSERT(ibv_dereg_mr(mr_) == 0);
}

RemoteBuffer RdmaRegion::remote(uint64_t offset, uint32_t length) {
  MICA_ASSERT_MSG(offset + length <= bytes_.size(), "remote() range outside the region");
  return RemoteBuffer{reinterpret_cast<uintptr_t>(bytes_.data()), offset, length, mr_->rkey};
}

}  // namespace mica::net
