"""How long tests and teardowns take when one route of the API is 40 s slow.

For each route (and ``*``, every route), a local server delays every call of it by
`--latency` seconds and an inner pytest run of two sandbox tests runs with
``--daytona-timeout 2 --daytona-retry-budget 1``. Printed per route: the longest set-up, call
and teardown of a test, the end of the run (after the last test) and the whole run, against
the bound ``timeout + retry budget`` (per phase: each phase makes several calls, each bounded
on its own, and the circuit makes the later ones fail at once).

Prints figures, not a verdict: exit code 0 unless something errors.
Run: python bench/bench_faults.py [--latency 40] [--timeout 2] [--budget 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_daytona.local import LocalServer

ROUTES = (
    "POST /sandbox",
    "GET /work-dir",
    "POST /process/execute",
    "DELETE /sandbox/{sandboxIdOrName}",
    "*",
)
TESTS = """
def test_one(daytona_sandbox):
    daytona_sandbox.run("true")

def test_two(daytona_sandbox):
    daytona_sandbox.run("true")
"""
PHASES = """
import json, time

durations = {"setup": 0.0, "call": 0.0, "teardown": 0.0}
last = {}

def pytest_runtest_logreport(report):
    durations[report.when] = max(durations[report.when], report.duration)
    last["end"] = time.monotonic()

def pytest_unconfigure(config):
    durations["end_of_run"] = time.monotonic() - last.get("end", time.monotonic())
    with open("phases.json", "w") as fh:
        json.dump(durations, fh)
"""


def one_route(route: str, latency: float, timeout: float, budget: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, LocalServer() as server:
        path = Path(tmp)
        (path / "test_slow.py").write_text(TESTS)
        (path / "conftest.py").write_text(PHASES)
        server.set_latency(route, latency)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["--daytona-backend", "local", "--daytona-api-url", server.api_url]
        command += ["--daytona-timeout", str(timeout), "--daytona-retry-budget", str(budget)]
        started = time.monotonic()
        subprocess.run(
            command,
            cwd=path,
            env=dict(os.environ, DAYTONA_API_KEY=server.token),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=latency * 10,
            check=False,
        )
        phases: dict[str, float] = json.loads((path / "phases.json").read_text())
        phases["run"] = time.monotonic() - started
        server.set_latency(route, 0)
        return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=40.0)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--budget", type=float, default=1.0)
    args = parser.parse_args()
    bound = args.timeout + args.budget
    print(f"latency {args.latency:g} s; timeout {args.timeout:g} s; budget {args.budget:g} s")
    print(f"bound per API operation (timeout + budget): {bound:g} s")
    header = ("route", "setup", "call", "teardown", "end of run", "whole run")
    print(f"{header[0]:36} " + " ".join(f"{h:>10}" for h in header[1:]))
    for route in ROUTES:
        p = one_route(route, args.latency, args.timeout, args.budget)
        figures = (p["setup"], p["call"], p["teardown"], p["end_of_run"], p["run"])
        print(f"{route:36} " + " ".join(f"{f:9.2f}s" for f in figures))


if __name__ == "__main__":
    main()
