"""Sandboxes made ahead of need (``prewarm``): bounded, never more than the tests to come
take, all released whatever ends the run, and a refused background create fails no test.
Counts from the local server, never wall time."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from pytest_daytona.local import LocalServer
from tests.inner import settle, start_inner
from tests.pytester_support import RunInner
from tests.run.test_performance import CREATE, SERVER_STATS

#: Each test writes how many creates the server had answered when it started.
COUNTING_TESTS = (
    SERVER_STATS
    + """
import pathlib
import pytest

@pytest.mark.parametrize("n", range(COUNT))
def test_counts(daytona_sandbox, n):
    pathlib.Path(f"creates-{n}").write_text(str(server_stats()["creates"]))
    assert n != FAIL_AT
"""
)


def counting_tests(count: int, fail_at: int = -1) -> str:
    return COUNTING_TESTS.replace("COUNT", str(count)).replace("FAIL_AT", str(fail_at))


@pytest.fixture
def server_env(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_URL_FOR_TEST", server.api_url)
    monkeypatch.setenv("DAYTONA_API_KEY", server.token)


def creates_seen(path: Path) -> dict[int, int]:
    """Test number -> creates the server had made when that test started."""
    return {int(p.name.split("-")[1]): int(p.read_text()) for p in path.glob("creates-*")}


@pytest.mark.usefixtures("server_env")
def test_the_pool_stays_within_its_depth_and_makes_only_what_the_tests_take(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    depth, count = 2, 6
    pytester.makepyfile(counting_tests(count, -1))
    run_inner("-p", "no:randomly", "--daytona-prewarm", str(depth)).assert_outcomes(passed=count)
    seen = creates_seen(pytester.path)
    assert sorted(seen) == list(range(count))
    # made so far <= taken by the tests started so far (this one included) + the depth
    assert all(creates <= n + 1 + depth for n, creates in seen.items()), seen
    assert server.stats()["creates"] == count  # never more than the tests took
    assert settle(server) == {}


@pytest.mark.quick
@pytest.mark.usefixtures("server_env")
@pytest.mark.parametrize("stop", ["-x", "--maxfail=1"])
def test_an_early_stop_makes_nothing_more_and_deletes_what_was_made_ahead(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer, stop: str
) -> None:
    depth = 3
    pytester.makepyfile(counting_tests(8, 1))
    result = run_inner("-p", "no:randomly", "--daytona-prewarm", str(depth), stop)
    result.assert_outcomes(passed=1, failed=1)
    assert server.stats()["creates"] <= 2 + depth
    assert settle(server) == {}


HOLDING = """
import pathlib, time, pytest

@pytest.mark.parametrize("n", range(6))
def test_hold(daytona_sandbox, n):
    pathlib.Path("ready").mkdir(exist_ok=True)
    pathlib.Path("ready", str(n)).touch()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.05)
"""


@pytest.mark.usefixtures("server_env")
def test_ctrl_c_deletes_the_sandboxes_made_ahead(
    pytester: pytest.Pytester, server: LocalServer
) -> None:
    pytester.makepyfile(HOLDING)
    inner = start_inner(pytester.path, server, ["-p", "no:randomly", "--daytona-prewarm", "3"])
    inner.wait_ready(1)
    inner.signal(signal.SIGINT)
    code, out = inner.finish()
    assert code == pytest.ExitCode.INTERRUPTED, out
    assert 1 <= server.stats()["creates"] <= 1 + 3
    assert settle(server) == {}


@pytest.mark.usefixtures("server_env")
def test_a_refused_background_create_shrinks_the_pool_and_fails_no_test(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    """The first two creates are the pool's, made before any test starts: both get 429."""
    server.inject_fault(CREATE, 429, count=2)
    pytester.makepyfile(counting_tests(3, -1))
    run_inner("-p", "no:randomly", "--daytona-prewarm", "2").assert_outcomes(passed=3)
    stats = server.stats()
    assert stats["by_route"][CREATE] == 2 + 3  # two refused, then each test made its own
    assert stats["creates"] == 3
    assert settle(server) == {}


@pytest.mark.usefixtures("server_env")
def test_each_xdist_worker_makes_ahead_only_for_its_own_tests(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makepyfile(counting_tests(6, -1))
    run_inner("-n", "2", "--daytona-prewarm", "2").assert_outcomes(passed=6)
    assert server.stats()["creates"] == 6
    assert settle(server) == {}


def test_prewarm_setting_is_validated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(daytona_sandbox): pass")
    result = pytester.runpytest("--daytona-prewarm", "-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*daytona_prewarm = '-1' (from --daytona-prewarm)*"])
