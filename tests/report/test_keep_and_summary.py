"""The ``keep`` setting and the end-of-run summary, against the local server."""

from __future__ import annotations

import re
import sys

import pytest
from daytona import Daytona, DaytonaConfig

from pytest_daytona.local import LocalServer
from tests.inner import settle
from tests.local.conftest import close_client
from tests.pytester_support import RunInner

KEEP_TESTS = """
import pytest


def test_passes(daytona_sandbox):
    daytona_sandbox.run("true", check=True)


def test_fails(daytona_sandbox):
    open("failed-id", "w").write(daytona_sandbox.id)
    daytona_sandbox.run("echo look at me", check=True)
    assert False


@pytest.mark.daytona(keep="never")
def test_fails_not_kept(daytona_sandbox):
    assert False
"""

SUMMARY = re.compile(
    r"created (\d+), resumed (\d+), reused (\d+), released (\d+) \(deleted (\d+), "
    r"stopped (\d+)\), kept (\d+), failed to release (\d+)"
)
COMMANDS = re.compile(r"commands [\d.]+s \((\d+) run\)")


def figures(result: pytest.RunResult) -> dict[str, int]:
    """The counts of the summary's first line."""
    text = "\n".join(result.outlines)
    match = SUMMARY.search(text)
    assert match is not None, text
    names = ("created", "resumed", "reused", "released", "deleted", "stopped", "kept", "failed")
    counts = dict(zip(names, map(int, match.groups()), strict=True))
    commands = COMMANDS.search(text)
    assert commands is not None, text
    counts["commands"] = int(commands.group(1))
    return counts


def deletes(server: LocalServer) -> int:
    return int(server.stats()["by_route"].get("DELETE /sandbox/{sandboxIdOrName}", 0))


def ttl_calls(server: LocalServer) -> int:
    return sum(n for route, n in server.stats()["by_route"].items() if "/ttl/" in route)


def test_keep_failed_leaves_only_the_failed_tests_sandbox(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makepyfile(test_inner=KEEP_TESTS)
    result = run_inner("--daytona-keep", "FAILED")
    result.assert_outcomes(passed=1, failed=2)
    failed_id = (pytester.path / "failed-id").read_text()
    assert settle(server) == {failed_id: "stopped"}  # the other two were deleted
    assert ttl_calls(server) == 1  # the kept one's lifetime counts from when it was kept
    daytona = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    try:
        kept = daytona.get(failed_id)
        assert kept.labels["pytest-daytona-kept"] == "true"
        name = kept.name
    finally:
        close_client(daytona)
    assert figures(result) == {
        **dict(created=3, resumed=0, reused=0, released=2, deleted=2, stopped=0),
        **dict(kept=1, failed=0, commands=2),
    }
    result.stdout.fnmatch_lines(
        [
            "*pytest-daytona: sandboxes kept*",
            f"{failed_id} ({name}) for test_inner.py::test_fails",
            "1 kept (stopped, label pytest-daytona-kept=true; the local server deletes them "
            "1440 min after they were kept). Reach one while that `pytest-daytona serve` runs, "
            f"with Daytona(DaytonaConfig(api_url='{server.api_url}', api_key=<its token>))"
            ".get('<id>') and .start(). Delete them now with: pytest --daytona-cleanup "
            f"--daytona-backend local --daytona-api-url {server.api_url} "
            "--daytona-cleanup-run-id *",
        ]
    )
    command = re.search(r"Delete them now with: pytest (.*)$", result.stdout.str(), re.M)
    assert command is not None
    cleanup = run_inner(*command.group(1).split())
    assert cleanup.ret == 0, cleanup.stdout.str()
    assert settle(server) == {}  # the command the summary gives deletes it


@pytest.mark.quick
def test_keep_never_leaves_nothing_and_q_hides_the_summary(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makepyfile(test_inner=KEEP_TESTS)
    result = run_inner("-q")
    result.assert_outcomes(passed=1, failed=2)
    assert settle(server) == {}
    assert server.stats()["creates"] == deletes(server) == 3
    assert "pytest-daytona" not in result.stdout.str()  # nothing kept or left: silent


def test_q_still_names_a_kept_sandbox_and_v_lists_each_one(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makepyfile(test_inner=KEEP_TESTS)
    quiet = run_inner("-q", "--daytona-keep", "failed")
    failed_id = (pytester.path / "failed-id").read_text()
    assert "pytest-daytona: sandboxes kept" in quiet.stdout.str()
    assert failed_id in quiet.stdout.str()
    assert SUMMARY.search(quiet.stdout.str()) is None  # the figures are not shown with -q
    verbose = run_inner("-v", "--daytona-keep", "always")
    verbose.assert_outcomes(passed=1, failed=2)
    states = settle(server)
    assert len(states) == 1 + 2  # the -q run's kept one; this run's but the marker's "never"
    lines = [line for line in verbose.outlines if re.match(r"  \S+ \(pytest-\S+\) function ", line)]
    assert len(lines) == 3
    ends = {line.split()[0]: line.rsplit(" ", 2)[-2:] for line in lines}
    assert {i for i, (end, _) in ends.items() if end == "kept"} == set(states) - {failed_id}
    assert sorted(test for _, test in ends.values()) == [f"test_inner.py::{t}" for t in TESTS]


TESTS = ("test_fails", "test_fails_not_kept", "test_passes")

XDIST_TESTS = """
import pytest


@pytest.mark.parametrize("n", range(6))
def test_function(daytona_sandbox, n):
    daytona_sandbox.run("true", check=True)


@pytest.mark.parametrize("n", range(4))
def test_session(daytona_session_sandbox, n):
    daytona_session_sandbox.run("true", check=True)
    daytona_session_sandbox.run("echo two", check=True)
"""


def test_summary_counts_equal_the_servers_under_xdist(
    pytester: pytest.Pytester, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", server.token)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(test_inner=XDIST_TESTS)
    result = pytester.runpytest_subprocess(
        *("-n", "4", "-p", "no:cacheprovider"),
        *("--daytona-backend", "local", "--daytona-api-url", server.api_url),
    )
    result.assert_outcomes(passed=10)
    assert settle(server) == {}
    counts = figures(result)
    assert counts["created"] == server.stats()["creates"] == 7  # 6 tests, one session sandbox
    assert counts["deleted"] == deletes(server) == 7
    assert counts["released"] == 7 and counts["kept"] == counts["failed"] == 0
    workers_joining = counts["reused"]
    assert 0 <= workers_joining <= 3  # the workers that ran a session test but did not make it
    assert counts["commands"] == 6 + 4 * 2
    assert "pytest-daytona: sandboxes kept" not in result.stdout.str()


def test_auto_stop_is_off_while_the_debugger_is_open(
    pytester: pytest.Pytester, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", server.token)
    pytester.makepyfile(
        test_inner="""
        def test_debugged(daytona_sandbox, daytona_session_sandbox):
            before = daytona_sandbox.sdk.auto_stop_interval
            breakpoint()
            for sandbox in (daytona_sandbox, daytona_session_sandbox):
                sandbox.sdk.refresh_data()
            assert daytona_sandbox.sdk.auto_stop_interval == before == 15
            assert daytona_session_sandbox.sdk.auto_stop_interval == 15
        """
    )
    commands = (
        "p [s.sdk.refresh_data() or s.sdk.auto_stop_interval "
        "for s in (daytona_sandbox, daytona_session_sandbox)]\nc\n"
    )
    result = pytester.run(
        *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider"),
        *("--daytona-backend", "local", "--daytona-api-url", server.api_url),
        stdin=commands.encode(),
        timeout=120,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*[[]0, 0[]]*"])  # off while the debugger was open
    routes = server.stats()["by_route"]
    assert sum(n for route, n in routes.items() if "/autostop/" in route) == 4  # off, back on
