#!/usr/bin/env bash
# bench/chunk_suite.sh: the chunk engine's benchmark suite, with its fio references measured
# in the same run on the same disk.
#
# Usage: bench/chunk_suite.sh [FIGURE...]
#   figures: write_1m read_1m randread_4k_qd32 create_commit rss_per_million_chunks
#            lmdb_per_million_chunks
#
# Builds bench_chunk (Release, build-bench/ at the repo root), prepares a target of 1024
# committed 1 MiB chunks and a 1 GiB fio file in BENCH_DIR (both reused while present), then
# measures each figure BENCH_REPEAT times, Mica and fio interleaved (order alternating per
# repeat), and prints one JSON line per figure with the medians:
#   {"suite":"chunk","figure":"write_1m","value":V,"unit":"MiB/s","reference":"fio io_uring",
#    "reference_value":R,"ratio":V/R}
# Figures without a reference print null for reference, reference_value and ratio. The two
# footprint figures create BENCH_FOOTPRINT_CHUNKS (default 100000) chunks of 4 KiB once and
# scale the growth of resident memory and of LMDB to a million chunks.
# Progress goes to stderr; tool output to build-bench/bench-logs/chunk-run.log.
#
# Environment: BENCH_REPEAT (default 5), BENCH_SECONDS (default 5), BENCH_DIR (default
# build-bench/data), BENCH_BUILD_JOBS (default 2), BENCH_FOOTPRINT_CHUNKS (default 100000).
# Exit status: 0 ok, 1 a build or measurement failed, 2 bad usage.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly BUILD_DIR="$REPO/build-bench"
readonly LOG_DIR="$BUILD_DIR/bench-logs"
readonly ALL_FIGURES="write_1m read_1m randread_4k_qd32 create_commit rss_per_million_chunks \
lmdb_per_million_chunks"
REPEAT=${BENCH_REPEAT:-5}
SECS=${BENCH_SECONDS:-5}
BENCH_DIR=${BENCH_DIR:-$BUILD_DIR/data}
JOBS=${BENCH_BUILD_JOBS:-2}
FOOTPRINT_CHUNKS=${BENCH_FOOTPRINT_CHUNKS:-100000}
readonly SEQ_DEPTH=8 RAND_DEPTH=32 CREATE_DEPTH=64 CHUNKS=1024
readonly RUN_TIMEOUT_S=$((SECS * 4 + 60))

log() { echo "chunk_suite: $*" >&2; }
die() {
  log "$*"
  exit 1
}
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { log "BENCH_REPEAT must be >= 1"; exit 2; }
[[ $SECS =~ ^[1-9][0-9]*$ ]] || { log "BENCH_SECONDS must be >= 1"; exit 2; }

FIGURES=()
if [[ $# -eq 0 ]]; then
  read -r -a FIGURES <<<"$ALL_FIGURES"
else
  for f in "$@"; do
    if [[ " $ALL_FIGURES " != *" $f "* ]]; then
      log "unknown figure '$f' (known: $ALL_FIGURES)"
      exit 2
    fi
    FIGURES+=("$f")
  done
fi
for tool in fio python3 cmake ninja timeout; do
  command -v "$tool" >/dev/null || die "'$tool' is not installed; run scripts/install-deps.sh"
done

mkdir -p "$LOG_DIR" "$BENCH_DIR"
RUN_LOG="$LOG_DIR/chunk-run.log"
: >"$RUN_LOG"
log "building bench_chunk in $BUILD_DIR (Release, -j$JOBS)"
cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMICA_BUILD_BENCH=ON \
  >>"$RUN_LOG" 2>&1 || die "configure failed (see $RUN_LOG)"
ninja -C "$BUILD_DIR" -j "$JOBS" bench_chunk >>"$RUN_LOG" 2>&1 || die "build failed (see $RUN_LOG)"
BENCH="$BUILD_DIR/bench/bench_chunk"
TARGET="$BENCH_DIR/chunk-target"
FIO_FILE="$BENCH_DIR/chunk-fio-1g.dat"

json_field() {
  python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$1"
}

if [[ $(stat -c %s "$FIO_FILE" 2>/dev/null || echo 0) -ne $((1 << 30)) ]]; then
  log "writing the 1 GiB fio file $FIO_FILE"
  dd if=/dev/urandom of="$FIO_FILE.tmp" bs=1M count=1024 iflag=fullblock oflag=direct \
    conv=fsync status=none
  mv "$FIO_FILE.tmp" "$FIO_FILE"
fi
log "preparing $CHUNKS committed 1 MiB chunks in $TARGET"
"$BENCH" --dir "$TARGET" --mode prepare --chunks "$CHUNKS" >>"$RUN_LOG" 2>&1 ||
  die "prepare failed (see $RUN_LOG)"

fio_run() {  # rw block depth field(read|write).(bw_bytes|iops)
  timeout "$RUN_TIMEOUT_S" fio --name="chunk-$1" --filename="$FIO_FILE" --size=1g \
    --ioengine=io_uring --direct=1 --rw="$1" --bs="$2" --iodepth="$3" --norandommap \
    --randrepeat=0 --time_based --runtime="$SECS" --output-format=json 2>>"$RUN_LOG" |
    json_field "jobs.0.$4"
}
mica_run() {  # mode depth field [extra flags]
  local mode=$1 depth=$2 field=$3
  shift 3
  timeout "$RUN_TIMEOUT_S" "$BENCH" --dir "$TARGET" --mode "$mode" --chunks "$CHUNKS" \
    --depth "$depth" --seconds "$SECS" "$@" 2>>"$RUN_LOG" | json_field "$field"
}
to_mib() { python3 -c 'import sys; print(float(sys.stdin.read()) / 2**20)'; }

write_1m_mica() { mica_run write_1m "$SEQ_DEPTH" mib_per_s; }
write_1m_ref() { fio_run write 1m "$SEQ_DEPTH" write.bw_bytes | to_mib; }
read_1m_mica() { mica_run read_1m "$SEQ_DEPTH" mib_per_s; }
read_1m_ref() { fio_run read 1m "$SEQ_DEPTH" read.bw_bytes | to_mib; }
randread_4k_qd32_mica() { mica_run randread_4k "$RAND_DEPTH" ops_per_s; }
randread_4k_qd32_ref() { fio_run randread 4k "$RAND_DEPTH" read.iops; }
create_commit_mica() {
  local dir="$BENCH_DIR/chunk-create" out
  rm -rf "$dir"
  out=$(timeout "$RUN_TIMEOUT_S" "$BENCH" --dir "$dir" --mode create_commit \
    --depth "$CREATE_DEPTH" --seconds "$SECS" 2>>"$RUN_LOG") || return 1
  rm -rf "$dir"
  echo "$out" | json_field ops_per_s
}
# One run serves both footprint figures (samples run in subshells: the result is a file).
readonly FOOTPRINT_FILE="$LOG_DIR/chunk-footprint.json"
rm -f "$FOOTPRINT_FILE"
footprint() {  # field
  if [[ ! -s $FOOTPRINT_FILE ]]; then
    local dir="$BENCH_DIR/chunk-footprint"
    rm -rf "$dir"
    timeout $((RUN_TIMEOUT_S * 10)) "$BENCH" --dir "$dir" --mode footprint \
      --depth "$CREATE_DEPTH" --count "$FOOTPRINT_CHUNKS" >"$FOOTPRINT_FILE" 2>>"$RUN_LOG" ||
      return 1
    rm -rf "$dir"
  fi
  json_field "$1" <"$FOOTPRINT_FILE"
}
rss_per_million_chunks_mica() { footprint rss_bytes_per_million | to_mib; }
lmdb_per_million_chunks_mica() { footprint lmdb_bytes_per_million | to_mib; }

declare -A UNIT=([write_1m]=MiB/s [read_1m]=MiB/s [randread_4k_qd32]=IOPS
  [create_commit]="ops/s" [rss_per_million_chunks]=MiB [lmdb_per_million_chunks]=MiB)
declare -A HAS_REF=([write_1m]=1 [read_1m]=1 [randread_4k_qd32]=1)
declare -A ONCE=([rss_per_million_chunks]=1 [lmdb_per_million_chunks]=1)

sample() {  # function -> prints a number or "nan"
  local v
  if v=$("$1") && [[ $v =~ ^[0-9.e+]+$ ]]; then echo "$v"; else echo nan; fi
}
median() { python3 -c 'import statistics,sys
v=[float(x) for x in sys.argv[1:] if x != "nan"]
print(statistics.median(v) if v else "nan")' "$@"; }

status=0
for figure in "${FIGURES[@]}"; do
  mica=() ref=()
  reps=$REPEAT
  [[ -n ${ONCE[$figure]:-} ]] && reps=1
  for ((rep = 1; rep <= reps; rep++)); do
    if [[ -n ${HAS_REF[$figure]:-} ]] && ((rep % 2 == 0)); then
      ref+=("$(sample "${figure}_ref")")
      mica+=("$(sample "${figure}_mica")")
    else
      mica+=("$(sample "${figure}_mica")")
      [[ -n ${HAS_REF[$figure]:-} ]] && ref+=("$(sample "${figure}_ref")")
    fi
    log "$figure repeat $rep: mica ${mica[-1]}${HAS_REF[$figure]:+, fio ${ref[-1]:-}}"
  done
  value=$(median "${mica[@]}")
  [[ $value == nan ]] && status=1
  if [[ -n ${HAS_REF[$figure]:-} ]]; then
    refv=$(median "${ref[@]}")
    python3 -c 'import json,sys
f,u,v,r=sys.argv[1:]; v=float(v); r=float(r)
print(json.dumps({"suite":"chunk","figure":f,"value":round(v,1),"unit":u,
  "reference":"fio io_uring","reference_value":round(r,1),"ratio":round(v/r,3)},
  separators=(",",":")))' "$figure" "${UNIT[$figure]}" "$value" "$refv"
  else
    python3 -c 'import json,sys
f,u,v=sys.argv[1:]
print(json.dumps({"suite":"chunk","figure":f,"value":round(float(v),1),"unit":u,
  "reference":None,"reference_value":None,"ratio":None},separators=(",",":")))' \
      "$figure" "${UNIT[$figure]}" "$value"
  fi
done
exit $status
