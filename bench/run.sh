#!/usr/bin/env bash
# bench/run.sh: runs one benchmark suite and its references in the same run.
#
# Usage: bench/run.sh SUITE [FIGURE...]   (suites: async net chunk mgmtd storage meta client;
# FIGUREs narrow the run), or bench/run.sh fuse|peers (the file-system rows on mounts:
# bench/fs_suite.sh runs those two and says how)
#
# Builds what the suite needs (Release, cmake -G Ninja, in build-bench/ at the repo root),
# then measures every figure BENCH_REPEAT times, Mica and its reference interleaved (the
# order alternates between repeats so drift on a noisy machine hits both sides alike).
# Prints one JSON object per figure on stdout, e.g.
#   {"suite":"async","figure":"randread_4k_qd32","value":123456,"unit":"IOPS",
#    "reference":"fio io_uring","reference_value":130000,"ratio":0.95}
# where value and reference_value are medians, and writes the same rows, every sample and
# the machine's description to bench/results/SUITE.md (a run narrowed to some FIGUREs writes
# build-bench/bench-logs/SUITE-partial.md instead). Progress goes to stderr; the output
# of every tool goes to build-bench/bench-logs/. Exit status: 0 ok, 1 a measurement or the
# build failed, 2 bad usage (unknown suite or figure).
#
# Environment: BENCH_REPEAT (runs per figure, default 5), BENCH_SECONDS (length of each
# timed run, default 5), BENCH_DIR (where the 1 GiB data files and the chunk target live,
# default build-bench/data, created once and reused), BENCH_FOOTPRINT_CHUNKS (chunks the
# chunk suite's footprint run creates, default 100000), BENCH_STORAGE_CHUNKS (1 MiB chunks of
# the storage suite's prepared data set, default 512), BENCH_FILE_BUFFERS (plain|fixed: Mica's
# file figures read into plain or io_uring-registered buffers, default fixed),
# BENCH_META_ENTRIES (entries of the meta suite's readdir directory, default 100000),
# BENCH_META_FILES (files planted for its stat, rename and unlink figures, default 100000),
# BENCH_META_FOOTPRINT (files its footprint run creates, default 50000),
# BENCH_CLIENT_FILE_BYTES (the client suite's sequential file, default 4 GiB),
# BENCH_CLIENT_SHARD_BYTES (each of its 64 shard files, default 16 MiB),
# BENCH_CLIENT_BLOCK_BYTES (its sequential transfer size, default 4 MiB),
# BENCH_BUILD_JOBS (default 2: the machine is shared). The runtime runs with its default
# ExecutorOptions.

# The per-figure functions are called by name (figure_side), which shellcheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly SUITES="async net chunk mgmtd storage meta client fuse peers"
readonly BUILD_DIR="$REPO/build-bench"
readonly LOG_DIR="$BUILD_DIR/bench-logs"
readonly RESULTS_DIR="$REPO/bench/results"

usage() {
  echo "usage: bench/run.sh SUITE [FIGURE...]   (suites: $SUITES)" >&2
}

die() {
  echo "bench/run.sh: $*" >&2
  exit 1
}

log() { echo "bench/run.sh: $*" >&2; }

if [[ $# -lt 1 ]]; then
  usage
  exit 2
fi
SUITE=$1
shift
case "$SUITE" in
  async | net | chunk | mgmtd | storage | meta | client) ;;
  fuse | peers) exec "$REPO/bench/fs_suite.sh" "$SUITE" "$@" ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    echo "bench/run.sh: unknown suite '$SUITE' (known suites: $SUITES)" >&2
    exit 2
    ;;
esac

REPEAT=${BENCH_REPEAT:-5}
BENCH_SECS=${BENCH_SECONDS:-5}
BENCH_DIR=${BENCH_DIR:-$BUILD_DIR/data}
FILE_BUFFERS=${BENCH_FILE_BUFFERS:-fixed}
BUILD_JOBS=${BENCH_BUILD_JOBS:-2}
FOOTPRINT_CHUNKS=${BENCH_FOOTPRINT_CHUNKS:-100000}
STORAGE_CHUNKS=${BENCH_STORAGE_CHUNKS:-512}
META_ENTRIES=${BENCH_META_ENTRIES:-100000}
META_FILES=${BENCH_META_FILES:-100000}
META_FOOTPRINT=${BENCH_META_FOOTPRINT:-50000}
CLIENT_FILE_BYTES=${BENCH_CLIENT_FILE_BYTES:-$((4 << 30))}
CLIENT_SHARD_BYTES=${BENCH_CLIENT_SHARD_BYTES:-$((16 << 20))}
CLIENT_BLOCK_BYTES=${BENCH_CLIENT_BLOCK_BYTES:-$((4 << 20))}
for size in "$CLIENT_FILE_BYTES" "$CLIENT_SHARD_BYTES" "$CLIENT_BLOCK_BYTES"; do
  [[ $size =~ ^[1-9][0-9]*$ ]] ||
    { echo "bench/run.sh: BENCH_CLIENT_*_BYTES must be positive byte counts" >&2; exit 2; }
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "bench/run.sh: BENCH_REPEAT must be >= 1" >&2; exit 2; }
[[ $STORAGE_CHUNKS =~ ^[1-9][0-9]*$ ]] ||
  { echo "bench/run.sh: BENCH_STORAGE_CHUNKS must be >= 1" >&2; exit 2; }
[[ $BENCH_SECS =~ ^[1-9][0-9]*$ ]] ||
  { echo "bench/run.sh: BENCH_SECONDS must be >= 1" >&2; exit 2; }
[[ $FILE_BUFFERS == plain || $FILE_BUFFERS == fixed ]] ||
  { echo "bench/run.sh: BENCH_FILE_BUFFERS must be plain or fixed" >&2; exit 2; }
# fio gets the buffers Mica gets: io_uring-registered ones when Mica's are fixed.
FIO_FIXED=()
FIO_BUFFERS_NOTE="fio's buffers plain, as Mica's"
if [[ $FILE_BUFFERS == fixed ]]; then
  FIO_FIXED=(--fixedbufs)
  FIO_BUFFERS_NOTE="fio's buffers registered too: --fixedbufs"
fi
# A run that takes this much longer than planned is hung, not slow.
readonly RUN_TIMEOUT_S=$((BENCH_SECS * 4 + 30))

# ---- the async suite: figures, their references and how each side is measured ----

readonly ASYNC_FIGURES="randread_4k_qd32 seqread_1m tcp_stream_1m pingpong_64b task_roundtrip \
metrics_counter_add metrics_histogram_record"
readonly DATA_FILE_BYTES=$((1 << 30))
readonly SEQ_DEPTH=8
declare -A UNIT REFERENCE TARGET NOTE
UNIT[randread_4k_qd32]=IOPS
REFERENCE[randread_4k_qd32]="fio io_uring"
TARGET[randread_4k_qd32]=0.90
NOTE[randread_4k_qd32]="4 KiB random O_DIRECT reads, uniform offsets, of a 1 GiB file for \
${BENCH_SECS} s. Mica: one executor (default options), 32 tasks each looping \
one read (File::read_fixed if buffers are fixed, else File::read; buffers: ${FILE_BUFFERS}) \
into its own 4 KiB slice of one aligned buffer. fio: --ioengine=io_uring --direct=1 --rw=randread \
--bs=4k --iodepth=32 --norandommap, same file, and --fixedbufs when Mica's buffers are fixed \
(${FIO_BUFFERS_NOTE})."
UNIT[seqread_1m]=MiB/s
REFERENCE[seqread_1m]="fio io_uring"
TARGET[seqread_1m]=0.95
NOTE[seqread_1m]="1 MiB sequential O_DIRECT reads of the same 1 GiB file (wrapping at its \
end) at queue depth ${SEQ_DEPTH} for ${BENCH_SECS} s. Mica: one executor (default \
options), ${SEQ_DEPTH} tasks \
taking the next 1 MiB offset from a shared cursor (buffers: ${FILE_BUFFERS}). fio: \
--rw=read --bs=1m --iodepth=${SEQ_DEPTH} (${FIO_BUFFERS_NOTE})."
UNIT[tcp_stream_1m]=MiB/s
REFERENCE[tcp_stream_1m]="iperf3"
TARGET[tcp_stream_1m]=0.90
NOTE[tcp_stream_1m]="one TCP connection on 127.0.0.1 streaming 1 MiB messages for \
${BENCH_SECS} s, bytes counted at the receiver. Mica: one process, sender and receiver each \
on its own executor thread (send_all / recv_exact of 1 MiB). iperf3: server -s -1, client \
-c 127.0.0.1 -t ${BENCH_SECS} -l 1M, end.sum_received."
UNIT[pingpong_64b]="round trips/s"
REFERENCE[pingpong_64b]="blocking sockets"
TARGET[pingpong_64b]=0.80
NOTE[pingpong_64b]="64-byte ping-pong over one TCP connection on 127.0.0.1 for \
${BENCH_SECS} s, TCP_NODELAY. Mica: client task and echo-server task, each on its own \
executor thread. Reference: bench/pingpong_blocking.cc, blocking send/recv, a server thread \
and a client thread."
UNIT[task_roundtrip]=ns/op
REFERENCE[task_roundtrip]=-
TARGET[task_roundtrip]=-
NOTE[task_roundtrip]="create + co_await + destroy of a trivial Task<int> inside a running \
task on one executor (Google Benchmark, real time per op; lower is better)."
for figure in metrics_counter_add metrics_histogram_record; do
  UNIT[$figure]=ns/op
  REFERENCE[$figure]=-
  TARGET[$figure]=-
done
NOTE[metrics_counter_add]="one Counter::add() of async/metrics.h on one thread, its own shard \
(bench_metrics, Google Benchmark, real time per op; lower is better)."
NOTE[metrics_histogram_record]="one Histogram::record() of a duration cycling through 64 \
values from 100 ns to 50 ms, one thread (bench_metrics, real time per op; lower is better)."

# ---- the net suite ----

readonly NET_FIGURES="rpc_64b_qd1 rpc_64b_qd1_vs_blocking rpc_64b_qd1_p50 rpc_64b_qd1_p99 \
rpc_64b_qd64 rpc_64b_qd64_p50 rpc_64b_qd64_p99 onesided_1m onesided_4m idle_connection_memory"
for figure in rpc_64b_qd1 rpc_64b_qd1_vs_blocking rpc_64b_qd64; do
  UNIT[$figure]="round trips/s"
done
REFERENCE[rpc_64b_qd1]="runtime socket ping-pong"
TARGET[rpc_64b_qd1]=0.70
REFERENCE[rpc_64b_qd1_vs_blocking]="blocking sockets"
TARGET[rpc_64b_qd1_vs_blocking]=-
REFERENCE[rpc_64b_qd64]=-
TARGET[rpc_64b_qd64]=-
NOTE[rpc_64b_qd1]="64-byte echo RPCs (request and response each a 64-byte string) over one \
TCP connection on 127.0.0.1 for ${BENCH_SECS} s, one call in flight; server on executor 0, \
client on executor 1 of one process. Reference: the async suite's pingpong_64b Mica side \
(raw runtime sockets, same two-thread layout), measured in the same run."
NOTE[rpc_64b_qd1_vs_blocking]="the same RPC run as rpc_64b_qd1 (its own samples), against a \
reference outside the runtime: bench/pingpong_blocking.cc (blocking send/recv of 64 bytes, a \
server thread and a client thread, TCP_NODELAY), measured in the same run."
NOTE[rpc_64b_qd64]="as rpc_64b_qd1 with 64 calls in flight on the one connection. Nothing \
outside Mica pipelines 64 calls on one connection the same way, so it has no reference and \
no ratio."
for figure in rpc_64b_qd1_p50 rpc_64b_qd1_p99 rpc_64b_qd64_p50 rpc_64b_qd64_p99; do
  UNIT[$figure]=us
  REFERENCE[$figure]=-
  TARGET[$figure]=-
  NOTE[$figure]="latency percentile of every call in the run of ${figure%_p*} (the same run)."
done
for figure in onesided_1m onesided_4m; do
  UNIT[$figure]=MiB/s
  REFERENCE[$figure]=iperf3
  TARGET[$figure]=0.80
done
NOTE[onesided_1m]="one-sided write_to of 1 MiB into the peer's registered memory over TCP \
(kData frames: descriptor + bytes, received straight into the region), 4 transfers in \
flight, one connection on 127.0.0.1, writer and server on their own executor threads, for \
${BENCH_SECS} s. Reference: iperf3 -l 1M on the same loopback."
NOTE[onesided_4m]="as onesided_1m with 4 MiB transfers, 2 in flight. Reference: iperf3 -l 1M \
(iperf3 refuses messages over 1 MiB; on a stream the message size hardly matters)."
UNIT[idle_connection_memory]=bytes
REFERENCE[idle_connection_memory]=-
TARGET[idle_connection_memory]=-
NOTE[idle_connection_memory]="growth of resident memory per idle RPC connection after 1000 \
connections were opened and pinged once; both ends live in the process, so this is the \
client's and the server's share together."

# ---- the chunk suite: the chunk engine (bench_chunk) against fio on the same disk ----

# The engine's benchmark does its I/O in huge-page buffers, so fio gets huge pages too
# (--iomem=mmaphuge: anonymous MAP_HUGETLB memory, which needs pages reserved in
# /proc/sys/vm/nr_hugepages; reserve_huge_pages raises the reservation for the run and puts
# it back at exit). Without them (not root) fio keeps its plain buffers and the note says so.
readonly FIO_HUGE_PAGES=16
FIO_HUGE=()
FIO_HUGE_NOTE="fio's buffers in huge pages too (--iomem=mmaphuge)"
HUGE_PAGES_BEFORE=
CLIENT_UP=
CLIENT_CLUSTER=
reserve_huge_pages() {
  local now
  now=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
  if ((now < FIO_HUGE_PAGES)); then
    if echo "$FIO_HUGE_PAGES" 2>/dev/null >/proc/sys/vm/nr_hugepages &&
      (($(cat /proc/sys/vm/nr_hugepages) >= FIO_HUGE_PAGES)); then
      HUGE_PAGES_BEFORE=$now
    else
      echo "$now" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
      FIO_HUGE_NOTE="fio's buffers plain: no huge pages could be reserved (Mica's are huge)"
      log "no huge pages for fio: $FIO_HUGE_NOTE"
      return 0
    fi
  fi
  FIO_HUGE=(--iomem=mmaphuge)
}
[[ $SUITE == chunk ]] && reserve_huge_pages

readonly CHUNK_FIGURES="write_1m read_1m randread_4k_qd32 create_commit rss_per_million_chunks \
lmdb_per_million_chunks"
readonly CHUNK_COUNT=1024 CHUNK_SEQ_DEPTH=8 CHUNK_RAND_DEPTH=32 CHUNK_CREATE_DEPTH=64
UNIT[write_1m]=MiB/s
REFERENCE[write_1m]="fio io_uring"
TARGET[write_1m]=0.70
NOTE[write_1m]="sequential 1 MiB chunk writes at queue depth ${CHUNK_SEQ_DEPTH} for \
${BENCH_SECS} s over ${CHUNK_COUNT} committed 1 MiB chunks. Mica: ${CHUNK_SEQ_DEPTH} tasks \
each take the next chunk and write a full new version, then commit it (copy-on-write slot, \
O_DIRECT write with RWF_DSYNC, two group-committed durable LMDB transactions); each task \
writes from its own 1 MiB slice of one huge-page buffer (AlignedBuffer::huge_pages). fio: \
--ioengine=io_uring --direct=1 --rw=write --bs=1m --iodepth=${CHUNK_SEQ_DEPTH} on a 1 GiB file \
of the same file system, no fdatasync (so fio's writes are not durable, Mica's are), \
${FIO_HUGE_NOTE}."
UNIT[read_1m]=MiB/s
REFERENCE[read_1m]="fio io_uring"
TARGET[read_1m]=0.90
NOTE[read_1m]="whole 1 MiB chunks read in order, CRC32C-checked, ${CHUNK_SEQ_DEPTH} tasks \
reading into their slices of one huge-page buffer, ${BENCH_SECS} s. fio: --rw=read --bs=1m \
--iodepth=${CHUNK_SEQ_DEPTH}, same 1 GiB file as write_1m, ${FIO_HUGE_NOTE}."
# The async suite has a figure of the same name (the runtime alone): chunk's replaces it.
if [[ $SUITE == chunk ]]; then
  UNIT[randread_4k_qd32]=IOPS
  REFERENCE[randread_4k_qd32]="fio io_uring"
  TARGET[randread_4k_qd32]=0.85
  NOTE[randread_4k_qd32]="4 KiB reads at uniform random aligned offsets of uniform random \
chunks (1 GiB of data), CRC32C-checked, ${CHUNK_RAND_DEPTH} tasks, ${BENCH_SECS} s. fio: \
--rw=randread --bs=4k --iodepth=${CHUNK_RAND_DEPTH} --norandommap, same 1 GiB file, \
${FIO_HUGE_NOTE}."
fi
UNIT[create_commit]=ops/s
REFERENCE[create_commit]=-
TARGET[create_commit]=-
NOTE[create_commit]="new 4 KiB chunks created (write version 1 + commit), \
${CHUNK_CREATE_DEPTH} tasks, ${BENCH_SECS} s, fresh target."
UNIT[rss_per_million_chunks]=MiB
UNIT[lmdb_per_million_chunks]=MiB
for figure in rss_per_million_chunks lmdb_per_million_chunks; do
  REFERENCE[$figure]=-
  TARGET[$figure]=-
done
NOTE[rss_per_million_chunks]="growth of the process's resident memory while \
${FOOTPRINT_CHUNKS} new 4 KiB chunks are created on a fresh target, scaled to a million \
(one run serves every repeat and both footprint figures)."
NOTE[lmdb_per_million_chunks]="growth of the LMDB pages in use over the same run, scaled to \
a million 4 KiB chunks."

# ---- the mgmtd suite: chain placement (bench_mgmtd) against a ring of consecutive nodes ----

# The shape of 3FS's largest cluster: 180 storage nodes, 16 targets each, 3 replicas; one
# target per disk (16 disks) for the node figures, 4 disks of 4 targets for the disk ones.
# Every figure here is computed from the placement, not timed (except generate_ms), so its
# repeats agree; the reference is the copyset-style ring (bench/mgmtd_bench.cc).
# The routing figures (bench/mgmtd_routing_bench.cc) time a real Mgmtd on LMDB holding that
# cluster, served over TCP on 127.0.0.1 to one client with 8 calls in flight; the reference
# is the same RpcServer/RpcClient answering the same request with a pre-encoded byte string
# of the same length, so the ratio is mgmtd's own cost over plain RPC of that many bytes.
readonly MGMTD_FIGURES="lost_node_peers lost_node_parallelism lost_node_max_mean \
lost_disk_peers lost_disk_parallelism lost_disk_max_mean lost_target_peers node_peers_min \
pair_max generate_ms routing_full_per_s routing_current_per_s routing_snapshot_bytes"
readonly MGMTD_SHAPE="180 nodes x 16 targets, 3 replicas"
readonly MGMTD_RING="the ring (round k: nodes k+3m, k+3m+1, k+3m+2 mod 180 form a chain)"
for figure in lost_node_peers lost_disk_peers lost_target_peers node_peers_min; do
  UNIT[$figure]=peers
done
for figure in lost_node_parallelism lost_disk_parallelism; do UNIT[$figure]="peers' worth"; done
for figure in lost_node_max_mean lost_disk_max_mean; do UNIT[$figure]="max/mean"; done
UNIT[pair_max]=chains
UNIT[generate_ms]=ms
UNIT[routing_full_per_s]=fetches/s
UNIT[routing_current_per_s]=fetches/s
UNIT[routing_snapshot_bytes]=bytes
for figure in $MGMTD_FIGURES; do
  REFERENCE[$figure]=-
  TARGET[$figure]=-
done
for figure in lost_node_peers lost_node_parallelism lost_disk_peers lost_disk_parallelism \
  node_peers_min; do
  REFERENCE[$figure]="ring placement"
done
for figure in routing_full_per_s routing_current_per_s; do
  REFERENCE[$figure]="plain RPC, same bytes"
done
NOTE[lost_node_peers]="${MGMTD_SHAPE}, 16 disks x 1 target: one node lost, each of its 16 \
chains rebuilt from its last surviving member (the predecessor of the replacement); the \
fewest distinct peers that read, over every node lost in turn (ideal 16). Reference: \
${MGMTD_RING}."
NOTE[lost_node_parallelism]="same runs: units (lost chains) / the busiest peer's units, \
the worst node (ideal 16: the rebuild takes one chain's time, not several). Reference: the \
ring; the ratio is how much faster a lost node is rebuilt."
NOTE[lost_node_max_mean]="same runs: the busiest reading peer's load over the mean load of \
the peers that read, the worst node (ideal 1.0; the ring's is in bench_mgmtd --placement \
ring)."
NOTE[lost_disk_peers]="${MGMTD_SHAPE}, 4 disks x 4 targets: one disk lost (its 4 chains), \
fewest distinct reading peers over every disk in turn (ideal 4). Reference: the ring, whose \
node's consecutive targets share a disk."
NOTE[lost_disk_parallelism]="same runs: units / the busiest peer's units, the worst disk \
(ideal 4). Reference: the ring."
NOTE[lost_disk_max_mean]="same runs: max/mean load of the reading peers, the worst disk \
(ideal 1.0)."
NOTE[lost_target_peers]="one target lost: its one chain is rebuilt by one peer, the last \
surviving member, with any placement (the resync protocol sends from the predecessor); 1 \
by construction, listed so the figure is not mistaken for missing."
NOTE[node_peers_min]="${MGMTD_SHAPE}, 16 disks: the fewest distinct peers any node's \
chains reach (ideal 32 = 16 chains x 2 other members: every node's data has copies on 32 \
nodes). Reference: the ring."
NOTE[pair_max]="${MGMTD_SHAPE}, 16 disks: the most chains any two nodes share (ideal 1)."
NOTE[generate_ms]="${MGMTD_SHAPE}, 16 disks: wall time of one generate_chains call \
(Release build; lower is better)."
NOTE[routing_full_per_s]="${MGMTD_SHAPE}, 16 disks, one chain table: get_routing with \
known_version 0 (each answer is the whole snapshot, as a restarted server or client \
fetches it; the update loop is stopped so the snapshot stays put), 8 calls in flight on \
one connection, mgmtd on one executor and the client on another. Reference: an echo-like \
service answering the same request with a pre-encoded string of the snapshot's length."
NOTE[routing_current_per_s]="same cluster: get_routing with known_version current and \
wait_ms 0 (the answer is 'nothing new', a few bytes). Reference: the plain service \
answering with as many bytes."
NOTE[routing_snapshot_bytes]="same cluster: the encoded size of the full get_routing \
answer (180 nodes, 2880 targets, 960 chains); lower is better."

# ---- the storage suite: the replicated storage service (bench_storage) ----

# Three StorageServers in one process, each on its own executor thread with its own TCP
# transport, pool and RPC server on 127.0.0.1, the client on a fourth; chains are built by
# hand (a fixed routing snapshot served in place of mgmtd). All replicas share one disk and
# the machine's cores. The read figures use a prepared data set of STORAGE_CHUNKS 1 MiB
# chunks on one chain of 3 replicas, written through the client once and reused.
readonly STORAGE_FIGURES="write_3rep read_spread batch_randread resync resync_vs_replace \
rss_per_server rss_per_server_max"
readonly STORAGE_DEPTH=8 STORAGE_BATCHES=4 STORAGE_BATCH_ITEMS=32 STORAGE_WRITE_CHUNKS=256
readonly STORAGE_SHAPE="3 servers in one process (one executor thread each, real TCP on \
127.0.0.1), the client on its own executor"
UNIT[write_3rep]=MiB/s
REFERENCE[write_3rep]="1 replica"
TARGET[write_3rep]=0.28
NOTE[write_3rep]="whole 1 MiB chunk writes through StorageClient::write, ${STORAGE_DEPTH} in \
flight, round robin over ${STORAGE_WRITE_CHUNKS} chunks (then new versions of them) of 3 \
chains whose heads rotate over the servers, fresh targets, ${BENCH_SECS} s; ${STORAGE_SHAPE}. \
Mica: 3 replicas per chain (head, middle, tail: every byte is written 3 times to the one \
disk). Reference: the same with 1 replica per chain. The three replicas share one disk and \
the cores, so the limit is about 1/3."
UNIT[read_spread]=MiB/s
REFERENCE[read_spread]="pinned to the head"
TARGET[read_spread]=-
NOTE[read_spread]="whole 1 MiB reads of random prepared chunks (one chain, 3 replicas) through \
StorageClient::read, ${STORAGE_DEPTH} in flight, ${BENCH_SECS} s. Mica: ReadChoice::kSpread \
(any serving replica). Reference: ReadChoice::kHead (always the head). Reported: with one \
disk and two cores the spread has little to win."
UNIT[batch_randread]=reads/s
REFERENCE[batch_randread]="chunk engine alone"
TARGET[batch_randread]=0.50
NOTE[batch_randread]="StorageClient::read_batch of ${STORAGE_BATCH_ITEMS} random reads, \
alternately 4 KiB and 64 KiB at aligned random offsets of random prepared chunks (one chain, \
3 replicas, spread), ${STORAGE_BATCHES} batches in flight, ${BENCH_SECS} s, CRC-checked by \
the client. Reference: the same mix from $((STORAGE_BATCHES * STORAGE_BATCH_ITEMS)) tasks, \
one ChunkEngine::read each at a time, on the first replica's engine alone (one executor)."
UNIT[resync]=MiB/s
REFERENCE[resync]="chunk engine raw read"
TARGET[resync]=0.50
NOTE[resync]="resync of the prepared ${STORAGE_CHUNKS} MiB from its first replica to a fresh \
target (chain [serving, syncing], ${STORAGE_DEPTH} chunks in flight, bandwidth cap off): \
prepared bytes / time from routing to the new target reporting up to date; 2 servers in one \
process, real TCP. Reference: every prepared chunk read whole from the same replica's engine \
alone, ${STORAGE_DEPTH} at once."
UNIT[resync_vs_replace]=MiB/s
REFERENCE[resync_vs_replace]="chunk engine replace"
TARGET[resync_vs_replace]=-
NOTE[resync_vs_replace]="the resync figure's Mica runs against what the syncing target's \
engine alone stores: ${STORAGE_CHUNKS} whole 1 MiB chunks, each a durable ChunkEngine::replace \
(what the syncing side does per chunk), ${STORAGE_DEPTH} at once, into a fresh engine on the \
same disk. Reported: a resync reads, sends and stores every chunk, so on one disk and two \
cores the slower of raw read and durable replace bounds it."
UNIT[rss_per_server]=MiB
REFERENCE[rss_per_server]=-
TARGET[rss_per_server]=-
readonly STORAGE_RSS_CHUNKS=64
NOTE[rss_per_server]="memory per storage process: \`mica dev up --storage 3\` (real mgmtd, \
meta and 3 mica-storage processes on 127.0.0.1, fresh folder), then ${STORAGE_RSS_CHUNKS} \
whole 1 MiB chunks written with \`mica put\` on chain 1 (3 replicas: every process holds one) \
and read back with \`mica get\`; then the resident memory (VmRSS) of each mica-storage \
process (by its pid file): the median of the 3."
UNIT[rss_per_server_max]=MiB
REFERENCE[rss_per_server_max]=-
TARGET[rss_per_server_max]=-
NOTE[rss_per_server_max]="the same run as rss_per_server: the largest of the 3 mica-storage \
processes' VmRSS."

# ---- the meta suite: the metadata service (bench_meta) against its physical references ----

# One MetaNode with one shard (kv's journaled store in BENCH_DIR, as mica-meta runs it, and
# the reference on the same store; the node's RPC server and its shard on
# one executor thread, as mica-meta with one executor runs them), a real Mgmtd on LMDB and the
# MetaClient on the other executor thread, TCP on 127.0.0.1. Writes: the reference writes the
# same keys (same tables, key and value sizes) straight into a kv::Env on the same disk
# through its group-committing writer, with as many concurrent writers as Mica has clients.
# Reads: the reference is the floor of any networked metadata read — a minimal net/ RPC
# service (bench/meta_bench_rpc.h) answering the same getattr/readdir requests with the
# same reply types over the same TCP transport, one kv/ read each from the same tables,
# server and clients on the same two threads as Mica's, the same number of calls in flight
# on one connection. The *_vs_kv rows compare with in-process kv/ reads (no network at all),
# for information only.
readonly META_FIGURES="create_1c create_8c stat_1c stat_8c stat_8c_vs_kv readdir_1c readdir_8c \
readdir_8c_vs_kv rename_1c rename_8c unlink_1c unlink_8c disk_per_million_inodes \
rss_per_million_inodes"
readonly META_SHAPE="node (RPC server + shard) on one executor thread, mgmtd + clients on \
the other, 127.0.0.1; N concurrent calls through one MetaClient"
readonly META_RPC_REFERENCE="the same request over the same transport to a minimal net/ RPC \
service (bench/meta_bench_rpc.h) on the server's thread answering from the same LMDB tables \
with one kv/ read per request (a renewed snapshot, no routing, no permission checks), N \
calls in flight on one connection from the clients' thread"
for clients in 1 8; do
  for op in create stat readdir rename unlink; do
    figure=${op}_${clients}c
    UNIT[$figure]=ops/s
    case $op in
      stat) REFERENCE[$figure]="RPC + one kv/ get" ;;
      readdir) REFERENCE[$figure]="RPC + one kv/ range scan per page" ;;
      *) REFERENCE[$figure]="raw kv/ writes" ;;
    esac
    TARGET[$figure]=0.50
  done
  NOTE[create_${clients}c]="${clients} concurrent creates (MetaClient::create of a new file in \
the root) for ${BENCH_SECS} s; ${META_SHAPE}. Reference: ${clients} writers each committing \
new inode + entry + parent inode + shard record + remembered answer per create."
  NOTE[stat_${clients}c]="${clients} concurrent getattr of ${META_FILES} planted files, round \
robin, ${BENCH_SECS} s; ${META_SHAPE}. Reference: ${META_RPC_REFERENCE}."
  NOTE[readdir_${clients}c]="${clients} concurrent whole listings of a directory of \
${META_ENTRIES} entries (server's page size, 1024), ${BENCH_SECS} s; counted in entries \
listed; ${META_SHAPE}. Reference: ${META_RPC_REFERENCE}; a page is one cursor scan, each \
entry decoded."
  NOTE[rename_${clients}c]="${clients} concurrent renames f<i> -> rf<i> in the root over \
${META_FILES} planted files. Reference: entry erase + entry put + inode + parent + answer."
  NOTE[unlink_${clients}c]="${clients} concurrent unlinks of planted files (last link: queued \
for GC). Reference: entry erase + inode erase + GC record + parent + answer."
done
for op in stat readdir; do
  figure=${op}_8c_vs_kv
  UNIT[$figure]=ops/s
  REFERENCE[$figure]="raw kv/ reads (in process)"
  TARGET[$figure]=-
done
NOTE[stat_8c_vs_kv]="Mica's side as stat_8c; reference: 8 tasks in the bench process doing a \
snapshot get + decode of the inode each, no network (informative: what the RPC costs)."
NOTE[readdir_8c_vs_kv]="Mica's side as readdir_8c; reference: 8 tasks in the bench process, \
each a cursor over the same entries, each decoded, no network (informative)."
UNIT[disk_per_million_inodes]=MiB
UNIT[rss_per_million_inodes]=MiB
for figure in disk_per_million_inodes rss_per_million_inodes; do
  REFERENCE[$figure]=-
  TARGET[$figure]=-
done
NOTE[disk_per_million_inodes]="the shard's LMDB pages in use after ${META_FOOTPRINT} files \
were created through 8 concurrent clients into a fresh shard, scaled to a million (measured \
with fewer inodes and scaled linearly; one run serves every repeat and both figures)."
NOTE[rss_per_million_inodes]="growth of the process's resident memory over the same run \
(server, mgmtd and client together, LMDB's mapped pages included), scaled to a million."

# ---- the client suite: the native client against `mica dev up` processes (bench_client) ----

# A dev cluster (mgmtd, one mica-meta, 3 mica-storage processes, 3 replicas per chain, every
# replica on the disk of BENCH_DIR) started once per suite run; bench_client is the client
# process alone. The references run in the same run, on the same disk.
readonly CLIENT_FIGURES="seq_write seq_read batch_randread_4k batch_randread_128k \
read_4k_p50 read_4k_p99 client_rss"
readonly CLIENT_DEPTH=8 CLIENT_SHARDS=64 CLIENT_BATCHES=4 CLIENT_BATCH_ITEMS=32
readonly CLIENT_SHAPE="bench_client (one executor, TCP on 127.0.0.1) against mica dev up \
--storage 3 (3 replicas per chain, one disk)"
UNIT[seq_write]=MiB/s
REFERENCE[seq_write]="storage write_3rep"
TARGET[seq_write]=0.90
NOTE[seq_write]="a $((CLIENT_FILE_BYTES >> 20)) MiB file written once (O_TRUNC) in \
$((CLIENT_BLOCK_BYTES >> 20)) MiB File::pwrite calls, ${CLIENT_DEPTH} in flight from a shared \
cursor, then fsync and close (timed); ${CLIENT_SHAPE}. Reference: the storage suite's \
write_3rep Mica side (bench_storage --mode write --replicas 3: 1 MiB chunk writes straight \
through StorageClient, ${STORAGE_DEPTH} in flight, servers in one process) in the same run."
UNIT[seq_read]=MiB/s
REFERENCE[seq_read]="fio local disk"
TARGET[seq_read]=0.80
NOTE[seq_read]="the same file read once whole in $((CLIENT_BLOCK_BYTES >> 20)) MiB \
File::pread calls, ${CLIENT_DEPTH} in flight (written first, untimed, when missing). \
Reference: fio --ioengine=io_uring --direct=1 --rw=read --bs=$((CLIENT_BLOCK_BYTES >> 20))m \
--iodepth=${CLIENT_DEPTH} reading a file of the same size in BENCH_DIR once."
for size in 4 128; do
  figure=batch_randread_${size}k
  UNIT[$figure]=reads/s
  REFERENCE[$figure]="chunk engine alone"
  TARGET[$figure]=0.50
  NOTE[$figure]="Client::read_batch of ${CLIENT_BATCH_ITEMS} random ${size} KiB samples \
(aligned offsets) of ${CLIENT_SHARDS} shard files of $((CLIENT_SHARD_BYTES >> 20)) MiB, \
${CLIENT_BATCHES} batches in flight, ${BENCH_SECS} s. Reference: a ChunkEngine alone on the \
same disk holding as many bytes in 4 MiB chunks, $((CLIENT_BATCHES * CLIENT_BATCH_ITEMS)) \
tasks each doing one ${size} KiB read at a time."
done
UNIT[read_4k_p50]=us
UNIT[read_4k_p99]=us
UNIT[client_rss]=MiB
for figure in read_4k_p50 read_4k_p99 client_rss; do
  REFERENCE[$figure]=-
  TARGET[$figure]=-
done
NOTE[read_4k_p50]="median latency of single 4 KiB File::pread calls, one at a time, at random \
aligned offsets of the shard files, ${BENCH_SECS} s (lower is better)."
NOTE[read_4k_p99]="the same run's 99th percentile (lower is better)."
NOTE[client_rss]="memory per client: growth of bench_client's resident memory from before \
connect to the end of seq_write (its own transfer buffers touched before)."

# ---- helpers ----

BG_PIDS=()
cleanup() {
  local pid
  for pid in "${BG_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  if [[ -n $CLIENT_UP ]]; then
    "$BUILD_DIR/apps/mica" dev down --dir "$CLIENT_CLUSTER" >>"$LOG_DIR/client-dev.log" 2>&1 ||
      true
  fi
  if [[ -n $HUGE_PAGES_BEFORE ]]; then
    echo "$HUGE_PAGES_BEFORE" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
  fi
}
trap cleanup EXIT

require_tool() {
  command -v "$1" >/dev/null 2>&1 ||
    die "'$1' is not installed; run scripts/install-deps.sh first"
}

# Prints field $1 of the JSON object on stdin (nested keys separated by dots).
json_field() {
  python3 -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[int(key)] if isinstance(value, list) else value[key]
print(value)' "$1"
}

free_port() {
  python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

wait_listening() {
  local port=$1 _
  for _ in $(seq 50); do
    if ss -Hltn "sport = :$port" | grep -q .; then return 0; fi
    sleep 0.1
  done
  return 1
}

build() {
  mkdir -p "$LOG_DIR"
  log "configuring and building in $BUILD_DIR (Release, -j$BUILD_JOBS)"
  if ! cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DMICA_BUILD_BENCH=ON >"$LOG_DIR/configure.log" 2>&1; then
    tail -n 30 "$LOG_DIR/configure.log" >&2
    die "cmake configure failed (full log: $LOG_DIR/configure.log)"
  fi
  if ! ninja -C "$BUILD_DIR" -j "$BUILD_JOBS" "$@" >"$LOG_DIR/build.log" 2>&1; then
    tail -n 40 "$LOG_DIR/build.log" >&2
    die "build failed (full log: $LOG_DIR/build.log)"
  fi
}

# The 1 GiB data file of the file figures: random bytes (so no layer below can skip zero
# blocks), written once with O_DIRECT and reused while its size is right.
prepare_data_file() {
  mkdir -p "$BENCH_DIR"
  DATA_FILE="$BENCH_DIR/async-1g.dat"
  local size
  size=$(stat -c %s "$DATA_FILE" 2>/dev/null || echo 0)
  if [[ $size -ne $DATA_FILE_BYTES ]]; then
    log "writing the 1 GiB data file $DATA_FILE"
    dd if=/dev/urandom of="$DATA_FILE.tmp" bs=1M count=$((DATA_FILE_BYTES >> 20)) \
      iflag=fullblock oflag=direct conv=fsync status=none
    mv "$DATA_FILE.tmp" "$DATA_FILE"
  fi
}

# Runs one measurement command (which prints a number) and appends its sample.
sample() {
  local figure=$1 side=$2 value
  shift 2
  echo "== $figure $side: $*" >>"$RUN_LOG"
  if value=$("$@" 2>>"$RUN_LOG") && [[ $value =~ ^[0-9.e+]+$ ]]; then
    log "  $figure $side: $value ${UNIT[$figure]}"
  else
    log "  $figure $side: FAILED (see $RUN_LOG)"
    value=nan
  fi
  printf 'sample\t%s\t%s\t%s\n' "$figure" "$side" "$value" >>"$RAW"
}

fio_run() {
  local rw=$1 block=$2 depth=$3 field=$4
  shift 4
  timeout "$RUN_TIMEOUT_S" fio --name="bench-$rw" --filename="$DATA_FILE" --size=1g \
    --ioengine=io_uring --direct=1 --rw="$rw" --bs="$block" --iodepth="$depth" \
    --time_based --runtime="$BENCH_SECS" --output-format=json "${FIO_FIXED[@]}" "$@" |
    json_field "jobs.0.read.$field"
}

mica_file() {
  local fixed=()
  [[ $FILE_BUFFERS == fixed ]] && fixed=(--fixed-buffers)
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_async_file" --file "$DATA_FILE" \
    --seconds "$BENCH_SECS" "${fixed[@]}" "$@"
}

# ---- one function per figure and side; each prints one number in the figure's unit ----

seqread_1m_reference() {
  fio_run read 1m "$SEQ_DEPTH" bw_bytes | python3 -c 'import sys; print(float(input()) / 2**20)'
}
seqread_1m_mica() {
  mica_file --mode seqread --block-bytes $((1 << 20)) --depth "$SEQ_DEPTH" |
    json_field mib_per_s
}

tcp_stream_1m_reference() { iperf3_mib_per_s 1M; }

# iperf3 over loopback with messages of $1 bytes; prints MiB/s received.
iperf3_mib_per_s() {
  local length=$1 port server out
  port=$(free_port)
  iperf3 -s -1 -p "$port" >>"$RUN_LOG" 2>&1 &
  server=$!
  BG_PIDS+=("$server")
  if ! wait_listening "$port"; then
    kill "$server" 2>/dev/null || true
    echo "iperf3 server did not listen on $port" >&2
    return 1
  fi
  if ! out=$(timeout "$RUN_TIMEOUT_S" iperf3 -c 127.0.0.1 -p "$port" -t "$BENCH_SECS" \
    -l "$length" -J)
  then
    kill "$server" 2>/dev/null || true
    echo "$out" >&2
    return 1
  fi
  wait "$server" || true
  echo "$out" | json_field end.sum_received.bits_per_second |
    python3 -c 'import sys; print(float(input()) / 8 / 2**20)'
}
tcp_stream_1m_mica() {
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_async_net" --mode stream \
    --message-bytes $((1 << 20)) --seconds "$BENCH_SECS" | json_field mib_per_s
}

pingpong_64b_reference() {
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_pingpong_blocking" --message-bytes 64 \
    --seconds "$BENCH_SECS" | json_field round_trips_per_s
}
pingpong_64b_mica() {
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_async_net" --mode pingpong \
    --message-bytes 64 --seconds "$BENCH_SECS" | json_field round_trips_per_s
}

# net: one run of bench_net_rpc per rate figure; its latency rows read that run's output.
net_rpc() {
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_net_rpc" --seconds "$BENCH_SECS" "$@"
}
rpc_figure() {
  local in_flight=$1
  net_rpc --mode rpc --in-flight "$in_flight" | tee "$LOG_DIR/rpc_qd$in_flight.json" |
    json_field round_trips_per_s
}
rpc_64b_qd1_reference() { pingpong_64b_mica; }
rpc_64b_qd1_mica() { rpc_figure 1; }
rpc_64b_qd1_vs_blocking_reference() { pingpong_64b_reference; }
rpc_64b_qd1_vs_blocking_mica() { net_rpc --mode rpc --in-flight 1 | json_field round_trips_per_s; }
rpc_64b_qd1_p50_mica() { json_field p50_us <"$LOG_DIR/rpc_qd1.json"; }
rpc_64b_qd1_p99_mica() { json_field p99_us <"$LOG_DIR/rpc_qd1.json"; }
rpc_64b_qd64_mica() { rpc_figure 64; }
rpc_64b_qd64_p50_mica() { json_field p50_us <"$LOG_DIR/rpc_qd64.json"; }
rpc_64b_qd64_p99_mica() { json_field p99_us <"$LOG_DIR/rpc_qd64.json"; }
onesided_1m_reference() { iperf3_mib_per_s 1M; }
onesided_1m_mica() {
  net_rpc --mode onesided --transfer-bytes $((1 << 20)) --in-flight 4 | json_field mib_per_s
}
onesided_4m_reference() { iperf3_mib_per_s 1M; }  # iperf3's largest message is 1 MiB
onesided_4m_mica() {
  net_rpc --mode onesided --transfer-bytes $((4 << 20)) --in-flight 2 | json_field mib_per_s
}
idle_connection_memory_mica() {
  net_rpc --mode idle --connections 1000 | json_field bytes_per_connection
}

# chunk: bench_chunk on a prepared target; fio on its own 1 GiB file (fio writes it).
chunk_bench() {
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_chunk" "$@"
}
chunk_mica() {
  local mode=$1 depth=$2
  shift 2
  chunk_bench --dir "$CHUNK_TARGET" --mode "$mode" --chunks "$CHUNK_COUNT" --depth "$depth" \
    --seconds "$BENCH_SECS" "$@"
}
chunk_fio() {
  local rw=$1 block=$2 depth=$3 field=$4
  timeout "$RUN_TIMEOUT_S" fio --name="chunk-$rw" --filename="$CHUNK_FIO_FILE" --size=1g \
    --ioengine=io_uring --direct=1 --rw="$rw" --bs="$block" --iodepth="$depth" \
    --norandommap --randrepeat=0 --time_based --runtime="$BENCH_SECS" --output-format=json \
    "${FIO_HUGE[@]}" | json_field "jobs.0.$field"
}
to_mib() { python3 -c 'import sys; print(float(input()) / 2**20)'; }
write_1m_reference() { chunk_fio write 1m "$CHUNK_SEQ_DEPTH" write.bw_bytes | to_mib; }
write_1m_mica() { chunk_mica write_1m "$CHUNK_SEQ_DEPTH" | json_field mib_per_s; }
read_1m_reference() { chunk_fio read 1m "$CHUNK_SEQ_DEPTH" read.bw_bytes | to_mib; }
read_1m_mica() { chunk_mica read_1m "$CHUNK_SEQ_DEPTH" | json_field mib_per_s; }
randread_4k_qd32_reference() {
  if [[ $SUITE == chunk ]]; then
    chunk_fio randread 4k "$CHUNK_RAND_DEPTH" read.iops
  else
    fio_run randread 4k 32 iops --norandommap --randrepeat=0
  fi
}
randread_4k_qd32_mica() {
  if [[ $SUITE == chunk ]]; then
    chunk_mica randread_4k "$CHUNK_RAND_DEPTH" | json_field ops_per_s
  else
    mica_file --mode randread --block-bytes 4096 --depth 32 | json_field ops_per_s
  fi
}
create_commit_mica() {
  local dir="$BENCH_DIR/chunk-create" out
  rm -rf "$dir"
  out=$(chunk_bench --dir "$dir" --mode create_commit --depth "$CHUNK_CREATE_DEPTH" \
    --seconds "$BENCH_SECS") || return 1
  rm -rf "$dir"
  echo "$out" | json_field ops_per_s
}
# One footprint run serves both figures and every repeat (samples run in subshells, so the
# result is kept in a file).
footprint() {
  local field=$1 file="$LOG_DIR/chunk-footprint.json" dir="$BENCH_DIR/chunk-footprint"
  if [[ ! -s $file ]]; then
    rm -rf "$dir"
    timeout $((RUN_TIMEOUT_S * 10)) "$BUILD_DIR/bench/bench_chunk" --dir "$dir" \
      --mode footprint --depth "$CHUNK_CREATE_DEPTH" --count "$FOOTPRINT_CHUNKS" >"$file" ||
      return 1
    rm -rf "$dir"
  fi
  json_field "$field" <"$file" | to_mib
}
rss_per_million_chunks_mica() { footprint rss_bytes_per_million; }
lmdb_per_million_chunks_mica() { footprint lmdb_bytes_per_million; }

# The chunk suite's fio file and its target of CHUNK_COUNT committed 1 MiB chunks, both
# reused while present.
prepare_chunk() {
  mkdir -p "$BENCH_DIR"
  CHUNK_FIO_FILE="$BENCH_DIR/chunk-fio-1g.dat"
  CHUNK_TARGET="$BENCH_DIR/chunk-target"
  if [[ $(stat -c %s "$CHUNK_FIO_FILE" 2>/dev/null || echo 0) -ne $DATA_FILE_BYTES ]]; then
    log "writing the 1 GiB fio file $CHUNK_FIO_FILE"
    dd if=/dev/urandom of="$CHUNK_FIO_FILE.tmp" bs=1M count=$((DATA_FILE_BYTES >> 20)) \
      iflag=fullblock oflag=direct conv=fsync status=none
    mv "$CHUNK_FIO_FILE.tmp" "$CHUNK_FIO_FILE"
  fi
  log "preparing $CHUNK_COUNT committed 1 MiB chunks in $CHUNK_TARGET"
  chunk_bench --dir "$CHUNK_TARGET" --mode prepare --chunks "$CHUNK_COUNT" \
    >>"$LOG_DIR/chunk-prepare.log" 2>&1 || die "preparing the chunk target failed"
  rm -f "$LOG_DIR/chunk-footprint.json"
}

# storage: bench_storage; the read figures reopen the prepared data set.
storage_bench() {
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_storage" --seconds "$BENCH_SECS" "$@"
}
storage_write() {
  local replicas=$1
  storage_bench --mode write --dir "$BENCH_DIR/storage-write" --servers 3 --chains 3 \
    --replicas "$replicas" --depth "$STORAGE_DEPTH" --chunks "$STORAGE_WRITE_CHUNKS"
}
write_3rep_reference() { storage_write 1 | json_field mib_per_s; }
write_3rep_mica() { storage_write 3 | json_field mib_per_s; }
storage_read() { storage_bench --dir "$STORAGE_PREPARED" --depth "$STORAGE_DEPTH" "$@"; }
read_spread_mica() { storage_read --mode read --read-choice spread | json_field mib_per_s; }
read_spread_reference() { storage_read --mode read --read-choice head | json_field mib_per_s; }
storage_batch() {
  storage_read --batches "$STORAGE_BATCHES" --batch-items "$STORAGE_BATCH_ITEMS" "$@" |
    json_field reads_per_s
}
batch_randread_mica() { storage_batch --mode batch; }
batch_randread_reference() { storage_batch --mode engine_batch; }
resync_mica() { storage_read --mode resync | json_field mib_per_s; }
resync_reference() { storage_read --mode engine_read | json_field mib_per_s; }
resync_vs_replace_mica() { resync_mica; }
resync_vs_replace_reference() { storage_read --mode engine_replace | json_field mib_per_s; }
# A dev cluster of 3 mica-storage processes, written and read through `mica`; prints
# {"median": bytes, "max": bytes} of the processes' VmRSS.
storage_rss_run() {
  local dir="$BENCH_DIR/storage-rss" mica="$BUILD_DIR/apps/mica" log="$LOG_DIR/storage-rss.log"
  local k status=0 pid pid_file rss=()
  "$mica" dev down --dir "$dir" >>"$log" 2>&1 || true
  rm -rf "$dir"
  mkdir -p "$dir"
  head -c $((1 << 20)) /dev/urandom >"$dir/chunk.in"
  timeout "$RUN_TIMEOUT_S" "$mica" dev up --storage 3 --dir "$dir" >>"$log" 2>&1 || status=1
  for ((k = 0; status == 0 && k < STORAGE_RSS_CHUNKS; k++)); do
    "$mica" --dir "$dir" put 1 3 "$k" 0 --file "$dir/chunk.in" >>"$log" 2>&1 || status=1
    "$mica" --dir "$dir" get 1 3 "$k" 0 $((1 << 20)) --out "$dir/chunk.out" >>"$log" 2>&1 ||
      status=1
  done
  if ((status == 0)); then
    for pid_file in "$dir"/pids/storage-*.pid; do
      read -r pid _ <"$pid_file"
      rss+=("$(awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$pid/status")")
    done
  fi
  "$mica" dev down --dir "$dir" >>"$log" 2>&1 || status=1
  rm -rf "$dir"
  ((status == 0 && ${#rss[@]} == 3)) || return 1
  python3 -c 'import json, statistics, sys
v = [float(x) for x in sys.argv[1:]]
print(json.dumps({"median": statistics.median(v), "max": max(v)}))' "${rss[@]}"
}
# One cluster run per repeat serves both figures (its own run when one is measured alone).
storage_rss() {
  local field=$1 file="$LOG_DIR/storage-rss.json"
  [[ -s $file ]] || storage_rss_run >"$file" || { rm -f "$file"; return 1; }
  json_field "$field" <"$file" | to_mib
  [[ $field == max || " ${FIGURES[*]} " != *" rss_per_server_max "* ]] && rm -f "$file"
  return 0
}
rss_per_server_mica() { storage_rss median; }
rss_per_server_max_mica() { storage_rss max; }

# The storage suite's prepared data set, reused while it holds STORAGE_CHUNKS chunks.
prepare_storage() {
  mkdir -p "$BENCH_DIR"
  STORAGE_PREPARED="$BENCH_DIR/storage-prepared"
  rm -f "$LOG_DIR/storage-rss.json"
  if [[ $(cat "$STORAGE_PREPARED/prepared-chunks" 2>/dev/null || echo 0) -eq $STORAGE_CHUNKS ]]
  then
    log "reusing the prepared storage data set $STORAGE_PREPARED"
    return 0
  fi
  log "preparing $STORAGE_CHUNKS 1 MiB chunks on 3 replicas in $STORAGE_PREPARED"
  timeout $((RUN_TIMEOUT_S * 10)) "$BUILD_DIR/bench/bench_storage" --mode prepare \
    --dir "$STORAGE_PREPARED" --chunks "$STORAGE_CHUNKS" --depth "$STORAGE_DEPTH" \
    >>"$LOG_DIR/storage-prepare.log" 2>&1 || die "preparing the storage data set failed"
}

# meta: bench_meta, one fresh directory per run.
meta_bench() {
  local side=$1 op=$2 clients=$3
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_meta" --seconds "$BENCH_SECS" \
    --dir "$BENCH_DIR/meta-run" --files "$META_FILES" --entries "$META_ENTRIES" \
    --side "$side" --op "$op" --clients "$clients" | json_field ops_per_s
}
for clients in 1 8; do
  for op in create stat readdir rename unlink; do
    side=reference
    [[ $op == stat || $op == readdir ]] && side=rpc
    eval "${op}_${clients}c_mica() { meta_bench mica $op $clients; }"
    eval "${op}_${clients}c_reference() { meta_bench $side $op $clients; }"
  done
done
for op in stat readdir; do
  eval "${op}_8c_vs_kv_mica() { meta_bench mica $op 8; }"
  eval "${op}_8c_vs_kv_reference() { meta_bench reference $op 8; }"
done
meta_footprint() {
  local field=$1 file="$LOG_DIR/meta-footprint.json"
  if [[ ! -s $file ]]; then
    timeout $((RUN_TIMEOUT_S * 10)) "$BUILD_DIR/bench/bench_meta" --side mica --op footprint \
      --dir "$BENCH_DIR/meta-footprint" --files "$META_FOOTPRINT" >"$file" || return 1
    rm -rf "$BENCH_DIR/meta-footprint"
  fi
  json_field "$field" <"$file" | to_mib
}
disk_per_million_inodes_mica() { meta_footprint disk_bytes_per_million; }
rss_per_million_inodes_mica() { meta_footprint rss_bytes_per_million; }

task_roundtrip_mica() {
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_task_roundtrip" --benchmark_format=json \
    --benchmark_min_time=1 --benchmark_filter='^task_roundtrip$' |
    json_field benchmarks.0.real_time
}

# Prints the real time per iteration (ns) of the bench_metrics benchmark named $1.
metrics_bench() {
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_metrics" --benchmark_format=json \
    --benchmark_min_time=1 --benchmark_filter="^$1\$" | json_field benchmarks.0.real_time
}
metrics_counter_add_mica() { metrics_bench counter_add; }
metrics_histogram_record_mica() { metrics_bench histogram_record; }

# mgmtd: bench_mgmtd prints every placement figure of one shape; each side picks its own.
mgmtd_bench() {
  local placement=$1 disks=$2 field=$3
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_mgmtd" --placement "$placement" \
    --nodes 180 --disks "$disks" --targets-per-disk $((16 / disks)) --replicas 3 --seed 1 |
    json_field "$field"
}
lost_node_peers_mica() { mgmtd_bench mica 16 lost_node_peers; }
lost_node_peers_reference() { mgmtd_bench ring 16 lost_node_peers; }
lost_node_parallelism_mica() { mgmtd_bench mica 16 lost_node_parallelism; }
lost_node_parallelism_reference() { mgmtd_bench ring 16 lost_node_parallelism; }
lost_node_max_mean_mica() { mgmtd_bench mica 16 lost_node_max_mean; }
lost_disk_peers_mica() { mgmtd_bench mica 4 lost_disk_peers; }
lost_disk_peers_reference() { mgmtd_bench ring 4 lost_disk_peers; }
lost_disk_parallelism_mica() { mgmtd_bench mica 4 lost_disk_parallelism; }
lost_disk_parallelism_reference() { mgmtd_bench ring 4 lost_disk_parallelism; }
lost_disk_max_mean_mica() { mgmtd_bench mica 4 lost_disk_max_mean; }
node_peers_min_mica() { mgmtd_bench mica 16 node_peers_min; }
node_peers_min_reference() { mgmtd_bench ring 16 node_peers_min; }
pair_max_mica() { mgmtd_bench mica 16 pair_max; }
generate_ms_mica() { mgmtd_bench mica 16 generate_ms; }
lost_target_peers_mica() { mgmtd_bench mica 16 lost_target_peers; }
# The routing figures: bench_mgmtd_routing prints one JSON object of one side and mode.
mgmtd_routing() {
  local side=$1 mode=$2 seconds=$3 field=$4
  timeout "$RUN_TIMEOUT_S" "$BUILD_DIR/bench/bench_mgmtd_routing" --side "$side" \
    --mode "$mode" --seconds "$seconds" --in-flight 8 --nodes 180 --targets-per-node 16 \
    --replicas 3 | json_field "$field"
}
routing_full_per_s_mica() { mgmtd_routing mica full "$BENCH_SECS" fetches_per_s; }
routing_full_per_s_reference() { mgmtd_routing reference full "$BENCH_SECS" fetches_per_s; }
routing_current_per_s_mica() { mgmtd_routing mica current "$BENCH_SECS" fetches_per_s; }
routing_current_per_s_reference() {
  mgmtd_routing reference current "$BENCH_SECS" fetches_per_s
}
routing_snapshot_bytes_mica() { mgmtd_routing mica full 1 response_bytes; }

# client: bench_client against the suite's dev cluster; the engine reference alone.
readonly CLIENT_TIMEOUT_S=$((RUN_TIMEOUT_S * 20))
client_bench() {
  timeout "$CLIENT_TIMEOUT_S" "$BUILD_DIR/bench/bench_client" "$@"
}
client_mica() {
  client_bench --mgmtd "$CLIENT_MGMTD" --token-file "$CLIENT_CLUSTER/cluster.token" \
    --file-bytes "$CLIENT_FILE_BYTES" --block-bytes "$CLIENT_BLOCK_BYTES" --depth "$CLIENT_DEPTH" \
    --shards "$CLIENT_SHARDS" --shard-bytes "$CLIENT_SHARD_BYTES" --seconds "$BENCH_SECS" "$@"
}
seq_write_mica() {
  client_mica --mode seq_write | tee "$LOG_DIR/client-seq-write.json" | json_field mib_per_s
}
seq_write_reference() { storage_write 3 | json_field mib_per_s; }
seq_read_mica() { client_mica --mode seq_read | json_field mib_per_s; }
seq_read_reference() {
  timeout "$CLIENT_TIMEOUT_S" fio --name=client-seq-read --filename="$BENCH_DIR/client-fio.dat" \
    --size="$CLIENT_FILE_BYTES" --ioengine=io_uring --direct=1 --rw=read \
    --bs="$CLIENT_BLOCK_BYTES" --iodepth="$CLIENT_DEPTH" --output-format=json |
    json_field jobs.0.read.bw_bytes | to_mib
}
client_batch() {
  local side=$1 size=$2
  local shape=(--sample-bytes $((size << 10)) --batches "$CLIENT_BATCHES"
    --batch-items "$CLIENT_BATCH_ITEMS")
  if [[ $side == mica ]]; then
    client_mica --mode batch_randread "${shape[@]}" | json_field reads_per_s
  else
    client_bench --mode engine_randread --engine-dir "$BENCH_DIR/client-engine" \
      --shards "$CLIENT_SHARDS" --shard-bytes "$CLIENT_SHARD_BYTES" --depth "$CLIENT_DEPTH" \
      --seconds "$BENCH_SECS" "${shape[@]}" | json_field reads_per_s
  fi
}
for size in 4 128; do
  eval "batch_randread_${size}k_mica() { client_batch mica $size; }"
  eval "batch_randread_${size}k_reference() { client_batch reference $size; }"
done
# One latency run serves both percentiles of a repeat.
client_latency() {
  local field=$1 file="$LOG_DIR/client-latency.json"
  [[ -s $file ]] || client_mica --mode latency >"$file" || return 1
  json_field "$field" <"$file"
  [[ $field == p99_us ]] && rm -f "$file"
  return 0
}
read_4k_p50_mica() { client_latency p50_us; }
read_4k_p99_mica() { client_latency p99_us; }
# From this repeat's seq_write run (its own run when the figure is measured alone).
client_rss_mica() {
  local file="$LOG_DIR/client-seq-write.json"
  [[ -s $file ]] || client_mica --mode seq_write >"$file" || return 1
  json_field client_rss_bytes <"$file" | to_mib
  rm -f "$file"
}

# The client suite's dev cluster: a fresh one per run, stopped by cleanup.
prepare_client() {
  mkdir -p "$BENCH_DIR" "$LOG_DIR"
  CLIENT_CLUSTER="$BENCH_DIR/client-cluster"
  "$BUILD_DIR/apps/mica" dev down --dir "$CLIENT_CLUSTER" >>"$LOG_DIR/client-dev.log" 2>&1 || true
  rm -rf "$CLIENT_CLUSTER"
  rm -f "$LOG_DIR/client-seq-write.json" "$LOG_DIR/client-latency.json"
  log "starting a dev cluster (3 storage processes) in $CLIENT_CLUSTER"
  "$BUILD_DIR/apps/mica" dev up --storage 3 --dir "$CLIENT_CLUSTER" \
    >>"$LOG_DIR/client-dev.log" 2>&1 || die "mica dev up failed (see $LOG_DIR/client-dev.log)"
  CLIENT_UP=1
  CLIENT_MGMTD=$(sed -n 's/^MICA_MGMTD=//p' "$CLIENT_CLUSTER/cluster.env")
  [[ -n $CLIENT_MGMTD ]] || die "no MICA_MGMTD in $CLIENT_CLUSTER/cluster.env"
}

# ---- main ----

case "$SUITE" in
  async)
    SUITE_FIGURES=$ASYNC_FIGURES
    BUILD_TARGETS=(bench_async)
    ;;
  net)
    SUITE_FIGURES=$NET_FIGURES
    BUILD_TARGETS=(bench_net_rpc bench_async_net bench_pingpong_blocking)
    ;;
  chunk)
    SUITE_FIGURES=$CHUNK_FIGURES
    BUILD_TARGETS=(bench_chunk)
    ;;
  mgmtd)
    SUITE_FIGURES=$MGMTD_FIGURES
    BUILD_TARGETS=(bench_mgmtd bench_mgmtd_routing)
    ;;
  storage)
    SUITE_FIGURES=$STORAGE_FIGURES
    BUILD_TARGETS=(bench_storage mica mica-mgmtd mica-meta mica-storage)
    ;;
  meta)
    SUITE_FIGURES=$META_FIGURES
    BUILD_TARGETS=(bench_meta)
    ;;
  client)
    SUITE_FIGURES=$CLIENT_FIGURES
    BUILD_TARGETS=(bench_client bench_storage mica mica-mgmtd mica-meta mica-storage)
    ;;
esac
FIGURES=()
NARROWED=$(($# > 0))
if [[ $# -eq 0 ]]; then
  read -r -a FIGURES <<<"$SUITE_FIGURES"
else
  for figure in "$@"; do
    if [[ " $SUITE_FIGURES " != *" $figure "* ]]; then
      echo "bench/run.sh: unknown figure '$figure' of suite $SUITE (known: $SUITE_FIGURES)" >&2
      exit 2
    fi
    FIGURES+=("$figure")
  done
fi

# The mgmtd, storage and meta suites talk over loopback only: no fio, iperf3 or ss.
TOOLS=(fio iperf3 python3 cmake ninja ss timeout)
[[ $SUITE == mgmtd || $SUITE == storage || $SUITE == meta ]] && TOOLS=(python3 cmake ninja timeout)
[[ $SUITE == client ]] && TOOLS=(fio python3 cmake ninja timeout)
for tool in "${TOOLS[@]}"; do require_tool "$tool"; done
build "${BUILD_TARGETS[@]}"
[[ $SUITE == async ]] && prepare_data_file
[[ $SUITE == chunk ]] && prepare_chunk
[[ $SUITE == storage ]] && prepare_storage
[[ $SUITE == client ]] && prepare_client
if [[ $SUITE == meta ]]; then
  mkdir -p "$BENCH_DIR" "$LOG_DIR"
  rm -f "$LOG_DIR/meta-footprint.json"
fi

mkdir -p "$RESULTS_DIR" "$LOG_DIR"
RAW="$RESULTS_DIR/$SUITE.raw.tmp"
RUN_LOG="$LOG_DIR/$SUITE-run.log"
: >"$RAW"
: >"$RUN_LOG"
for figure in "${FIGURES[@]}"; do
  printf 'figure\t%s\t%s\t%s\t%s\t%s\n' "$figure" "${UNIT[$figure]}" \
    "${REFERENCE[$figure]}" "${TARGET[$figure]}" "${NOTE[$figure]}" >>"$RAW"
done

started=$(date +%s)
for ((rep = 1; rep <= REPEAT; rep++)); do
  log "repeat $rep/$REPEAT"
  for figure in "${FIGURES[@]}"; do
    sides=(mica)
    if [[ ${REFERENCE[$figure]} != - ]]; then
      if ((rep % 2)); then sides=(reference mica); else sides=(mica reference); fi
    fi
    for side in "${sides[@]}"; do sample "$figure" "$side" "${figure}_$side"; done
  done
done
log "measured in $(($(date +%s) - started)) s"

command="BENCH_REPEAT=$REPEAT BENCH_SECONDS=$BENCH_SECS BENCH_FILE_BUFFERS=$FILE_BUFFERS"
[[ $SUITE == meta ]] && command+=" BENCH_META_ENTRIES=$META_ENTRIES BENCH_META_FILES=$META_FILES\
 BENCH_META_FOOTPRINT=$META_FOOTPRINT"
[[ $SUITE == client ]] && command+=" BENCH_CLIENT_FILE_BYTES=$CLIENT_FILE_BYTES\
 BENCH_CLIENT_SHARD_BYTES=$CLIENT_SHARD_BYTES BENCH_CLIENT_BLOCK_BYTES=$CLIENT_BLOCK_BYTES"
command+=" bench/run.sh $SUITE"
# Only a whole-suite run replaces the committed record; a narrowed one reports beside the logs.
report="$RESULTS_DIR/$SUITE.md"
if ((NARROWED)); then
  command+=" ${FIGURES[*]}"
  report="$LOG_DIR/$SUITE-partial.md"
fi
compiler_path=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")
compiler=$("$compiler_path" --version | head -n 1)
status=0
python3 "$REPO/bench/report.py" --suite "$SUITE" --raw "$RAW" \
  --markdown "$report" --command "$command" --repeat "$REPEAT" \
  --bench-dir "$BENCH_DIR" --compiler "$compiler" || status=$?
log "wrote $report"
exit "$status"
