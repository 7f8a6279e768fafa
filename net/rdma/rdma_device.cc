#include "net/rdma/rdma_device.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

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
  if (recv_budget_bytes_max < frame_bytes_max || transport_recv_budget_bytes_max < frame_bytes_max)
    return bad("receive budgets must hold the largest frame");
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

uint32_t rdma_send_wrs(const RdmaConfig& c) {
  // Frame fragments, one-sided WRs, credit acks and the close notice.
  return c.send_slots_max + c.bulk_wrs_in_flight_max + c.ack_recv_slots_max + 1;
}

uint32_t rdma_recv_wrs(const RdmaConfig& c) {
  return c.recv_slots_max + c.ack_recv_slots_max;
}

namespace {

bool is_zero(const ibv_gid& gid) {
  for (uint8_t b : gid.raw)
    if (b != 0) return false;
  return true;
}

bool is_ipv4_mapped(const ibv_gid& gid) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(gid.raw, kPrefix, sizeof kPrefix) == 0;
}

// Shrinks one of the values a queue is made of by one; false when all are at their floor.
bool shrink_one(std::initializer_list<std::pair<uint32_t*, uint32_t>> in_order) {
  for (auto [value, floor] : in_order) {
    if (*value > floor) {
      --*value;
      return true;
    }
  }
  return false;
}

// The GID type of one entry: ibv_query_gid_ex where libibverbs has it (v34+), else the
// kernel's sysfs file, which older libraries read themselves.
Result<GidEntry> query_gid_entry(ibv_context* context, uint8_t port, uint32_t index) {
  GidEntry entry;
  entry.index = index;
  ibv_gid_entry ex{};
  int rc = ibv_query_gid_ex(context, port, index, &ex, 0);
  if (rc == 0) {
    entry.gid = ex.gid;
    entry.type = static_cast<ibv_gid_type>(ex.gid_type);
    return entry;
  }
  if (rc == ENODATA) return entry;  // an empty slot: all-zero GID
  if (ibv_query_gid(context, port, static_cast<int>(index), &entry.gid) != 0)
    return Status(StatusCode::kInvalidArgument, fmt::format("no GID {}", index));
  std::string path = fmt::format("/sys/class/infiniband/{}/ports/{}/gid_attrs/types/{}",
                                 ibv_get_device_name(context->device), port, index);
  std::ifstream file(path);
  std::string text;
  std::getline(file, text);
  // "IB/RoCE v1" or "RoCE v2"; unreadable: assume v1, which is never preferred.
  entry.type = text.find("v2") != std::string::npos ? IBV_GID_TYPE_ROCE_V2 : IBV_GID_TYPE_ROCE_V1;
  return entry;
}

}  // namespace

Result<uint32_t> choose_roce_gid(std::span<const GidEntry> table) {
  const GidEntry* best = nullptr;
  int best_rank = 0;
  for (const GidEntry& e : table) {
    if (is_zero(e.gid)) continue;
    int rank = e.type == IBV_GID_TYPE_ROCE_V2   ? (is_ipv4_mapped(e.gid) ? 3 : 2)
               : e.type == IBV_GID_TYPE_ROCE_V1 ? 1
                                                : 0;
    if (rank > best_rank) {
      best = &e;
      best_rank = rank;
    }
  }
  if (best == nullptr) return Status(StatusCode::kNotFound, "no RoCE GID in the table");
  return best->index;
}

Result<RdmaConfig> clamp_to_device(RdmaConfig c, const DeviceLimits& limits) {
  auto unfit = [](const char* what) {
    return Status(StatusCode::kNotSupported, fmt::format("device too small: {}", what));
  };
  if (limits.max_sge < 1) return unfit("no scatter/gather entry");
  // Each ack or close notice needs a receive and a send entry: that reserve stays whole.
  while (rdma_recv_wrs(c) > limits.max_qp_wr)
    if (!shrink_one({{&c.recv_slots_max, 1}})) return unfit("max_qp_wr (receives)");
  while (rdma_send_wrs(c) > limits.max_qp_wr)
    if (!shrink_one({{&c.bulk_wrs_in_flight_max, 1}, {&c.send_slots_max, 1}}))
      return unfit("max_qp_wr (sends)");
  // One CQ takes every completion of both queues.
  while (uint64_t(rdma_send_wrs(c)) + rdma_recv_wrs(c) > limits.max_cqe)
    if (!shrink_one(
            {{&c.bulk_wrs_in_flight_max, 1}, {&c.send_slots_max, 1}, {&c.recv_slots_max, 1}}))
      return unfit("max_cqe");
  c.bulk_wrs_per_post_max = std::min(c.bulk_wrs_per_post_max, c.bulk_wrs_in_flight_max);
  c.credit_batch_max = std::min(c.credit_batch_max, c.recv_slots_max);
  uint32_t rd_atomic = std::min(limits.max_qp_rd_atom, limits.max_qp_init_rd_atom);
  c.rd_atomic_max = static_cast<uint8_t>(std::min<uint32_t>(c.rd_atomic_max, rd_atomic));
  if (limits.max_msg_bytes != 0) {
    c.bulk_wr_bytes_max = std::min(c.bulk_wr_bytes_max, limits.max_msg_bytes);
    if (c.slot_bytes > limits.max_msg_bytes) return unfit("max_msg_sz below slot_bytes");
  }
  uint64_t ring_bytes = uint64_t(c.send_slots_max + rdma_recv_wrs(c)) * c.slot_bytes +
                        uint64_t(c.bounce_buffers_max) * c.bounce_buffer_bytes;
  if (ring_bytes > limits.max_mr_size) return unfit("max_mr_size below the rings");
  RETURN_IF_ERROR(c.validate());
  return c;
}

Result<std::shared_ptr<RdmaDevice>> RdmaDevice::open(ibv_context* context, bool owns_context,
                                                     const RdmaConfig& config) {
  RETURN_IF_ERROR(config.validate());
  std::shared_ptr<RdmaDevice> device(new RdmaDevice);
  device->context_ = context;
  device->owns_context_ = owns_context;
  ibv_device_attr attr{};
  if (int rc = ibv_query_device(context, &attr); rc != 0)
    return Status::from_errno(rc, "ibv_query_device");
  device->limits_ = DeviceLimits{static_cast<uint32_t>(attr.max_qp_wr),
                                 static_cast<uint32_t>(attr.max_sge),
                                 static_cast<uint32_t>(attr.max_cqe),
                                 attr.max_mr_size,
                                 static_cast<uint32_t>(attr.max_qp_rd_atom),
                                 static_cast<uint32_t>(attr.max_qp_init_rd_atom),
                                 0};
  uint8_t wanted = config.port_num;
  if (wanted == 0) {
    for (uint8_t p = 1; p <= attr.phys_port_cnt && wanted == 0; ++p) {
      ibv_port_attr port{};
      if (ibv_query_port(context, p, &port) == 0 && port.state == IBV_PORT_ACTIVE) wanted = p;
    }
    if (wanted == 0)
      return Status(StatusCode::kUnreachable,
                    fmt::format("no active port on {}", ibv_get_device_name(context->device)));
  }
  device->config_ = config;
  RETURN_IF_ERROR(device->pick_port(wanted));
  Result<RdmaConfig> clamped = clamp_to_device(config, device->limits_);
  if (!clamped.ok()) return clamped.status();
  device->config_ = *clamped;
  device->recv_budget_ = std::make_unique<ByteBudget>(clamped->transport_recv_budget_bytes_max);
  // The runtime polls the async fd; ibv_get_async_event must then never block.
  int flags = fcntl(context->async_fd, F_GETFL);
  if (flags < 0 || fcntl(context->async_fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return Status::from_errno(errno, "fcntl(async fd)");
  device->pd_ = ibv_alloc_pd(context);
  if (device->pd_ == nullptr) return Status::from_errno(errno ? errno : ENOMEM, "ibv_alloc_pd");
  return device;
}

Status RdmaDevice::pick_port(uint8_t wanted) {
  ibv_port_attr port{};
  if (int rc = ibv_query_port(context_, wanted, &port); rc != 0)
    return Status::from_errno(rc, "ibv_query_port");
  if (port.state != IBV_PORT_ACTIVE)
    return Status(StatusCode::kUnreachable, fmt::format("port {} is not active", wanted));
  port_num_ = wanted;
  // Old drivers report "unspecified" for InfiniBand.
  link_layer_ = port.link_layer == IBV_LINK_LAYER_ETHERNET ? IBV_LINK_LAYER_ETHERNET
                                                           : IBV_LINK_LAYER_INFINIBAND;
  lid_ = port.lid;
  active_mtu_ = port.active_mtu;
  limits_.max_msg_bytes = port.max_msg_sz;
  return pick_gid(config_.gid_index, port.gid_tbl_len);
}

Status RdmaDevice::pick_gid(int32_t wanted, int table_length) {
  if (wanted < 0 && link_layer_ == IBV_LINK_LAYER_INFINIBAND) return Status();  // LID routes
  std::vector<GidEntry> table;
  for (int i = 0; i < table_length; ++i) {
    if (wanted >= 0 && i != wanted) continue;
    Result<GidEntry> entry = query_gid_entry(context_, port_num_, static_cast<uint32_t>(i));
    if (entry.ok()) table.push_back(*entry);
  }
  uint32_t index = 0;
  if (wanted >= 0) {
    if (table.empty() || is_zero(table[0].gid))
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("port {} has no GID {}", port_num_, wanted));
    index = static_cast<uint32_t>(wanted);
  } else {
    Result<uint32_t> chosen = choose_roce_gid(table);
    if (!chosen.ok())
      return Status(StatusCode::kUnreachable, std::string(chosen.status().message()));
    index = *chosen;
  }
  for (const GidEntry& e : table) {
    if (e.index != index) continue;
    gid_ = e.gid;
    gid_type_ = e.type;
  }
  gid_index_ = static_cast<int32_t>(index);
  return Status();
}

RdmaDevice::~RdmaDevice() {
  MICA_ASSERT_MSG(regions_.empty(), "RDMA device destroyed with registered memory");
  MICA_ASSERT_MSG(sinks_.empty(), "RDMA device destroyed with connections attached");
  if (pd_ != nullptr) MICA_ASSERT(ibv_dealloc_pd(pd_) == 0);
  if (owns_context_) ibv_close_device(context_);
}

void RdmaDevice::detach(RdmaEventSink* sink) {
  sinks_.erase(std::remove(sinks_.begin(), sinks_.end(), sink), sinks_.end());
  budget_waiters_.erase(std::remove(budget_waiters_.begin(), budget_waiters_.end(), sink),
                        budget_waiters_.end());
}

void RdmaDevice::wait_for_budget(RdmaEventSink* sink) {
  if (std::find(budget_waiters_.begin(), budget_waiters_.end(), sink) == budget_waiters_.end())
    budget_waiters_.push_back(sink);
}

void RdmaDevice::budget_released() {
  // Each retries; one still short registers again. Oldest first, so nobody starves.
  std::vector<RdmaEventSink*> waiting = std::move(budget_waiters_);
  budget_waiters_.clear();
  for (RdmaEventSink* sink : waiting) sink->on_budget_released();
}

void RdmaDevice::fail_sinks(const Status& why, ibv_qp* qp, ibv_cq* cq) {
  // fail() never detaches, so the list is stable while we walk it.
  for (RdmaEventSink* sink : sinks_)
    if ((qp == nullptr && cq == nullptr) || sink->event_qp() == qp || sink->event_cq() == cq)
      sink->on_device_failure(why);
}

void RdmaDevice::take_async_events() {
  ibv_async_event event{};
  while (ibv_get_async_event(context_, &event) == 0) {
    // Copied out first: the event must be acknowledged even when acting on it fails, and
    // destroying a QP waits for its events' acknowledgements.
    ibv_async_event copy = event;
    ibv_ack_async_event(&event);
    const char* name = ibv_event_type_str(copy.event_type);
    switch (copy.event_type) {
      case IBV_EVENT_PORT_ERR:
        if (copy.element.port_num == port_num_)
          fail_sinks(Status(StatusCode::kConnectionReset,
                            fmt::format("RDMA port {} went down", port_num_)),
                     nullptr, nullptr);
        break;
      case IBV_EVENT_DEVICE_FATAL:
        fatal_ = true;
        fail_sinks(Status(StatusCode::kConnectionReset, "RDMA device fatal error"), nullptr,
                   nullptr);
        break;
      case IBV_EVENT_QP_FATAL:
      case IBV_EVENT_QP_REQ_ERR:
      case IBV_EVENT_QP_ACCESS_ERR:
      case IBV_EVENT_PATH_MIG_ERR:
        fail_sinks(Status(StatusCode::kConnectionReset, fmt::format("QP event: {}", name)),
                   copy.element.qp, nullptr);
        break;
      case IBV_EVENT_CQ_ERR:
        fail_sinks(Status(StatusCode::kConnectionReset, fmt::format("CQ event: {}", name)), nullptr,
                   copy.element.cq);
        break;
      default:
        break;  // port active, LID/GID/PKey changes, COMM_EST, ...: nothing to fail
    }
  }
}

Status RdmaDevice::usable() {
  take_async_events();
  if (fatal_) return Status(StatusCode::kUnreachable, "RDMA device had a fatal error");
  ibv_port_attr port{};
  if (int rc = ibv_query_port(context_, port_num_, &port); rc != 0)
    return Status::from_errno(rc, "ibv_query_port");
  if (port.state != IBV_PORT_ACTIVE)
    return Status(StatusCode::kUnreachable, fmt::format("RDMA port {} is down", port_num_));
  return Status();
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
