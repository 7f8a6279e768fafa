// The journaled store's merged cursor (kv/journal_delta.h).
#include "kv/journal_delta.h"

namespace mica::kv {
namespace {

using BaseEntry = lmdb::Cursor::Entry;

class MergedCursor final : public Cursor {
 public:
  MergedCursor(lmdb::Cursor base, const Delta* delta) : base_(std::move(base)), delta_(delta) {}

  Result<std::optional<Entry>> seek(std::string_view key) override {
    return forward(std::string(key), false);
  }
  Result<std::optional<Entry>> first() override { return forward(std::string(), false); }
  Result<std::optional<Entry>> next() override {
    if (!at_) return std::optional<Entry>();
    return forward(*at_, true);
  }
  Result<std::optional<Entry>> last() override { return backward(std::nullopt); }
  Result<std::optional<Entry>> prev() override { return backward(at_); }

 private:
  bool hidden(std::string_view key) const {
    auto it = delta_->find(key);
    return it != delta_->end() && !it->second.value;
  }

  // The first entry with key >= from (> from when after).
  Result<std::optional<Entry>> forward(std::string from, bool after) {
    Result<std::optional<BaseEntry>> b = std::optional<BaseEntry>();
    if (after && forward_run_ && at_ && *at_ == from) {
      b = base_at_;  // the base cursor sits at the first base key >= from
      if (*b && (**b).first == from) b = base_.next();
    } else {
      b = from.empty() ? base_.first() : base_.seek(from);  // LMDB takes no empty key
      if (b.ok() && after && *b && (**b).first == from) b = base_.next();
    }
    while (b.ok() && *b && hidden((**b).first)) b = base_.next();
    if (!b.ok()) return b.status();
    base_at_ = *b;
    forward_run_ = true;
    auto d = after ? delta_->upper_bound(from) : delta_->lower_bound(from);
    while (d != delta_->end() && !d->second.value) ++d;
    return land(*b, d == delta_->end() ? nullptr : &*d, /*smaller=*/true);
  }

  // The last entry with key < before (the last of all when there is no before).
  Result<std::optional<Entry>> backward(const std::optional<std::string>& before) {
    forward_run_ = false;
    Result<std::optional<BaseEntry>> b = std::optional<BaseEntry>();
    if (before) {
      b = base_.seek(*before);
      if (b.ok()) b = *b ? base_.prev() : base_.last();
    } else {
      b = base_.last();
    }
    while (b.ok() && *b && hidden((**b).first)) b = base_.prev();
    if (!b.ok()) return b.status();
    auto d = before ? delta_->lower_bound(*before) : delta_->end();
    const Delta::value_type* from_delta = nullptr;
    while (d != delta_->begin()) {
      --d;
      if (d->second.value) {
        from_delta = &*d;
        break;
      }
    }
    return land(*b, from_delta, /*smaller=*/false);
  }

  // Lands on the nearer of the base and delta candidates (smaller key going forward, larger
  // going back); the delta's wins a tie.
  Result<std::optional<Entry>> land(const std::optional<BaseEntry>& b, const Delta::value_type* d,
                                    bool smaller) {
    bool take_delta = d != nullptr && (!b || d->first == b->first ||
                                       (smaller ? d->first < b->first : d->first > b->first));
    if (take_delta) {
      at_ = d->first;
      return std::optional<Entry>(Entry{d->first, *d->second.value});
    }
    if (!b) {
      at_.reset();
      return std::optional<Entry>();
    }
    at_ = std::string(b->first);
    return std::optional<Entry>(Entry{b->first, b->second});
  }

  lmdb::Cursor base_;
  const Delta* delta_;
  std::optional<std::string> at_;  // the key landed on; nullopt: past the end
  std::optional<BaseEntry> base_at_;
  bool forward_run_ = false;  // base_at_ is where the base cursor sits
};

}  // namespace

std::unique_ptr<Cursor> merged_cursor(lmdb::Cursor base, const Delta* delta) {
  return std::make_unique<MergedCursor>(std::move(base), delta);
}

}  // namespace mica::kv
