#!/usr/bin/env bash
# bench/fs_suite.sh fuse|peers: the file-system suites of bench/run.sh (run.sh hands these two
# suites here; run it through `bench/run.sh fuse` / `bench/run.sh peers`).
#
# fuse:  bench/fs_bench.sh's rows on local ext4 (a folder in BENCH_DIR), on the Mica mount
#        with classic FUSE (mica-fuse -o uring=off) and with FUSE over io_uring (-o uring=on,
#        after setting the fuse module's enable_uring to Y), and bench_fs_client's same rows
#        through the native client; one dev cluster (`mica dev up --storage 3`: 3 replicas
#        on the one disk) serves every round, a fresh mica-fuse per mount. BENCH_REPEAT rounds
#        (default 3), the systems' order rotating between rounds; medians.
# peers: the same rows on local ext4, MooseFS, GlusterFS, CephFS (3 OSDs, pool size 3: three
#        copies like the others) and Mica (io_uring, then classic), one system running at a
#        time. The peers come from their own start/stop scripts in PEERS_DIR (start-moosefs.sh
#        and stop-moosefs.sh, -gluster, -ceph); their mount is the FUSE mount the start script
#        added. BENCH_REPEAT rounds (default 1).
# Both print one JSON object per figure and system on stdout and write the table to
# bench/results/SUITE.md (peers also its medians as JSON beside it: what the fuse suite's
# report compares with the best peer); samples and tool output go to build-bench/bench-logs/.
# Env: BENCH_REPEAT, BENCH_DIR (default build-bench/data), BENCH_BUILD_JOBS (default 2),
# BENCH_SYSTEMS (a subset of the suite's systems, e.g. "local moosefs"), PEERS_DIR (peers
# only), fs_bench.sh's knobs (DD_MB FIO_SIZE_MB FIO_JOBS FIO_RUNTIME
# META_FILES META_PROCS), MICA_FUSE_OPTIONS (extra -o options for both mounts).
# Everything started is stopped by pid (mica-fuse after its unmount; the cluster by `mica dev
# down`; a peer by its stop script). enable_uring is left Y (other mounts may use it).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly BUILD_DIR="$REPO/build-bench"
readonly LOG_DIR="$BUILD_DIR/bench-logs"
readonly RESULTS_DIR="$REPO/bench/results"
readonly FUSE_SUPER_MAGIC=65735546
readonly MOUNT_WAIT_S=60 FS_BENCH_TIMEOUT_S=1800
readonly ENABLE_URING=/sys/module/fuse/parameters/enable_uring

SUITE=${1:?usage: bench/fs_suite.sh fuse|peers}
case "$SUITE" in
  fuse) REPEAT=${BENCH_REPEAT:-3} ;;
  peers) REPEAT=${BENCH_REPEAT:-1} ;;
  *) echo "bench/fs_suite.sh: unknown suite '$SUITE' (fuse or peers)" >&2; exit 2 ;;
esac
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "bench/fs_suite.sh: BENCH_REPEAT must be >= 1" >&2; exit 2; }
BENCH_DIR=${BENCH_DIR:-$BUILD_DIR/data}
BUILD_JOBS=${BENCH_BUILD_JOBS:-2}
CLUSTER="$BENCH_DIR/fs-cluster"
MOUNT="$BENCH_DIR/fs-mnt"
SAMPLES="$LOG_DIR/$SUITE-samples.tsv"
export FS_BENCH_SRC="$BENCH_DIR/fs-bench-src"

log() { echo "bench/run.sh $SUITE: $*" >&2; }
die() { log "$*"; exit 1; }

if [[ $SUITE == peers ]]; then
  [[ -n ${PEERS_DIR:-} ]] || die "PEERS_DIR is not set: point it at the folder holding the \
peers' start-moosefs.sh / stop-moosefs.sh, start-gluster.sh / stop-gluster.sh and \
start-ceph.sh / stop-ceph.sh (e.g. PEERS_DIR=/path/to/peers bench/run.sh peers)"
  for fs in moosefs gluster ceph; do
    [[ -x $PEERS_DIR/start-$fs.sh && -x $PEERS_DIR/stop-$fs.sh ]] ||
      die "PEERS_DIR=$PEERS_DIR has no executable start-$fs.sh and stop-$fs.sh"
  done
fi
[[ $(id -u) == 0 ]] || log "not root: caches are not dropped, and io_uring FUSE may be off"
for tool in cmake ninja fio perl python3 fusermount3 findmnt timeout; do
  command -v "$tool" >/dev/null || die "'$tool' is not installed; run scripts/install-deps.sh"
done

CLUSTER_UP='' FUSE_PID='' PEER_UP=''
cleanup() {
  [[ -n $FUSE_PID ]] && stop_mount
  [[ -n $PEER_UP ]] && "$PEERS_DIR/stop-$PEER_UP.sh" >>"$LOG_DIR/peers.log" 2>&1
  if [[ -n $CLUSTER_UP ]]; then
    "$BUILD_DIR/apps/mica" dev down --dir "$CLUSTER" >>"$LOG_DIR/fs-dev.log" 2>&1 || true
  fi
  return 0
}
trap cleanup EXIT

build() {
  mkdir -p "$LOG_DIR"
  log "configuring and building in $BUILD_DIR (Release, -j$BUILD_JOBS)"
  cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMICA_BUILD_BENCH=ON \
    >"$LOG_DIR/configure.log" 2>&1 || die "cmake configure failed (see $LOG_DIR/configure.log)"
  ninja -C "$BUILD_DIR" -j "$BUILD_JOBS" "$@" >"$LOG_DIR/build.log" 2>&1 ||
    { tail -n 40 "$LOG_DIR/build.log" >&2; die "build failed (see $LOG_DIR/build.log)"; }
}

fuse_binary() {
  local candidate
  for candidate in "$BUILD_DIR/apps/mica-fuse" "$BUILD_DIR/fuse/mica-fuse"; do
    [[ -x $candidate ]] && { echo "$candidate"; return 0; }
  done
  die "no mica-fuse in $BUILD_DIR/apps or $BUILD_DIR/fuse"
}

start_cluster() {
  mkdir -p "$BENCH_DIR"
  "$BUILD_DIR/apps/mica" dev down --dir "$CLUSTER" >>"$LOG_DIR/fs-dev.log" 2>&1 || true
  rm -rf "$CLUSTER"
  log "starting a dev cluster (3 storage processes, 3 replicas) in $CLUSTER"
  "$BUILD_DIR/apps/mica" dev up --storage 3 --dir "$CLUSTER" >>"$LOG_DIR/fs-dev.log" 2>&1 ||
    die "mica dev up failed (see $LOG_DIR/fs-dev.log)"
  CLUSTER_UP=1
  MGMTD=$(sed -n 's/^MICA_MGMTD=//p' "$CLUSTER/cluster.env")
  [[ -n $MGMTD ]] || die "no MICA_MGMTD in $CLUSTER/cluster.env"
}

# start_mount off|on: mica-fuse on MOUNT with -o uring=MODE; returns once the mount answers.
start_mount() {
  local mode=$1 options="uring=$1" waited
  [[ -n ${MICA_FUSE_OPTIONS:-} ]] && options+=",$MICA_FUSE_OPTIONS"
  if [[ $mode == on && $(cat "$ENABLE_URING" 2>/dev/null) != Y ]]; then
    echo Y >"$ENABLE_URING" || die "cannot set $ENABLE_URING to Y (io_uring FUSE needs it)"
    log "set $ENABLE_URING to Y (left so)"
  fi
  mkdir -p "$MOUNT"
  "$(fuse_binary)" --mgmtd "$MGMTD" --token-file "$CLUSTER/cluster.token" "$MOUNT" \
    -o "$options" >>"$LOG_DIR/mica-fuse-uring-$mode.log" 2>&1 &
  FUSE_PID=$!
  for ((waited = 0; waited < MOUNT_WAIT_S * 10; waited++)); do
    kill -0 "$FUSE_PID" 2>/dev/null ||
      { FUSE_PID=; die "mica-fuse -o $options exited (see $LOG_DIR/mica-fuse-uring-$mode.log)"; }
    [[ $(stat -f -c %t "$MOUNT" 2>/dev/null) == "$FUSE_SUPER_MAGIC" ]] &&
      stat "$MOUNT" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "the mount at $MOUNT did not answer within $MOUNT_WAIT_S s"
}

stop_mount() {
  local waited
  fusermount3 -u "$MOUNT" 2>>"$LOG_DIR/fs-dev.log" || umount "$MOUNT" 2>/dev/null || true
  for ((waited = 0; waited < 200; waited++)); do
    kill -0 "$FUSE_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$FUSE_PID" 2>/dev/null; then
    log "mica-fuse $FUSE_PID still running 20 s after the unmount: SIGTERM"
    kill "$FUSE_PID" 2>/dev/null || true
  fi
  wait "$FUSE_PID" 2>/dev/null || true
  FUSE_PID=
}

# record SYSTEM ROUND: runs the rows on DIR (or the native client) and appends the sample.
record() {
  local system=$1 round=$2 dir=${3:-} out status=0
  log "round $round: $system"
  if [[ $system == native ]]; then
    out=$(timeout "$FS_BENCH_TIMEOUT_S" "$BUILD_DIR/bench/bench_fs_client" --mgmtd "$MGMTD" \
      --token-file "$CLUSTER/cluster.token" --dd-bytes $((${DD_MB:-256} << 20)) \
      --fio-bytes $((${FIO_SIZE_MB:-1024} << 20)) --jobs "${FIO_JOBS:-4}" \
      --files "${META_FILES:-10000}" --parallel "${META_PROCS:-8}" \
      --seconds "${FIO_RUNTIME:-10}" 2>>"$LOG_DIR/$SUITE-run.log") || status=$?
  else
    out=$(timeout "$FS_BENCH_TIMEOUT_S" "$REPO/bench/fs_bench.sh" "$dir" "$system" \
      2>>"$LOG_DIR/$SUITE-run.log") || status=$?
  fi
  if ((status != 0)); then
    log "  $system FAILED (exit $status; see $LOG_DIR/$SUITE-run.log)"
    out='{"failed": true}'
  fi
  printf '%s\t%s\t%s\n' "$system" "$round" "$out" >>"$SAMPLES"
  log "  $out"
}

record_mica() {
  local mode=$1 round=$2
  start_mount "$mode"
  record "mica-$([[ $mode == on ]] && echo uring || echo classic)" "$round" "$MOUNT"
  stop_mount
}

fuse_mounts() { findmnt -rn -o TARGET,FSTYPE | awk '$2 ~ /^fuse/ { print $1 }' | sort; }

# A peer: start, the rows on the FUSE mount its start script added, stop.
record_peer() {
  local fs=$1 round=$2 before mnt
  before=$(fuse_mounts)
  log "starting $fs ($PEERS_DIR/start-$fs.sh)"
  PEER_UP=$fs
  if ! CEPH_OSDS=3 "$PEERS_DIR/start-$fs.sh" >>"$LOG_DIR/peers.log" 2>&1; then
    log "  $fs did not start (see $LOG_DIR/peers.log)"
    printf '%s\t%s\t{"failed": true}\n' "$fs" "$round" >>"$SAMPLES"
  else
    mnt=$(comm -13 <(echo "$before") <(fuse_mounts) | head -n 1)
    if [[ -z $mnt ]]; then
      log "  $fs: no new mount appeared"
      printf '%s\t%s\t{"failed": true}\n' "$fs" "$round" >>"$SAMPLES"
    else
      record "$fs" "$round" "$mnt"
    fi
  fi
  "$PEERS_DIR/stop-$fs.sh" >>"$LOG_DIR/peers.log" 2>&1 || log "  stop-$fs.sh failed"
  PEER_UP=
}

if [[ $SUITE == fuse ]]; then
  SYSTEMS=(local mica-classic mica-uring native)
else
  SYSTEMS=(local moosefs gluster ceph mica-uring mica-classic)
fi
# BENCH_SYSTEMS narrows a run (a partial table: the report says which systems ran).
if [[ -n ${BENCH_SYSTEMS:-} ]]; then
  read -r -a narrowed <<<"$BENCH_SYSTEMS"
  for system in "${narrowed[@]}"; do
    [[ " ${SYSTEMS[*]} " == *" $system "* ]] ||
      { log "unknown system '$system' (known: ${SYSTEMS[*]})"; exit 2; }
  done
  SYSTEMS=("${narrowed[@]}")
fi
MICA_NEEDED=''
[[ " ${SYSTEMS[*]} " == *" mica-"* || " ${SYSTEMS[*]} " == *" native "* ]] && MICA_NEEDED=1
if [[ -n $MICA_NEEDED ]]; then
  targets=(mica mica-mgmtd mica-meta mica-storage bench_fs_client)
  [[ " ${SYSTEMS[*]} " == *" mica-"* ]] && targets+=(mica-fuse)
  build "${targets[@]}"
fi
mkdir -p "$LOG_DIR" "$RESULTS_DIR" "$BENCH_DIR/fs-local"
: >"$SAMPLES"
: >"$LOG_DIR/$SUITE-run.log"
[[ -n $MICA_NEEDED ]] && start_cluster
started=$(date +%s)
for ((round = 1; round <= REPEAT; round++)); do
  for ((k = 0; k < ${#SYSTEMS[@]}; k++)); do
    system=${SYSTEMS[$(((k + round - 1) % ${#SYSTEMS[@]}))]}
    case $system in
      local) record local "$round" "$BENCH_DIR/fs-local" ;;
      native) record native "$round" ;;
      mica-classic) record_mica off "$round" ;;
      mica-uring) record_mica on "$round" ;;
      *) record_peer "$system" "$round" ;;
    esac
  done
done
log "measured in $(($(date +%s) - started)) s"

command="BENCH_REPEAT=$REPEAT"
for knob in BENCH_SYSTEMS DD_MB FIO_SIZE_MB FIO_JOBS FIO_RUNTIME META_FILES META_PROCS MICA_FUSE_OPTIONS; do
  [[ -n ${!knob:-} ]] && command+=" $knob=$(printf %q "${!knob}")"
done
[[ $SUITE == peers ]] && command+=" PEERS_DIR=..."
command+=" bench/run.sh $SUITE"
python3 "$REPO/bench/fs_report.py" --suite "$SUITE" --samples "$SAMPLES" \
  --markdown "$RESULTS_DIR/$SUITE.md" --peers "$RESULTS_DIR/peers.json" --command "$command" \
  --bench-dir "$BENCH_DIR"
log "wrote $RESULTS_DIR/$SUITE.md"
