"""The project's own test suite: wall time and CPU at two xdist worker counts, side by side.

Runs ``python -m pytest -n W PATHS`` for each worker count in turn (alternating, so drift on
this machine falls on both sides), `--runs` times, and prints per run the wall seconds and
the CPU seconds the machine was busy (from /proc/stat, so every process counts: inner pytest
runs, sandboxes, the registry), then the medians and the ratio. With ``--profile`` one more
run at the last worker count prints where the CPU goes, per test file: the CPU of the test's
own process and of the child processes it waited for (`bench/suite_cpu.py`).

    .venv/bin/python bench/bench_suite.py                     # the whole suite, -n 2 vs -n 4
    .venv/bin/python bench/bench_suite.py --runs 3 tests/run  # one part
    .venv/bin/python bench/bench_suite.py --profile --runs 0  # only the CPU table
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def busy_ticks() -> int:
    """Busy clock ticks of the whole machine so far (all but idle and iowait)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def run_suite(workers: int, paths: list[str], extra: list[str]) -> tuple[float, float, int]:
    """One run: (wall seconds, busy CPU seconds, pytest's exit code)."""
    hz = os.sysconf("SC_CLK_TCK")
    busy0 = busy_ticks()
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers),
         *extra, *paths],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )  # fmt: skip
    wall = time.monotonic() - start
    if done.returncode:
        print("\n".join(done.stdout.splitlines()[-15:]))
    busy1 = busy_ticks()
    return wall, (busy1 - busy0) / hz, done.returncode


def profile(workers: int, paths: list[str]) -> None:
    """One run with `bench/suite_cpu.py` loaded; the files that cost the most CPU."""
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "SUITE_CPU_DIR": out, "PYTHONPATH": str(REPO)}
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
             "bench.suite_cpu", "-n", str(workers), *paths],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            check=False,
        )  # fmt: skip
        files: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
        for part in Path(out).iterdir():
            for line in part.read_text().splitlines():
                own, kids, wall, nodeid = line.split(" ", 3)
                row = files[nodeid.split("::")[0]]
                row[0] += float(own)
                row[1] += float(kids)
                row[2] += float(wall)
                row[3] += 1
    total = sum(r[0] + r[1] for r in files.values())
    print(f"\nCPU by test file (-n {workers}; own = the test's process, children = the")
    print("processes it waited for, e.g. inner pytest runs); total "
          f"{total:.0f} CPU-s over {sum(int(r[3]) for r in files.values())} tests")  # fmt: skip
    print(f"{'own s':>7} {'child s':>8} {'share':>6} {'wall s':>7} {'tests':>5}  file")
    for name, (own, kids, wall, count) in sorted(files.items(), key=lambda i: -sum(i[1][:2]))[:15]:
        share = (own + kids) / total if total else 0
        print(f"{own:7.1f} {kids:8.1f} {share:6.1%} {wall:7.1f} {int(count):5d}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["tests"])
    parser.add_argument("--runs", type=int, default=3, help="runs per worker count")
    parser.add_argument("--workers", default="2,4", help="worker counts to compare")
    parser.add_argument("--profile", action="store_true", help="also print the CPU table")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    walls: dict[int, list[float]] = defaultdict(list)
    cpus: dict[int, list[float]] = defaultdict(list)
    shown = ", ".join(map(str, counts))
    print(f"pytest {' '.join(args.paths)}: {args.runs} runs each at -n {shown}")
    for number in range(args.runs):
        for workers in counts:
            wall, cpu, code = run_suite(workers, args.paths, [])
            walls[workers].append(wall)
            cpus[workers].append(cpu)
            print(f"  run {number + 1} -n {workers}: {wall:6.1f} s wall, {cpu:6.1f} CPU-s busy"
                  f" (exit {code})")  # fmt: skip
    if args.runs:
        base = statistics.median(walls[counts[0]])
        for workers in counts:
            wall, cpu = statistics.median(walls[workers]), statistics.median(cpus[workers])
            print(f"median -n {workers}: {wall:6.1f} s wall, {cpu:6.1f} CPU-s busy, "
                  f"{wall / base:.2f} of -n {counts[0]}")  # fmt: skip
    if args.profile:
        profile(counts[-1], args.paths)


if __name__ == "__main__":
    main()
