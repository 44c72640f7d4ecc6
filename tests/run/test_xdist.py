"""Sharing across xdist workers, reuse across runs, concurrent runs (counts from the server)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from pytest_daytona.local import LocalServer

SESSION_TESTS = """
import os

def _use(sb):
    assert sb.run("echo shared").stdout == "shared\\n"
    sb.write_text(f"seen-by-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", "1")

def test_one(daytona_session_sandbox):
    _use(daytona_session_sandbox)

def test_two(daytona_session_sandbox):
    _use(daytona_session_sandbox)
"""

STATS_AT_CLOSE = """
import json
import pytest
from pytest_daytona.fixtures import SESSION_KEY

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    backend = session.config.stash[SESSION_KEY].backend
    stop_server = backend.close

    def record_then_close():  # the controller's server is still up here
        if backend.server is not None:
            with open("stats.json", "w") as fh:
                json.dump(backend.server.stats(), fh)
        stop_server()

    backend.close = record_then_close
"""


def external(server: LocalServer, *args: str) -> list[str]:
    return ["--daytona-backend", "local", "--daytona-api-url", server.api_url, *args]


@pytest.fixture
def key_env(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", server.token)


def states(server: LocalServer) -> dict[str, str]:
    return dict(server.stats()["states"])


def test_n4_shares_one_session_sandbox_and_deletes_it(
    pytester: pytest.Pytester, server: LocalServer, key_env: None
) -> None:
    pytester.makepyfile(SESSION_TESTS)
    result = pytester.runpytest_subprocess(*external(server, "-n", "4", "--dist", "each"))
    result.assert_outcomes(passed=8)  # every test on every one of the 4 workers
    stats = server.stats()
    assert stats["creates"] == 1
    assert stats["live"] == 0
    assert stats["by_route"]["DELETE /sandbox/{sandboxIdOrName}"] == 1


def test_reuse_across_runs_changed_settings_and_fresh(
    pytester: pytest.Pytester, server: LocalServer, key_env: None
) -> None:
    pytester.makepyfile(SESSION_TESTS)
    # Two workers share the reused sandbox (four: test_n4_shares_one_session_sandbox...).
    reuse = external(server, "-n", "2", "--dist", "each", "--daytona-reuse")

    pytester.runpytest_subprocess(*reuse).assert_outcomes(passed=4)
    first = server.stats()
    assert first["creates"] == 1 and first["live"] == 1
    (kept,) = first["states"].items()
    assert kept[1] == "stopped"

    pytester.runpytest_subprocess(*reuse).assert_outcomes(passed=4)
    second = server.stats()
    assert second["creates"] == 1  # 0 new creates
    assert second["by_route"]["POST /sandbox/{sandboxIdOrName}/start"] == 1
    assert second["states"] == {kept[0]: "stopped"}

    pytester.runpytest_subprocess(*reuse, "--daytona-env", "CHANGED=1").assert_outcomes(passed=4)
    third = server.stats()
    assert third["creates"] == 2  # 1 create
    assert kept[0] not in third["states"]  # the old one destroyed
    (changed,) = third["states"]

    pytester.runpytest_subprocess(
        *reuse, "--daytona-env", "CHANGED=1", "--daytona-fresh"
    ).assert_outcomes(passed=4)
    fourth = server.stats()
    assert fourth["creates"] == 3
    assert changed not in fourth["states"] and len(fourth["states"]) == 1


def test_killed_worker_still_gets_everything_released(
    pytester: pytest.Pytester, server: LocalServer, key_env: None
) -> None:
    pytester.makepyfile(
        """
        import os

        def test_dies(daytona_session_sandbox, daytona_sandbox):
            daytona_session_sandbox.write_text("before-crash", "x")
            os._exit(3)

        def test_other_0(daytona_session_sandbox):
            assert daytona_session_sandbox.run("echo ok").stdout == "ok\\n"

        def test_other_1(daytona_session_sandbox):
            assert daytona_session_sandbox.run("echo ok").stdout == "ok\\n"
        """
    )
    result = pytester.runpytest_subprocess(*external(server, "-n", "2"))
    result.assert_outcomes(passed=2, failed=1)  # xdist reports the crashed test as failed
    stats = server.stats()
    assert stats["creates"] == 2  # the session sandbox (once) and the function sandbox
    assert stats["live"] == 0  # both released by the controller; nothing left running
    assert stats["by_route"]["DELETE /sandbox/{sandboxIdOrName}"] == 2


@pytest.mark.quick
def test_function_sandboxes_per_worker(
    pytester: pytest.Pytester, server: LocalServer, key_env: None
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_fn(daytona_sandbox, n):
            assert daytona_sandbox.sdk.labels["pytest-daytona-worker"].startswith("gw")
        """
    )
    pytester.runpytest_subprocess(*external(server, "-n", "3")).assert_outcomes(passed=6)
    assert server.stats()["creates"] == 6
    assert server.stats()["live"] == 0


def test_two_concurrent_runs_with_one_reuse_key_never_share(
    pytester: pytest.Pytester, server: LocalServer, key_env: None
) -> None:
    pytester.makepyfile(
        """
        import os
        import pathlib
        import time

        def test_hold(daytona_session_sandbox):
            print("SANDBOX", daytona_session_sandbox.id)
            # A barrier: hold the sandbox until the other run holds its own (bounded wait).
            barrier = pathlib.Path("barrier")
            barrier.mkdir(exist_ok=True)
            (barrier / str(os.getpid())).touch()
            deadline = time.monotonic() + 90
            while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(list(barrier.iterdir())) == 2, "the other run never got its sandbox"
        """
    )
    args = external(server, "--daytona-reuse", "--daytona-reuse-key", "matrix-cell", "-s")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    runs = [
        subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    ids = [line.split()[-1] for out in outputs for line in out.splitlines() if "SANDBOX" in line]
    assert len(ids) == 2 and ids[0] != ids[1]
    assert sorted(states(server).values()) == ["stopped", "stopped"]


def _embedded_run(pytester: pytest.Pytester, *args: str) -> dict[str, Any]:
    result = pytester.runpytest_subprocess(
        "--daytona-backend", "local", "-n", "2", "--dist", "each", *args
    )
    result.assert_outcomes(passed=4)  # both tests on both workers
    stats: dict[str, Any] = json.loads((pytester.path / "stats.json").read_text())
    return stats


def test_embedded_server_is_shared_by_all_workers_and_kept_for_reuse(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(STATS_AT_CLOSE)
    pytester.makepyfile(SESSION_TESTS)
    plain = _embedded_run(pytester)
    assert (plain["creates"], plain["live"]) == (1, 0)

    first = _embedded_run(pytester, "--daytona-reuse")
    assert (first["creates"], first["live"]) == (1, 1)
    assert list(first["states"].values()) == ["stopped"]
    second = _embedded_run(pytester, "--daytona-reuse")  # a new server on the kept data dir
    assert second["creates"] == 0
    assert second["by_route"]["POST /sandbox/{sandboxIdOrName}/start"] == 1
    assert second["states"] == first["states"]
