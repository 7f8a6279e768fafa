#include "craq/mgmtd_client.h"

namespace mica::craq {

bool is_mgmtd_unreachable(StatusCode code) {
  return is_transport_failure(code) || code == StatusCode::kBusy ||
         code == StatusCode::kProtocolError;
}

MgmtdClient::MgmtdClient(net::ConnectionPool* pool, std::vector<SocketAddress> addresses)
    : pool_(pool), addresses_(std::move(addresses)) {
  MICA_ASSERT_MSG(!addresses_.empty(), "an mgmtd client needs at least one address");
}

void MgmtdClient::failed(size_t index, const Status& why) {
  if (index != current_ || addresses_.size() == 1) return;
  current_ = (current_ + 1) % addresses_.size();
  MICA_LOG(Info, "craq", "mgmtd {} failed ({}); trying {} next", addresses_[index].to_string(),
           why.to_string(), addresses_[current_].to_string());
}

}  // namespace mica::craq
