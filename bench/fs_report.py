#!/usr/bin/env python3
"""The report of bench/run.sh fuse and peers (bench/fs_suite.sh calls it).

Reads the suite's samples (one line per system and round: system, round, the JSON object
bench/fs_bench.sh or bench_fs_client printed), takes each figure's median over the rounds,
prints one JSON object per figure and system on stdout (value, ratio to local ext4 in the
same run, and the issue's target where one applies) and writes the markdown table. The
peers suite also writes the medians to --peers, so the fuse suite can name the best peer of
the last peers run (its date said) for the targets set against the peers.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys

ROWS = [
    ("dd_write_mibps", "dd write 256 MiB, bs=1M, fsync", "MiB/s"),
    ("dd_read_mibps", "dd read 256 MiB, cold", "MiB/s"),
    ("layout_mibps", "fio layout write 1 GiB, 1M x1", "MiB/s"),
    ("seq_read_mibps", "fio seq read 1M x4, O_DIRECT", "MiB/s"),
    ("rand_read_iops", "fio rand read 4K x4, O_DIRECT", "IOPS"),
    ("create_ops", "create, 1 process", "ops/s"),
    ("stat_ops", "stat (cold), 1 process", "ops/s"),
    ("unlink_ops", "unlink, 1 process", "ops/s"),
    ("create8_ops", "create, 8 processes", "ops/s"),
    ("stat8_ops", "stat (cold), 8 processes", "ops/s"),
    ("unlink8_ops", "unlink, 8 processes", "ops/s"),
]
PEERS = ("moosefs", "gluster", "ceph")
# figure -> (against, factor): "local" = local ext4 in the same run, "peer" = the best peer.
TARGETS = {
    "dd_write_mibps": ("local", 0.28),
    "seq_read_mibps": ("local", 0.9),
    "rand_read_iops": ("peer", 2.0),
    "create8_ops": ("peer", 2.0),
    "stat8_ops": ("peer", 2.0),
    "unlink8_ops": ("peer", 2.0),
    "create_ops": ("peer", 1.0),
    "stat_ops": ("peer", 1.0),
    "unlink_ops": ("peer", 1.0),
}
MICA = ("mica-uring", "mica-classic")


def load(path):
    samples, order = {}, []
    with open(path) as f:
        for line in f:
            system, _, text = line.rstrip("\n").split("\t", 2)
            if system not in order:
                order.append(system)
            try:
                row = json.loads(text)
            except json.JSONDecodeError:
                row = {"failed": True}
            samples.setdefault(system, []).append(row)
    return samples, order


def medians(samples):
    out = {}
    for system, rows in samples.items():
        good = [r for r in rows if not r.get("failed")]
        out[system] = {k: statistics.median(float(r[k]) for r in good)
                       for k, _, _ in ROWS if good and all(k in r for r in good)}
        out[system]["rounds"] = len(good)
        out[system]["checksum"] = ",".join(sorted({str(r.get("checksum", "?")) for r in good}))
        out[system]["direct"] = ",".join(sorted({str(r.get("direct", "-")) for r in good}))
    return out


def best_peer(peer_medians, key):
    values = [(m[key], p) for p, m in peer_medians.items() if p in PEERS and key in m]
    return max(values) if values else None


def fmt(value):
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def machine():
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs, {mem:.0f} GiB, kernel {platform.release()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--peers", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--bench-dir", default="")
    args = ap.parse_args()
    samples, order = load(args.samples)
    med = medians(samples)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    peer_source, peer_med = "this run", med
    if args.suite == "peers":
        with open(args.peers, "w") as f:
            json.dump({"date": now, "command": args.command, "medians": med}, f, indent=1)
    elif os.path.exists(args.peers):
        with open(args.peers) as f:
            saved = json.load(f)
        peer_source, peer_med = f"the peers run of {saved['date']}", saved["medians"]
    else:
        peer_source, peer_med = "no peers run recorded", {}
    local = med.get("local", {})
    lines = [f"# bench/run.sh {args.suite}", "",
             f"Run {now} on {machine()}; `{args.command}`; medians of "
             + ", ".join(f"{s} {med[s]['rounds']}" for s in order) + " round(s).", "",
             "Each cell: the median, then its ratio to local ext4 in the same run.", "",
             "| row | " + " | ".join(order) + " |",
             "| --- |" + " --- |" * len(order)]
    failed = False
    for key, title, unit in ROWS:
        cells = []
        for system in order:
            m = med[system]
            if key not in m:
                cells.append("failed")
                failed = True
                continue
            ratio = m[key] / local[key] if local.get(key) else None
            cells.append(fmt(m[key]) + (f" ({ratio:.2f}x)" if ratio is not None else ""))
            print(json.dumps({"suite": args.suite, "figure": key, "system": system,
                              "value": m[key], "unit": unit, "local": local.get(key),
                              "ratio_to_local": ratio}))
        lines.append(f"| {title} ({unit}) | " + " | ".join(cells) + " |")
    lines.append("| sha256 of the dd read-back | "
                 + " | ".join(med[s]["checksum"] for s in order) + " |")
    lines.append("| fio O_DIRECT | " + " | ".join(med[s]["direct"] for s in order) + " |")
    if not any(s in med for s in MICA):
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines + ["", "No Mica mount in this run: no targets."]) + "\n")
        return 1 if failed else 0
    lines += ["", f"Targets (issue 14), io_uring path first, classic beside; peers from "
              f"{peer_source}:", "",
              "| row | target | threshold | " + " | ".join(s for s in MICA if s in med) + " |",
              "| --- | --- | --- |" + " --- |" * sum(s in med for s in MICA)]
    for key, title, _ in ROWS:
        if key not in TARGETS:
            continue
        against, factor = TARGETS[key]
        if against == "local":
            base, what = local.get(key), f">= {factor} x local"
        else:
            best = best_peer(peer_med, key)
            base = best[0] if best else None
            what = f">= {factor:g} x best peer" + (f" ({best[1]})" if best else "")
        threshold = base * factor if base else None
        cells = []
        for system in MICA:
            if system not in med:
                continue
            value = med[system].get(key)
            if value is None or threshold is None:
                cells.append("-")
                continue
            met = value >= threshold
            cells.append(f"{fmt(value)} {'met' if met else 'NOT met'}")
            print(json.dumps({"suite": args.suite, "figure": key, "system": system,
                              "target": what, "threshold": threshold, "met": met}))
        lines.append(f"| {title} | {what} | {fmt(threshold) if threshold else '-'} | "
                     + " | ".join(cells) + " |")
    with open(args.markdown, "w") as f:
        f.write("\n".join(lines) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
