"""Issue 9's figures, each printed as a ratio against its baseline, measured side by side.

* ``fresh``: 40 tests each taking a fresh function sandbox and running one command, serial
  and ``-n 4``: the plugin against a hand-written conftest fixture (``Daytona().create()`` /
  ``delete()``), on a local server with a create -> started transition of `--delay` s and
  `--latency` s on every route. Runs alternate (plugin, hand-written, plugin, ...); medians.
* ``startup``: 300 trivial tests, the plugin installed but unused, against ``-p no:daytona``.
* ``deselected``: the same 300 beside 10 sandbox tests that ``-k`` deselects (local backend),
  against ``-p no:daytona`` (issue 20: nothing is imported or started for them).
* ``exec``: ``sandbox.run("true")`` against the SDK's own ``sandbox.process.exec("true")``
  on the same sandbox (no latency), calls alternating; medians.
* ``requests``: requests per test with one ``run``, from the server's per-route counters.

Prints figures, not a verdict: exit code 0 unless something errors. Each part alone:
    python bench/bench_speed.py fresh [--reps 3] [--tests 40] [--delay 1] [--latency 0.05]
    python bench/bench_speed.py startup [--reps 10]
    python bench/bench_speed.py deselected [--reps 10]
    python bench/bench_speed.py exec [--calls 40]
    python bench/bench_speed.py requests
or all of them: python bench/bench_speed.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from pytest_daytona.local import LocalServer

PLUGIN_TESTS = """
import pytest

@pytest.mark.parametrize("n", range({count}))
def test_fresh(daytona_sandbox, n):
    assert daytona_sandbox.run("true").ok
"""
HAND_CONFTEST = """
import pytest
from daytona import Daytona

@pytest.fixture(scope="session")
def client():
    return Daytona()  # DAYTONA_API_KEY / DAYTONA_API_URL from the environment

@pytest.fixture
def sandbox(client):
    made = client.create()
    yield made
    made.delete()
"""
HAND_TESTS = """
import pytest

@pytest.mark.parametrize("n", range({count}))
def test_fresh(sandbox, n):
    assert sandbox.process.exec("true").exit_code == 0
"""
TRIVIAL_TESTS = """
import pytest

@pytest.mark.parametrize("n", range(300))
def test_trivial(n):
    assert n >= 0
"""


def pytest_run(path: Path, args: Sequence[str], env: dict[str, str]) -> float:
    """Seconds one inner ``python -m pytest`` takes; fails loudly if its tests fail."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         *args],
        cwd=path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"inner run failed ({done.returncode}):\n{done.stdout[-3000:]}")
    return elapsed


def alternate(runs: dict[str, Callable[[], float]], reps: int) -> dict[str, float]:
    """Medians of `reps` rounds, each running every variant once, in turn."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            times[name].append(run())
    return {name: statistics.median(values) for name, values in times.items()}


def row(figure: str, value: float, baseline: float, unit: str, target: str) -> None:
    ratio = value / baseline if baseline else float("nan")
    print(
        f"| {figure} | {value:.3g} {unit} | {baseline:.3g} {unit} | {ratio:.2f}x | {target} |",
        flush=True,
    )


def header() -> None:
    print("| figure | plugin | baseline | ratio | target |\n|---|---|---|---|---|", flush=True)


def fresh(reps: int, count: int, delay: float, latency: float, prewarm: int | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, LocalServer(transition_delay=delay) as server:
        root = Path(tmp)
        server.set_latency("*", latency)
        plugin, hand = root / "plugin", root / "hand"
        plugin.mkdir()
        hand.mkdir()
        (plugin / "test_fresh.py").write_text(PLUGIN_TESTS.format(count=count))
        (hand / "conftest.py").write_text(HAND_CONFTEST)
        (hand / "test_fresh.py").write_text(HAND_TESTS.format(count=count))
        env = dict(os.environ, DAYTONA_API_KEY=server.token, DAYTONA_API_URL=server.api_url)
        env.pop("PYTEST_ADDOPTS", None)
        backend = ["--daytona-backend", "local"]
        if prewarm is not None:
            backend += ["--daytona-prewarm", str(prewarm)]
        for label, extra in (("serial", []), ("-n 4", ["-n", "4"])):
            medians = alternate(
                {
                    "plugin": lambda extra=extra: pytest_run(plugin, [*backend, *extra], env),
                    "hand": lambda extra=extra: pytest_run(hand, ["-p", "no:daytona", *extra], env),
                },
                reps,
            )
            speedup = medians["hand"] / medians["plugin"]
            target = "plugin >= 4x faster" if label == "serial" else "plugin >= 3x faster"
            print(
                f"| {count} fresh sandboxes, {label} ({delay:g} s create, {latency * 1000:g} ms"
                f"/request) | {medians['plugin']:.1f} s | {medians['hand']:.1f} s hand-written |"
                f" plugin {speedup:.2f}x faster | {target} |",
                flush=True,
            )


def startup(reps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        (path / "test_trivial.py").write_text(TRIVIAL_TESTS)
        env = dict(os.environ)
        env.pop("PYTEST_ADDOPTS", None)
        medians = alternate(
            {
                "plugin": lambda: pytest_run(path, [], env),
                "without": lambda: pytest_run(path, ["-p", "no:daytona"], env),
            },
            reps,
        )
        row("300 trivial tests, plugin unused", medians["plugin"], medians["without"], "s",
            "<= 1.05x `-p no:daytona`")  # fmt: skip


SANDBOX_TESTS = """
import pytest

@pytest.mark.daytona(cpu=1)
@pytest.mark.parametrize("n", range(10))
def test_sandbox(daytona_sandbox, n):
    assert daytona_sandbox.run("true").ok
"""


def deselected(reps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        (path / "test_trivial.py").write_text(TRIVIAL_TESTS)
        (path / "test_sandbox.py").write_text(SANDBOX_TESTS)
        env = dict(os.environ)
        env.pop("PYTEST_ADDOPTS", None)
        medians = alternate(
            {
                "plugin": lambda: pytest_run(path, ["--daytona-backend", "local", "-k", "trivial"],
                                             env),
                "without": lambda: pytest_run(path, ["-p", "no:daytona", "-k", "trivial"], env),
            },
            reps,
        )  # fmt: skip
        row("300 trivial tests, 10 sandbox tests deselected", medians["plugin"],
            medians["without"], "s", "<= 1.05x `-p no:daytona`")  # fmt: skip


def exec_round_trip(calls: int) -> None:
    from pytest_daytona.config.settings import Settings
    from pytest_daytona.run.coordination import RunDir
    from pytest_daytona.run.session import SandboxSession

    with tempfile.TemporaryDirectory() as tmp, LocalServer() as server:
        settings = Settings.model_validate(
            {"backend": "local", "api_url": server.api_url, "api_key": server.token,
             "prewarm": 0}
        )  # fmt: skip
        run_id = uuid.uuid4().hex
        session = SandboxSession(settings, RunDir.create(run_id, Path(tmp)), run_id=run_id)
        try:
            sandbox = session.acquire(settings)
            sandbox.run("true")  # the workspace is made by the first command
            sandbox.sdk.process.exec("true")

            def timed(fn: Callable[[], object]) -> float:
                started = time.perf_counter()
                fn()
                return time.perf_counter() - started

            medians = alternate(
                {
                    "run": lambda: timed(lambda: sandbox.run("true")),
                    "exec": lambda: timed(lambda: sandbox.sdk.process.exec("true")),
                },
                calls,
            )
            row('`run("true")`, local backend', medians["run"] * 1000, medians["exec"] * 1000,
                "ms", '<= 1.3x `sdk.process.exec("true")`')  # fmt: skip
        finally:
            session.close()


def requests_per_test() -> None:
    with tempfile.TemporaryDirectory() as tmp, LocalServer() as server:
        path = Path(tmp)
        (path / "test_fresh.py").write_text(PLUGIN_TESTS.format(count=10))
        env = dict(os.environ, DAYTONA_API_KEY=server.token, DAYTONA_API_URL=server.api_url)
        env.pop("PYTEST_ADDOPTS", None)
        pytest_run(path, ["--daytona-backend", "local"], env)
        routes = server.stats()["by_route"]
        per_run = {"GET /sandbox": 1}  # the end-of-run sweep, once per run
        per_test = {
            route: count / 10
            for route, count in routes.items()
            if route not in per_run and not route.startswith("GET /sandbox/")
        }
        waits = routes.get("GET /sandbox/{sandboxIdOrName}", 0) / 10
        row("requests per test with one run", sum(per_test.values()), 3, "requests",
            "3 + the SDK's state wait")  # fmt: skip
        print(f"  per test: {per_test}; the SDK's state-wait polls: {waits:g} per test; "
              f"once per run: {per_run}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "parts", nargs="*", default=["requests", "exec", "startup", "deselected", "fresh"]
    )
    parser.add_argument(
        "--reps", type=int, default=None, help="rounds (fresh 3, startup 10, deselected 10)"
    )
    parser.add_argument("--tests", type=int, default=40)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--prewarm", type=int, default=None, help="default: the plugin's")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {sys.platform}, Python {sys.version.split()[0]}")
    header()
    for part in args.parts:
        if part == "requests":
            requests_per_test()
        elif part == "exec":
            exec_round_trip(args.calls)
        elif part == "startup":
            startup(args.reps or 10)
        elif part == "deselected":
            deselected(args.reps or 10)
        elif part == "fresh":
            fresh(args.reps or 3, args.tests, args.delay, args.latency, args.prewarm)
        else:
            raise SystemExit(f"unknown part {part!r}")


if __name__ == "__main__":
    main()
