// Client::read_batch and register_buffer (client/client.h). A batch's items are cut into
// chunk pieces within each file's known length (no metadata asked: a data loader reads
// files whose lengths it knows), all pieces go to craq::StorageClient::read_batch, which
// sends one batch_read per storage node, and each item's answer is put together from its
// pieces: the first failure, else its bytes with what storage lacks zeroed (holes).
#include <cstring>

#include "client/client.h"

namespace mica::client {

namespace {

// Which item and which part of its buffer a piece fills.
struct PieceOf {
  size_t item = 0;
  std::span<std::byte> out;
};

}  // namespace

Task<std::vector<Result<size_t>>> Client::read_batch(std::vector<BatchRead> reads,
                                                     CallOptions options) {
  TimePoint deadline = this->deadline(options);
  net::MemoryRegion* region = options.registered == nullptr ? nullptr
                                                            : options.registered->region();
  std::vector<std::optional<Result<size_t>>> results(reads.size());
  std::vector<craq::ChunkRead> chunk_reads;
  std::vector<PieceOf> owners;
  for (size_t i = 0; i < reads.size(); ++i) {
    const BatchRead& read = reads[i];
    if (read.file == nullptr) {
      results[i] = Status(StatusCode::kInvalidArgument, "a batch item names no file");
      continue;
    }
    Status usable = read.file->check_usable(false);
    if (!usable.ok()) {
      results[i] = std::move(usable);
      continue;
    }
    uint64_t known = read.file->known_length_;
    size_t n = read.offset >= known ? 0 : std::min<uint64_t>(read.out.size(), known - read.offset);
    results[i] = n;  // unless a piece fails
    for (const File::Piece& piece : read.file->pieces(read.offset, n)) {
      std::span<std::byte> out = read.out.subspan(piece.at, piece.length);
      chunk_reads.push_back(craq::ChunkRead{
          .chain = piece.chain,
          .chunk = craq::ChunkRef{.inode = read.file->attrs_.id, .index = piece.index},
          .offset = piece.offset,
          .out = out,
          .region = region});
      owners.push_back(PieceOf{.item = i, .out = out});
    }
  }
  auto reading = storage_->read_batch(std::move(chunk_reads), deadline);
  std::vector<Result<uint32_t>> answers = co_await std::move(reading);
  for (size_t p = 0; p < answers.size(); ++p) {
    std::optional<Result<size_t>>& result = results[owners[p].item];
    if (!answers[p].ok()) {
      if (result->ok()) *result = answers[p].status();
      continue;
    }
    std::span<std::byte> out = owners[p].out;
    std::memset(out.data() + *answers[p], 0, out.size() - *answers[p]);
  }
  std::vector<Result<size_t>> out;
  out.reserve(results.size());
  for (std::optional<Result<size_t>>& result : results) out.push_back(std::move(*result));
  co_return out;
}

Result<RegisteredBuffer> Client::register_buffer(std::span<std::byte> bytes) {
  if (transport_ == nullptr) return Status(StatusCode::kClosed, "the client is not connected");
  Result<std::unique_ptr<net::MemoryRegion>> region = transport_->register_memory(bytes);
  if (!region.ok()) return region.status();
  return RegisteredBuffer(bytes, std::move(*region));
}

}  // namespace mica::client
