// End-to-end checksums: a write carries the writer's CRC32C of its payload and the engine
// refuses bytes that do not match it (kChecksumMismatch, nothing changes); a read can return
// the CRC of what it returns. The transport test damages a payload in transit with the TCP
// transport's fault hook and checks that the engine, not the connection, catches it.
#include <cstring>

#include "async/crc32c.h"
#include "async/sim/world.h"
#include "net/rpc_client.h"
#include "net/rpc_server.h"
#include "net/service_def.h"
#include "net/tcp_transport.h"
#include "tests/chunk/test_util.h"

namespace mica::chunk {
namespace {

using namespace mica::chunk::testing;
using namespace std::chrono_literals;
constexpr ChunkId kId{9, 1};

// What must not change when a write is refused: the record, the data and the slot usage.
struct Snapshot {
  ChunkInfo info;
  std::vector<std::byte> content;
  uint64_t used_slot_bytes = 0;
};

Task<Snapshot> snapshot(ChunkEngine* engine) {
  Snapshot s;
  Result<ChunkInfo> info = engine->stat(kId);
  EXPECT_TRUE(info.ok()) << info.status();
  if (info.ok()) s.info = *info;
  auto reading = read_all(engine, kId);
  Result<std::vector<std::byte>> content = co_await std::move(reading);
  EXPECT_TRUE(content.ok()) << content.status();
  if (content.ok()) s.content = std::move(*content);
  s.used_slot_bytes = engine->space().used_slot_bytes;
  co_return s;
}

Task<void> expect_unchanged(ChunkEngine* engine, const Snapshot* before, std::string what) {
  auto taking = snapshot(engine);
  Snapshot after = co_await std::move(taking);
  EXPECT_EQ(after.info, before->info) << what;
  EXPECT_TRUE(after.content == before->content) << what;
  EXPECT_EQ(after.used_slot_bytes, before->used_slot_bytes) << what;
  auto checking = engine->fsck();
  Result<FsckReport> report = co_await std::move(checking);
  EXPECT_TRUE(report.ok() && report->ok()) << what << ": " << report->to_string();
}

// Each kind of update that carries data, given a CRC one bit off: refused, nothing changes.
Task<void> wrong_crcs_refused(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto creating = write_committed(engine.get(), kId, 0, pattern(100000, 1), 1);
  EXPECT_TRUE((co_await std::move(creating)).ok());
  auto taking = snapshot(engine.get());
  Snapshot before = co_await std::move(taking);
  std::vector<std::byte> patch = pattern(5000, 2);  // unaligned: built in a buffer
  AlignedBuffer whole(64 << 10);                    // aligned full write: written as it is
  std::memcpy(whole.data(), pattern(whole.size(), 3).data(), whole.size());
  uint32_t patch_bad = crc32c(bytes_of(patch)) ^ 1;
  uint32_t whole_bad = crc32c(whole.span()) ^ 1;

  auto partial = engine->write(kId, 7000, bytes_of(patch), patch_bad, {2, 1});
  Result<ChunkInfo> r = co_await std::move(partial);
  EXPECT_EQ(r.status().code(), StatusCode::kChecksumMismatch) << r.status();
  auto waiting = expect_unchanged(engine.get(), &before, "partial write");
  co_await std::move(waiting);
  auto full = engine->write(kId, 0, whole.span(), whole_bad, {2, 1});
  r = co_await std::move(full);
  EXPECT_EQ(r.status().code(), StatusCode::kChecksumMismatch) << r.status();
  waiting = expect_unchanged(engine.get(), &before, "aligned full write");
  co_await std::move(waiting);
  auto both = engine->write_and_commit(kId, 4096, bytes_of(patch), patch_bad, {2, 1});
  r = co_await std::move(both);
  EXPECT_EQ(r.status().code(), StatusCode::kChecksumMismatch) << r.status();
  waiting = expect_unchanged(engine.get(), &before, "write_and_commit");
  co_await std::move(waiting);
  auto replacing = engine->replace(kId, whole.span(), whole_bad, {5, 2});
  r = co_await std::move(replacing);
  EXPECT_EQ(r.status().code(), StatusCode::kChecksumMismatch) << r.status();
  waiting = expect_unchanged(engine.get(), &before, "replace");
  co_await std::move(waiting);
  EXPECT_EQ(engine->counters().payload_checksum_mismatches, 4u);
  // The same bytes with their true CRC are taken.
  auto good = engine->write(kId, 7000, bytes_of(patch), patch_bad ^ 1, {2, 1});
  r = co_await std::move(good);
  EXPECT_TRUE(r.ok()) << r.status();
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkChecksum, AWriteWhoseBytesDoNotMatchTheWritersCrcIsRefusedAndChangesNothing) {
  TempDir dir;
  run_on_executor(wrong_crcs_refused(dir.path()));
}

Task<void> read_crcs(std::string dir) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  std::vector<std::byte> data = pattern(3 * 4096 + 1234, 4);
  auto creating = write_committed(engine.get(), kId, 0, data, 1);
  EXPECT_TRUE((co_await std::move(creating)).ok());
  AlignedBuffer out(4 * 4096);
  // Aligned (read in place), unaligned, past the end (short), inside one block.
  for (auto [offset, size] : {std::pair<uint32_t, uint32_t>{0, 4 * 4096},
                              {4096, 8192},
                              {100, 9000},
                              {5000, 20000},
                              {13000, 10}}) {
    auto reading = engine->read_with_crc(kId, offset, out.span().first(size));
    Result<ReadResult> got = co_await std::move(reading);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok()) continue;
    size_t expect = std::min<size_t>(size, data.size() - offset);
    EXPECT_EQ(got->bytes, expect) << offset;
    EXPECT_EQ(got->crc, crc32c(data.data() + offset, expect)) << offset << "+" << size;
    EXPECT_EQ(got->crc, crc32c(out.data(), got->bytes)) << offset << "+" << size;
  }
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}
TEST(ChunkChecksum, ReadWithCrcReturnsTheCrcOfTheBytesItReturns) {
  TempDir dir;
  run_on_executor(read_crcs(dir.path()));
}

// A minimal storage write service: the handler pulls the caller's payload with read_from
// and writes it into a real engine with the caller's CRC, as the storage service will.
struct WriteRequest {
  net::RemoteBuffer payload;
  uint32_t payload_crc = 0;
  uint32_t version = 0;
  MICA_FIELDS(WriteRequest, payload, payload_crc, version)
};
struct WriteResponse {
  uint32_t checksum = 0;
  MICA_FIELDS(WriteResponse, checksum)
};
struct StorageWriteApi {
  static constexpr net::ServiceId kId = 40;
  static constexpr net::Method<kId, 1, WriteRequest, WriteResponse> write{};
  MICA_SERVICE(StorageWriteApi, "storage-write", write)
};

class WriteService {
 public:
  explicit WriteService(ChunkEngine* engine) : engine_(engine) {}
  net::Service& service() { return service_; }

  Task<Result<WriteResponse>> write(WriteRequest request, net::CallContext* context) {
    AlignedBuffer data(request.payload.length);
    auto pulling = context->connection->read_from(request.payload, data.span(), context->deadline);
    CO_TRY(co_await std::move(pulling));
    auto writing =
        engine_->write_and_commit(kId, 0, data.span(), request.payload_crc, {request.version, 1});
    CO_TRY_ASSIGN(ChunkInfo info, co_await std::move(writing));
    co_return WriteResponse{info.checksum};
  }

 private:
  ChunkEngine* engine_;
  net::Service service_ = net::Service::bind<StorageWriteApi>(this);
};

struct Fault {
  int fired = 0;
};

Task<void> damaged_in_transit(std::string dir, net::TcpTransport* server_transport,
                              net::TcpTransport* client_transport, Fault* fault) {
  auto opening = open_engine(dir);
  auto engine = co_await std::move(opening);
  if (!engine) co_return;
  auto creating = write_committed(engine.get(), kId, 0, pattern(64 << 10, 5), 1);
  EXPECT_TRUE((co_await std::move(creating)).ok());
  auto taking = snapshot(engine.get());
  Snapshot before = co_await std::move(taking);

  WriteService service(engine.get());
  net::RpcServer server(server_transport, {});
  server.add_service(&service.service());
  Result<SocketAddress> address = server.start(SocketAddress::loopback(0));
  EXPECT_TRUE(address.ok()) << address.status();
  auto connecting = net::RpcClient::connect(client_transport, *address, deadline_after(5s));
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(connecting);
  EXPECT_TRUE(client.ok()) << client.status();
  if (client.ok()) {
    std::vector<std::byte> payload = pattern(256 << 10, 6);
    auto region = client_transport->register_memory(std::span(payload));
    EXPECT_TRUE(region.ok());
    WriteRequest request{(*region)->remote(0, static_cast<uint32_t>(payload.size())),
                         crc32c(bytes_of(payload)), 2};
    auto calling = (*client)->call<StorageWriteApi::write>(request, {});
    Result<WriteResponse> written = co_await std::move(calling);
    EXPECT_EQ(fault->fired, 1) << "the fault hook did not see the payload";
    EXPECT_EQ(written.status().code(), StatusCode::kChecksumMismatch) << written.status();
    EXPECT_TRUE((*client)->healthy()) << "the damage must be refused, not end the connection";
    auto waiting = expect_unchanged(engine.get(), &before, "write damaged in transit");
    co_await std::move(waiting);
    // The connection still works: the same write, undamaged this time, is stored.
    fault->fired = -1;  // disarmed
    auto again = (*client)->call<StorageWriteApi::write>(request, {});
    Result<WriteResponse> stored = co_await std::move(again);
    EXPECT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored.ok() ? stored->checksum : 0, request.payload_crc);
    region->reset();
    co_await (*client)->close();
  }
  co_await server.shutdown();
  auto closing = close_engine(std::move(engine));
  co_await std::move(closing);
}

TEST(ChunkChecksum, APayloadDamagedInTransitIsRefusedByTheEngineAndChangesNothing) {
  TempDir dir;
  Fault fault;
  net::TcpTransportOptions options;
  // Flips one byte in the middle of each payload the server pulls, while armed.
  options.received_bulk_hook = [&fault](std::span<std::byte> bytes) {
    if (fault.fired < 0 || bytes.empty()) return;
    ++fault.fired;
    bytes[bytes.size() / 2 + 17] ^= std::byte{0x10};
  };
  net::TcpTransport server_transport(options);
  net::TcpTransport client_transport;
  run_on_executor(damaged_in_transit(dir.path(), &server_transport, &client_transport, &fault));
}

// The simulator runs the same TCP transport, so the same hook damages payloads there. The
// engine (LMDB, real files) does not run on simulated hosts; this service checks the
// writer's CRC over the bytes it pulled exactly as the engine does, before storing anything.
class VerifyService {
 public:
  VerifyService() = default;
  net::Service& service() { return service_; }

  Task<Result<WriteResponse>> write(WriteRequest request, net::CallContext* context) {
    std::vector<std::byte> data(request.payload.length);
    auto pulling = context->connection->read_from(request.payload, data, context->deadline);
    CO_TRY(co_await std::move(pulling));
    if (crc32c(bytes_of(data)) != request.payload_crc)
      co_return Status(StatusCode::kChecksumMismatch, "payload damaged in transit");
    co_return WriteResponse{request.payload_crc};
  }

 private:
  net::Service service_ = net::Service::bind<StorageWriteApi>(this);
};

struct SimServer {
  net::TcpTransport* transport;
  VerifyService service;
  std::unique_ptr<net::RpcServer> server;
};

Task<void> sim_start(SimServer* s, SocketAddress address) {
  s->server = std::make_unique<net::RpcServer>(s->transport, net::RpcServerOptions{});
  s->server->add_service(&s->service.service());
  EXPECT_TRUE(s->server->start(address).ok());
  co_return;
}

Task<void> sim_stop(SimServer* s) {
  co_await s->server->shutdown();
}

Task<void> sim_client(net::TcpTransport* transport, SocketAddress address, Status* result) {
  auto connecting = net::RpcClient::connect(transport, address, deadline_after(5s));
  Result<std::shared_ptr<net::RpcClient>> client = co_await std::move(connecting);
  EXPECT_TRUE(client.ok()) << client.status();
  if (!client.ok()) co_return;
  std::vector<std::byte> payload = pattern(100 << 10, 7);
  auto region = transport->register_memory(std::span(payload));
  EXPECT_TRUE(region.ok());
  WriteRequest request{(*region)->remote(0, static_cast<uint32_t>(payload.size())),
                       crc32c(bytes_of(payload)), 1};
  auto calling = (*client)->call<StorageWriteApi::write>(request, {});
  *result = (co_await std::move(calling)).status();
  EXPECT_TRUE((*client)->healthy());
  region->reset();
  co_await (*client)->close();
}

TEST(ChunkChecksum, TheTransitFaultHookDamagesPayloadsOnTheSimulatorToo) {
  uint64_t seed = sim::sim_seed(8);
  SCOPED_TRACE(fmt::format("simulation seed={} (replay: MICA_SIM_SEED={})", seed, seed));
  sim::SimWorld world(seed);
  sim::SimHost& server_host = world.add_host("server");
  sim::SimHost& client_host = world.add_host("client");
  int fired = 0;
  net::TcpTransportOptions options;
  options.received_bulk_hook = [&fired](std::span<std::byte> bytes) {
    ++fired;
    bytes[bytes.size() / 3] ^= std::byte{0x01};
  };
  net::TcpTransport server_transport(options);
  net::TcpTransport client_transport;
  SimServer server{&server_transport, {}, nullptr};
  SocketAddress address = server_host.address(7000);
  world.run(server_host, sim_start(&server, address));
  Status result;
  world.run(client_host, sim_client(&client_transport, address, &result));
  world.run(server_host, sim_stop(&server));
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(result.code(), StatusCode::kChecksumMismatch) << result;
}

}  // namespace
}  // namespace mica::chunk
