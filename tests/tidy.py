#!/usr/bin/env python3
"""Style checks that a compiler cannot make, run by ctest (label: tidy).

- lines of C++ and CMake at most 100 columns;
- every header opens with a contract paragraph (a // comment before #pragma once);
- calls that have one home stay there: io_uring_* in async/, ibv_* in net/rdma*, mdb_* in
  the LMDB wrapper (kv/lmdb*);
- no FIXME markers;
- every .cc file is built: its folder's CMakeLists globs *.cc or names the file.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODULES = ["async", "net", "kv", "chunk", "craq", "meta", "client", "fuse", "apps", "tests", "bench"]
LINE_MAX = 100
HOMES = [
    (re.compile(r"\bio_uring_[a-z_]+\s*\("), ("async/", "bench/", "tests/")),
    (re.compile(r"\bibv_[a-z_]+\s*\("), ("net/rdma", "tests/")),
    (re.compile(r"\bmdb_[a-z_]+\s*\("), ("kv/lmdb", "tests/")),
]


def sources():
    for module in MODULES:
        folder = ROOT / module
        if folder.is_dir():
            yield from sorted(p for p in folder.rglob("*") if p.suffix in (".h", ".cc"))


def cmake_mentions(path):
    for folder in [path.parent, *path.parents]:
        cmake = folder / "CMakeLists.txt"
        if cmake.exists():
            text = cmake.read_text()
            rel = path.relative_to(folder).as_posix()
            if path.name in text or rel in text:
                return True
            if "GLOB" in text and ("*.cc" in text):
                return True
        if folder == ROOT:
            break
    return False


def main():
    problems = []
    for path in sources():
        rel = path.relative_to(ROOT).as_posix()
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            if len(line) > LINE_MAX:
                problems.append(f"{rel}:{number}: line longer than {LINE_MAX} columns")
            if "FIXME" in line:
                problems.append(f"{rel}:{number}: FIXME marker")
            for pattern, homes in HOMES:
                if pattern.search(line) and not rel.startswith(homes):
                    problems.append(f"{rel}:{number}: '{pattern.pattern}' outside {homes}")
        if path.suffix == ".h" and not (lines and lines[0].startswith("//")):
            problems.append(f"{rel}:1: header does not open with a contract paragraph")
        if path.suffix == ".cc" and not cmake_mentions(path):
            problems.append(f"{rel}: not part of any CMake target")
    for cmake in ROOT.rglob("CMakeLists.txt"):
        if any(part.startswith("build") for part in cmake.relative_to(ROOT).parts):
            continue
        for number, line in enumerate(cmake.read_text().splitlines(), 1):
            if len(line) > LINE_MAX:
                problems.append(f"{cmake.relative_to(ROOT)}:{number}: line too long")
    for p in problems:
        print(p)
    print(f"tidy: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
