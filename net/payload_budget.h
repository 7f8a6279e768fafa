// PayloadBudget and PayloadReservation: how many bytes of received frame payload a
// transport may hold before their consumer is done with them.
//
// A hostile peer can announce a 64 MiB frame in a 40-byte header and then send nothing:
// a receiver that allocated the payload up front would be exhausted by a few thousand such
// headers. So a transport reserves payload bytes from a budget as it grows a frame's buffer
// (as data arrives), and the reservation travels with the Frame until the frame is
// destroyed. Budgets nest: a connection's budget has the transport-wide one as parent, and
// a reservation takes its bytes from both. acquire() waits (FIFO, deadline and cancellation
// honoured) until the bytes fit, try_acquire() does not wait; reserved() and reserved_max()
// (the high-water mark) are what tests and metrics read. Bulk bytes of one-sided transfers land in
// memory that already exists (registered regions, the caller's buffer) and are not counted.
// Lifetime: a budget must outlive its reservations (a Frame does not outlive the connection
// that produced it). Thread rule: one executor, like the transport that owns the budget.
#pragma once

#include <algorithm>
#include <utility>

#include "async/sync.h"
#include "async/task.h"

namespace mica::net {

class PayloadBudget {
 public:
  explicit PayloadBudget(uint64_t bytes_max, PayloadBudget* parent = nullptr)
      : bytes_max_(bytes_max), parent_(parent), units_(bytes_max) {}
  PayloadBudget(const PayloadBudget&) = delete;
  PayloadBudget& operator=(const PayloadBudget&) = delete;
  ~PayloadBudget() {
    MICA_ASSERT_MSG(reserved() == 0, "a payload budget outlived by a reservation");
  }

  uint64_t bytes_max() const { return bytes_max_; }
  uint64_t reserved() const { return bytes_max_ - units_.available(); }
  uint64_t reserved_max() const { return reserved_max_; }

  // Reserves `bytes` here and in every parent, waiting until they fit; on failure
  // (deadline, cancellation) nothing stays reserved. bytes must not exceed any bytes_max.
  Task<Status> acquire(uint64_t bytes, TimePoint deadline) {
    MICA_ASSERT_MSG(bytes <= bytes_max_, "a reservation larger than its budget");
    Status got = co_await units_.acquire(bytes, deadline);
    if (!got.ok()) co_return got;
    if (parent_ != nullptr) {
      auto above = parent_->acquire(bytes, deadline);
      got = co_await std::move(above);
      if (!got.ok()) {
        units_.release(bytes);
        co_return got;
      }
    }
    reserved_max_ = std::max(reserved_max_, reserved());
    co_return Status();
  }
  // Reserves without waiting, for receive paths that cannot suspend (a completion poller
  // that holds back credits instead); false leaves nothing reserved.
  bool try_acquire(uint64_t bytes) {
    if (!units_.try_acquire(bytes)) return false;
    if (parent_ != nullptr && !parent_->try_acquire(bytes)) {
      units_.release(bytes);
      return false;
    }
    reserved_max_ = std::max(reserved_max_, reserved());
    return true;
  }
  void release(uint64_t bytes) {
    units_.release(bytes);
    if (parent_ != nullptr) parent_->release(bytes);
  }

 private:
  uint64_t bytes_max_;
  PayloadBudget* parent_;
  Semaphore units_;
  uint64_t reserved_max_ = 0;
};

// Bytes held from a budget; given back when the reservation is destroyed. Move-only.
class PayloadReservation {
 public:
  PayloadReservation() = default;
  PayloadReservation(PayloadBudget* budget, uint64_t bytes) : budget_(budget), bytes_(bytes) {}
  PayloadReservation(PayloadReservation&& other) noexcept
      : budget_(std::exchange(other.budget_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  PayloadReservation& operator=(PayloadReservation&& other) noexcept {
    if (this != &other) {
      reset();
      budget_ = std::exchange(other.budget_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  PayloadReservation(const PayloadReservation&) = delete;
  PayloadReservation& operator=(const PayloadReservation&) = delete;
  ~PayloadReservation() { reset(); }

  uint64_t bytes() const { return bytes_; }
  // Adds bytes acquired from the same budget.
  void add(PayloadBudget* budget, uint64_t bytes) {
    MICA_ASSERT(budget_ == nullptr || budget_ == budget);
    budget_ = budget;
    bytes_ += bytes;
  }
  void reset() {
    if (budget_ != nullptr && bytes_ > 0) budget_->release(bytes_);
    budget_ = nullptr;
    bytes_ = 0;
  }

 private:
  PayloadBudget* budget_ = nullptr;
  uint64_t bytes_ = 0;
};

}  // namespace mica::net
