#!/usr/bin/env python3
"""report.py: turns the raw samples of one `bench/run.sh SUITE` run into its figures.

run.sh appends one tab-separated line per measurement to a raw file:
    sample  FIGURE  SIDE  VALUE        (SIDE is "mica" or "reference"; VALUE "nan" = failed)
and one line per figure describing it:
    figure  FIGURE  UNIT  REFERENCE  TARGET  NOTE   (REFERENCE "-" = no reference)
This script takes the median of each side, prints one JSON object per figure on stdout
(the contract other checks parse) and writes the same rows, the machine's description and
the reproducing command to a markdown file. Exit status 1 if any figure has no value.
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys


def read_raw(path):
    figures = {}  # name -> description; dict keeps the order figures were declared in
    samples = {}  # (name, side) -> [values]
    with open(path, encoding="utf-8") as raw:
        for line in raw:
            fields = line.rstrip("\n").split("\t")
            if fields[0] == "figure":
                _, name, unit, reference, target, note = fields
                figures[name] = {
                    "unit": unit,
                    "reference": None if reference == "-" else reference,
                    "target": None if target == "-" else float(target),
                    "note": note,
                }
            elif fields[0] == "sample":
                _, name, side, value = fields
                samples.setdefault((name, side), []).append(float(value))
            else:
                raise SystemExit(f"report.py: bad raw line: {line!r}")
    return figures, samples


def median_of(values):
    """Median of the successful runs; None if every run failed."""
    good = [v for v in values if not math.isnan(v)]
    return statistics.median(good) if good else None


def rounded(value):
    if value is None:
        return None
    return round(value) if abs(value) >= 100 else round(value, 2)


def make_rows(suite, figures, samples):
    rows = []
    for name, fig in figures.items():
        mica = median_of(samples.get((name, "mica"), []))
        row = {"suite": suite, "figure": name, "value": rounded(mica), "unit": fig["unit"],
               "reference": fig["reference"], "reference_value": None, "ratio": None}
        if fig["reference"] is not None:
            ref = median_of(samples.get((name, "reference"), []))
            row["reference_value"] = rounded(ref)
            if mica is not None and ref:
                # Every referenced figure is a rate (higher is better): ratio = Mica / reference.
                row["ratio"] = round(mica / ref, 3)
        rows.append(row)
    return rows


def first_line(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=False).stdout
        return out.strip().splitlines()[0] if out.strip() else "unknown"
    except OSError:
        return "unknown"


def load_average():
    try:
        with open("/proc/loadavg", encoding="utf-8") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def shown_dir(path):
    """The bench folder as a results file shows it (never a machine path): relative to the
    repository when inside it, else only its last component."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    full = os.path.abspath(path)
    if full == repo or full.startswith(repo + os.sep):
        return os.path.relpath(full, repo)
    return ".../" + os.path.basename(full.rstrip(os.sep))


def machine(bench_dir, compiler):
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    df = subprocess.run(["df", "--output=source,fstype", bench_dir], capture_output=True,
                        text=True, check=False).stdout.strip().splitlines()
    fs = df[-1] if len(df) > 1 else "unknown"
    return [
        ("CPU", cpu),
        ("Cores (online)", str(os.cpu_count())),
        ("Memory", f"{mem_kib / 2**20:.1f} GiB"),
        ("Kernel", platform.release()),
        ("Bench dir file system", f"{shown_dir(bench_dir)} on {' '.join(fs.split())}"),
        ("Date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        # A shared machine's other work shows here: timed figures are noisy when it is high.
        ("Load average (1, 5, 15 min) when written", load_average()),
        ("Compiler", compiler),
        ("fio", first_line(["fio", "--version"])),
        ("iperf3", first_line(["iperf3", "--version"])),
    ]


def cell(value):
    return "–" if value is None else str(value)


def write_markdown(path, suite, rows, figures, samples, args):
    lines = [
        f"# Benchmark suite `{suite}`",
        "",
        "Written by `bench/run.sh`; do not edit by hand. Each value is the median of "
        f"{args.repeat} runs; Mica and its reference ran interleaved in the same run.",
        "",
        "Reproduce (from the repository root):",
        "",
        "```sh",
        args.command,
        "```",
        "",
        "| figure | Mica | unit | reference | reference value | ratio | target |",
        "|---|---:|---|---|---:|---:|---:|",
    ]
    for row in rows:
        target = figures[row["figure"]]["target"]
        lines.append(
            f"| {row['figure']} | {cell(row['value'])} | {row['unit']} | "
            f"{cell(row['reference'])} | {cell(row['reference_value'])} | "
            f"{cell(row['ratio'])} | {'≥ ' + str(target) if target is not None else '–'} |")
    lines += ["", "## What each figure measures", ""]
    for name, fig in figures.items():
        lines.append(f"- **{name}**: {fig['note']}")
    lines += ["", "## All samples", "", "| figure | side | samples |", "|---|---|---|"]
    for (name, side), values in samples.items():
        shown = ", ".join("failed" if math.isnan(v) else str(rounded(v)) for v in values)
        lines.append(f"| {name} | {side} | {shown} |")
    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    for key, value in machine(args.bench_dir, args.compiler):
        lines.append(f"| {key} | {value} |")
    lines += ["", "JSON rows:", "", "```json"]
    lines += [json.dumps(row, separators=(",", ":")) for row in rows]
    lines += ["```", ""]
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--raw", required=True)
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--repeat", required=True)
    parser.add_argument("--bench-dir", required=True)
    parser.add_argument("--compiler", required=True)
    args = parser.parse_args()

    figures, samples = read_raw(args.raw)
    rows = make_rows(args.suite, figures, samples)
    for row in rows:
        print(json.dumps(row, separators=(",", ":")), flush=True)
    write_markdown(args.markdown, args.suite, rows, figures, samples, args)
    return 1 if any(row["value"] is None for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
