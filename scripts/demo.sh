#!/usr/bin/env bash
# The README's main-job command: a mounted 3-replica Mica cluster from a fresh build, used
# the way a training job uses it. Installs the dependencies, builds the programs (Release,
# build-demo/), brings up mgmtd, one mica-meta, three mica-storage processes and the FUSE
# daemon with `mica dev up --mount` (a generated cluster token, free ports, one folder),
# writes a small data set of shard files through the mount (16 x 8 MiB, each fsynced),
# reads samples back at random through the mount (O_DIRECT, so the page cache cannot
# answer) and through the native client (client/examples/random_reader.cc), checking every
# sample against a local copy, prints `mica status` and the rates it measured, and leaves
# the cluster running and mounted, saying how to stop it. Runnable from any directory;
# MICA_DEMO_DIR chooses the cluster's folder (default ./mica-dev under the repository) and
# MICA_DEMO_MOUNT the mount point (default DIR/mnt). The first run spends most of its
# minutes compiling; the cluster itself is up within seconds.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dir=${MICA_DEMO_DIR:-$root/mica-dev}
mnt=${MICA_DEMO_MOUNT:-$dir/mnt}
build=$root/build-demo
shards=16
shard_mib=8

"$root/scripts/install-deps.sh"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMICA_BUILD_BENCH=OFF
# `mica dev up` starts mica-mgmtd, mica-meta, mica-storage and mica-fuse from beside `mica`.
ninja -C "$build" -j 2 mica mica-fuse client_example_random_reader
mica=$build/apps/mica
reader=$build/client/examples/random_reader

echo "demo: bringing up mgmtd, one meta process, 3 storage nodes (3 replicas) in $dir,"
echo "demo: mounted at $mnt"
# On a cluster already running (an earlier demo) this mounts it again if its mount died.
"$mica" dev up --storage 3 --dir "$dir" --mount "$mnt"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/local"
for i in $(seq -w 1 $shards); do
  head -c $((shard_mib << 20)) /dev/urandom > "$work/local/shard-$i.bin"
done

# now_ns / rate MIB SECONDS: timing in the shell, rates in awk.
now_ns() { date +%s%N; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f MiB/s", b / (s > 0 ? s : 1e-9) }'; }

echo "demo: writing $shards shard files of $shard_mib MiB through the mount (dd, fsync each)"
mkdir -p "$mnt/datasets/shards"
start=$(now_ns)
for f in "$work"/local/shard-*.bin; do
  dd if="$f" of="$mnt/datasets/shards/$(basename "$f")" bs=1M conv=fsync status=none
done
write_s=$(awk -v a="$start" -v b="$(now_ns)" 'BEGIN { print (b - a) / 1e9 }')
write_rate=$(rate $((shards * shard_mib)) "$write_s")
echo "demo: wrote $((shards * shard_mib)) MiB in ${write_s} s: $write_rate"
ls -l "$mnt/datasets/shards" | head -4
echo "  ..."

echo "demo: reading 2,000 random 128 KiB samples through the mount (O_DIRECT), checked"
mount_line=$(python3 - "$mnt/datasets/shards" "$work/local" <<'EOF'
import mmap, os, random, sys, time
mount_dir, local_dir = sys.argv[1], sys.argv[2]
names = sorted(os.listdir(local_dir))
sample, count = 128 << 10, 2000
buffer = mmap.mmap(-1, sample)  # page-aligned, as O_DIRECT wants
fds = {n: os.open(os.path.join(mount_dir, n), os.O_RDONLY | os.O_DIRECT) for n in names}
picks = random.Random(1)
plan = []
for _ in range(count):
    name = picks.choice(names)
    size = os.path.getsize(os.path.join(local_dir, name))
    plan.append((name, picks.randrange(0, (size - sample) // 4096 + 1) * 4096))
start = time.monotonic()
for name, offset in plan:
    if os.preadv(fds[name], [buffer], offset) != sample:
        sys.exit(f"short read of {name} at {offset}")
    with open(os.path.join(local_dir, name), "rb") as local:
        local.seek(offset)
        if local.read(sample) != buffer[:]:
            sys.exit(f"{name} at offset {offset} differs from the bytes written")
seconds = time.monotonic() - start
print(f"read {count} samples ({count * sample >> 20} MiB) in {seconds:.3f} s: "
      f"{count * sample / (1 << 20) / seconds:.1f} MiB/s, every sample matches")
EOF
)
echo "demo: mount:         $mount_line"

echo "demo: reading 3,200 random 128 KiB samples through the native client (read_batch)"
mgmtd=$(sed -n 's/^MICA_MGMTD=//p' "$dir/cluster.env")
native_line=$("$reader" --mgmtd "$mgmtd" --token-file "$dir/cluster.token" --batch 32 \
  --batches 100 --verify "$work/local" /datasets/shards)
echo "demo: native client: $native_line"

echo "demo: mica status"
"$mica" --dir "$dir" status

echo
echo "demo: rates: write through the mount $write_rate;"
echo "demo:        random reads, mount: ${mount_line#*: }"
echo "demo:        random reads, native client: ${native_line#*: }"
echo "demo: the cluster keeps running, mounted at $mnt (logs in $dir/logs)."
echo "demo: use it: ls $mnt; $mica --dir $dir status"
echo "demo: stop it (unmounts, then stops every process it started):"
echo "demo:   $mica dev down --dir $dir"
