#!/usr/bin/env bash
# bench/fs_bench.sh DIR [LABEL]: the file-system rows of bench/run.sh fuse and peers, run on
# any folder (a FUSE mount, a peer's mount, plain local ext4).
#
# The same rows, tools and sizes as the peers' own peer-bench.sh (kept beside the peers'
# start scripts, outside this repository), so figures compare with theirs; written here
# instead of called because the repository must run where that script is absent, because
# bench/run.sh needs a machine-readable row per figure, and because the issue adds a
# metadata phase with several processes in parallel that peer-bench.sh does not have:
#   1. dd: a DD_MB MiB random file (its source kept in the page cache) written bs=1M
#      conv=fsync; caches dropped; read back to /dev/null; sha256 compared with the source.
#   2. fio, psync: a FIO_SIZE_MB file laid out (1 job, 1 MiB writes, end_fsync), then with
#      caches dropped FIO_JOBS jobs x FIO_RUNTIME s of O_DIRECT reads: sequential 1 MiB (each
#      job its own quarter) and random 4 KiB (each job the whole file). Where O_DIRECT fails
#      the reads are buffered and the row says direct=0.
#   3. metadata: create, stat, unlink META_FILES empty files in one directory, one perl
#      process per phase, caches dropped between phases (stat is cold in the kernel).
#   4. the same three phases with META_PROCS perl processes at once, each in its own
#      directory with META_FILES / META_PROCS files (the phase's wall time counts).
# Prints a table on stderr and one JSON object on stdout (keys: label, fstype, direct,
# checksum, dd_write_mibps, dd_read_mibps, layout_mibps, seq_read_mibps, rand_read_iops,
# create_ops, stat_ops, unlink_ops, create8_ops, stat8_ops, unlink8_ops). Writes only under
# DIR/fs-bench.PID (removed after) and FS_BENCH_SRC (the dd source, kept for reuse). Root
# drops the caches; otherwise "cold" is not cold and the table says so. Exit: 0 ok, 1 a step
# failed, 2 the read-back checksum differed.
# Env: DD_MB=256 FIO_SIZE_MB=1024 FIO_JOBS=4 FIO_RUNTIME=10 FIO_DIRECT=1 META_FILES=10000
# META_PROCS=8 FS_BENCH_SRC=${TMPDIR:-/tmp}/fs-bench-src.
set -euo pipefail

DIR=${1:?usage: bench/fs_bench.sh DIR [LABEL]}
LABEL=${2:-$(basename "$DIR")}
DD_MB=${DD_MB:-256}
FIO_SIZE_MB=${FIO_SIZE_MB:-1024}
FIO_JOBS=${FIO_JOBS:-4}
FIO_RUNTIME=${FIO_RUNTIME:-10}
FIO_DIRECT=${FIO_DIRECT:-1}
META_FILES=${META_FILES:-10000}
META_PROCS=${META_PROCS:-8}
SRC_DIR=${FS_BENCH_SRC:-${TMPDIR:-/tmp}/fs-bench-src}

log() { echo "fs_bench[$LABEL]: $*" >&2; }
die() { log "$*"; exit 1; }
[[ -d $DIR ]] || die "$DIR is not a directory"
for tool in dd fio perl python3 sha256sum findmnt; do
  command -v "$tool" >/dev/null || die "'$tool' is not installed"
done

WORK="$DIR/fs-bench.$$"
cleanup() { rm -rf "$WORK" 2>/dev/null || true; }
trap cleanup EXIT
mkdir -p "$WORK" "$SRC_DIR"

COLD=yes
drop_caches() {
  sync
  if [[ -w /proc/sys/vm/drop_caches ]]; then
    echo 3 >/proc/sys/vm/drop_caches
  else
    COLD="no (not root: caches not dropped)"
  fi
}
now_ns() { date +%s%N; }
# rate AMOUNT NANOSECONDS [DIVISOR]: AMOUNT / DIVISOR per second, one decimal.
rate() { awk -v a="$1" -v ns="$2" -v d="${3:-1}" 'BEGIN { printf "%.1f", a / d / (ns / 1e9) }'; }

# ---- 1. dd ----
src="$SRC_DIR/src-${DD_MB}M.bin"
if [[ $(stat -c %s "$src" 2>/dev/null || echo 0) -ne $((DD_MB << 20)) ]]; then
  head -c $((DD_MB << 20)) /dev/urandom >"$src.tmp"
  mv "$src.tmp" "$src"
fi
src_sum=$(sha256sum <"$src" | cut -d' ' -f1)
cat "$src" >/dev/null
t0=$(now_ns)
dd if="$src" of="$WORK/dd.bin" bs=1M conv=fsync status=none || die "dd write failed"
dd_write=$(rate $((DD_MB << 20)) $(($(now_ns) - t0)) 1048576)
drop_caches
t0=$(now_ns)
dd if="$WORK/dd.bin" of=/dev/null bs=1M status=none || die "dd read failed"
dd_read=$(rate $((DD_MB << 20)) $(($(now_ns) - t0)) 1048576)
drop_caches
checksum=MISMATCH
[[ $(sha256sum <"$WORK/dd.bin" | cut -d' ' -f1) == "$src_sum" ]] && checksum=OK
rm -f "$WORK/dd.bin"

# ---- 2. fio ----
fio_file="$WORK/fio.dat"
t0=$(now_ns)
fio --name=layout --filename="$fio_file" --rw=write --bs=1M --size="${FIO_SIZE_MB}M" \
  --ioengine=psync --end_fsync=1 --output=/dev/null || die "fio layout failed"
layout=$(rate $((FIO_SIZE_MB << 20)) $(($(now_ns) - t0)) 1048576)
direct=$FIO_DIRECT
# fio_read RW BS SIZE OFFSET_INCREMENT FIELD: the group's read.FIELD (bw_bytes or iops).
fio_read() {
  local out attempt
  for attempt in 1 2; do
    drop_caches
    if out=$(fio --name=fsb --filename="$fio_file" --ioengine=psync --group_reporting \
      --rw="$1" --bs="$2" --size="$3" --offset_increment="$4" --numjobs="$FIO_JOBS" \
      --time_based --runtime="$FIO_RUNTIME" --direct="$direct" --invalidate=1 \
      --output-format=json 2>"$WORK/fio.err"); then
      python3 -c 'import json, sys; print(json.load(sys.stdin)["jobs"][0]["read"][sys.argv[1]])' \
        "$5" <<<"$out"
      return 0
    fi
    [[ $direct == 1 && $attempt == 1 ]] || break
    log "fio with O_DIRECT failed ($(head -c 300 "$WORK/fio.err")); buffered reads instead"
    direct=0
  done
  cat "$WORK/fio.err" >&2
  return 1
}
quarter=$((FIO_SIZE_MB / FIO_JOBS))
seq_bytes=$(fio_read read 1M "${quarter}M" "${quarter}M" bw_bytes) || die "fio seq read failed"
seq_read=$(awk -v b="$seq_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
rand_iops=$(fio_read randread 4k "${FIO_SIZE_MB}M" 0 iops) || die "fio rand read failed"
rand_iops=$(printf '%.0f' "$rand_iops")
rm -f "$fio_file"

# ---- 3 and 4. metadata ----
# meta_proc PHASE DIR COUNT: one process doing PHASE on DIR/f0 .. DIR/f(COUNT-1).
meta_proc() {
  perl -e '
    my ($phase, $dir, $n) = @ARGV;
    for my $i (0 .. $n - 1) {
      my $path = "$dir/f$i";
      if ($phase eq "create") {
        open(my $fh, ">", $path) or die "create $path: $!\n";
        close($fh) or die "close $path: $!\n";
      } elsif ($phase eq "stat") {
        stat($path) or die "stat $path: $!\n";
      } else {
        unlink($path) or die "unlink $path: $!\n";
      }
    }' "$@"
}
# meta_rates PROCS: "create stat unlink" ops/s of META_FILES files over PROCS processes.
meta_rates() {
  local procs=$1 phase p t0 per failed out=() pids
  per=$((META_FILES / procs))
  for ((p = 0; p < procs; p++)); do mkdir -p "$WORK/meta$procs/d$p"; done
  for phase in create stat unlink; do
    drop_caches
    pids=()
    t0=$(now_ns)
    for ((p = 0; p < procs; p++)); do
      meta_proc "$phase" "$WORK/meta$procs/d$p" "$per" &
      pids+=($!)
    done
    failed=0
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
    ((failed == 0)) || { log "metadata $phase with $procs processes failed"; return 1; }
    out+=("$(rate $((per * procs)) $(($(now_ns) - t0)))")
  done
  echo "${out[*]}"
}
read -r create stat unlink <<<"$(meta_rates 1)" || die "metadata phases failed"
read -r create8 stat8 unlink8 <<<"$(meta_rates "$META_PROCS")" ||
  die "parallel metadata phases failed"
[[ -n $unlink && -n $unlink8 ]] || die "metadata phases failed"

# ---- report ----
fstype=$(findmnt -no FSTYPE -T "$DIR" 2>/dev/null || echo "?")
{
  printf '== fs_bench %s: %s (%s), O_DIRECT=%s, %s fio jobs x %s s, caches dropped: %s\n' \
    "$LABEL" "$DIR" "$fstype" "$direct" "$FIO_JOBS" "$FIO_RUNTIME" "$COLD"
  printf '  %-40s %10s MiB/s\n' "dd write ${DD_MB} MiB bs=1M fsync" "$dd_write"
  printf '  %-40s %10s MiB/s  sha256 %s\n' "dd read ${DD_MB} MiB cold" "$dd_read" "$checksum"
  printf '  %-40s %10s MiB/s\n' "fio layout write ${FIO_SIZE_MB} MiB 1M x1" "$layout"
  printf '  %-40s %10s MiB/s\n' "fio seq read 1M x$FIO_JOBS" "$seq_read"
  printf '  %-40s %10s IOPS\n' "fio rand read 4K x$FIO_JOBS" "$rand_iops"
  printf '  %-40s %10s %10s %10s ops/s\n' "create/stat/unlink $META_FILES, 1 proc" \
    "$create" "$stat" "$unlink"
  printf '  %-40s %10s %10s %10s ops/s\n' "create/stat/unlink, $META_PROCS procs" \
    "$create8" "$stat8" "$unlink8"
} >&2
printf '{"label": "%s", "fstype": "%s", "direct": %s, "checksum": "%s", ' \
  "$LABEL" "$fstype" "$direct" "$checksum"
printf '"dd_write_mibps": %s, "dd_read_mibps": %s, "layout_mibps": %s, ' \
  "$dd_write" "$dd_read" "$layout"
printf '"seq_read_mibps": %s, "rand_read_iops": %s, ' "$seq_read" "$rand_iops"
printf '"create_ops": %s, "stat_ops": %s, "unlink_ops": %s, ' "$create" "$stat" "$unlink"
printf '"create8_ops": %s, "stat8_ops": %s, "unlink8_ops": %s}\n' \
  "$create8" "$stat8" "$unlink8"
[[ $checksum == OK ]] || exit 2
