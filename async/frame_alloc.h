// Coroutine frame allocation with live-frame accounting.
//
// Every Task frame is allocated here: small frames come from per-thread free lists of
// 64-byte size classes (bounded, so an idle thread keeps at most frame_cache_bytes_max),
// larger ones from malloc. A process-wide counter of live frames lets tests assert that
// nothing leaked. A frame may be freed on another thread than the one that allocated it.
// Thread-safe; never suspends.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mica {

void* frame_allocate(std::size_t size_bytes);
void frame_deallocate(void* frame, std::size_t size_bytes) noexcept;

// Frames allocated and not yet freed, in the whole process.
int64_t live_frames();

}  // namespace mica
