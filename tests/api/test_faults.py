"""The fault matrix: API errors, latency and lost answers, against the local server.

Each case runs a whole inner pytest against a local server with faults injected, then reads
the server's counters: retries pass within the budget with exactly the sandboxes needed,
beyond it the error is short and nothing hangs, and nothing is left live afterwards.
"""

from __future__ import annotations

import pytest

from pytest_daytona.local import LocalServer
from tests.inner import settle

CREATE = "POST /sandbox"
DELETE = "DELETE /sandbox/{sandboxIdOrName}"
GET = "GET /sandbox/{sandboxIdOrName}"
EXECUTE = "POST /process/execute"

TWO_TESTS = """
def test_one(daytona_sandbox):
    assert daytona_sandbox.run("echo one").stdout == "one\\n"

def test_two(daytona_sandbox):
    assert daytona_sandbox.run("echo two").stdout == "two\\n"
"""


@pytest.fixture
def key_env(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", server.token)


def run(pytester: pytest.Pytester, server: LocalServer, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--daytona-backend", "local", "--daytona-api-url", server.api_url, *args, timeout=120
    )


@pytest.mark.parametrize(
    ("route", "status", "count"),
    [
        (DELETE, 503, 1),
        (DELETE, 429, 5),
        (CREATE, 429, 1),
        (CREATE, 503, 2),
        (EXECUTE, 429, 1),
        (EXECUTE, 503, 2),
    ],
)
def test_retryable_errors_are_retried_with_exactly_the_sandboxes_needed(
    pytester: pytest.Pytester,
    server: LocalServer,
    key_env: None,
    route: str,
    status: int,
    count: int,
) -> None:
    pytester.makepyfile(TWO_TESTS)
    server.inject_fault(route, status, count=count, retry_after=0)
    result = run(pytester, server)
    result.assert_outcomes(passed=2)
    stats = server.stats()
    assert stats["creates"] == 2
    assert settle(server) == {}
    assert stats["by_route"].get(route, 0) >= count  # the faults were all answered


def test_429s_during_60_tests_on_4_workers_cost_no_test(
    pytester: pytest.Pytester, server: LocalServer, key_env: None
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(60))
        def test_n(daytona_sandbox, n):
            assert daytona_sandbox.run(f"echo {n}").stdout == f"{n}\\n"
        """
    )
    server.inject_fault(CREATE, 429, count=3)  # with Retry-After: 1
    result = run(pytester, server, "-n", "4")
    result.assert_outcomes(passed=60)
    assert server.stats()["creates"] == 60
    assert settle(server) == {}


def test_a_get_that_fails_never_prevents_the_delete(
    pytester: pytest.Pytester, server: LocalServer, key_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import json, os, urllib.request

        def break_gets():  # once the sandboxes exist: every GET of a sandbox answers 503
            request = urllib.request.Request(
                os.environ["DAYTONA_API_URL"] + "/_local/faults",
                data=json.dumps({"route": "GET /sandbox/{sandboxIdOrName}", "status": 503,
                                 "count": 50}).encode(),
                headers={"Authorization": "Bearer " + os.environ["DAYTONA_API_KEY"],
                         "Content-Type": "application/json"},
            )
            urllib.request.urlopen(request, timeout=10).close()

        def test_one(daytona_sandbox):
            pass

        def test_two(daytona_sandbox, daytona_session_sandbox):
            break_gets()  # the last test: every release after this meets the faults
        """
    )
    monkeypatch.setenv("DAYTONA_API_URL", server.api_url)
    run(pytester, server, "--daytona-retry-budget", "0").assert_outcomes(passed=2)
    assert settle(server) == {}
    assert server.stats()["by_route"][DELETE] == 3


def test_a_transient_get_failure_is_retried_where_a_get_is_needed(
    pytester: pytest.Pytester, server: LocalServer, key_env: None
) -> None:
    """Under xdist the controller looks the session sandbox up before deleting it."""
    pytester.makepyfile("def test_session(daytona_session_sandbox):\n    pass\n")
    server.inject_fault(GET, 503, count=2, retry_after=0)
    run(pytester, server, "-n", "2").assert_outcomes(passed=1)
    assert settle(server) == {}
    assert server.stats()["by_route"][GET] >= 3


@pytest.mark.parametrize("route", [CREATE, EXECUTE, DELETE])
def test_beyond_the_budget_a_short_clear_error_and_nothing_left(
    pytester: pytest.Pytester, server: LocalServer, key_env: None, route: str
) -> None:
    pytester.makepyfile(TWO_TESTS)
    server.inject_fault(route, 503, count=1000, message="capacity exhausted", retry_after=0)
    result = run(pytester, server, "--daytona-retry-budget", "0.5")
    output = result.stdout.str()
    assert "Traceback" not in output and "daytona/_sync" not in output
    if route == DELETE:  # the tests passed; their sandboxes could not be deleted
        result.assert_outcomes(passed=2)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(
            [
                "*pytest-daytona: sandboxes left behind*",
                "* delete sandbox * failed (after * attempts): HTTP 503: capacity exhausted*",
                "*2 sandboxes could not be deleted; the local server deletes them when their "
                "TTL runs out. Remove them now with: pytest --daytona-cleanup --daytona-backend "
                f"local --daytona-api-url {server.api_url} --daytona-cleanup-run-id *",
            ]
        )
        assert len(settle(server)) == 2
        return
    if route == CREATE:
        result.assert_outcomes(errors=2)
        line = "*pytest-daytona: create sandbox failed (after * attempts): HTTP 503: capacity*"
    else:
        result.assert_outcomes(failed=2)
        line = "*run a command in sandbox * failed (after * attempts): HTTP 503: capacity*"
    result.stdout.fnmatch_lines([line + "fix: *retry-budget*"])
    assert settle(server) == {}


def test_an_sdk_traceback_only_with_vv(
    pytester: pytest.Pytester, server: LocalServer, key_env: None
) -> None:
    pytester.makepyfile("def test_one(daytona_sandbox):\n    pass\n")
    server.inject_fault(CREATE, 500, count=2, message="boom")
    short = run(pytester, server)
    short.assert_outcomes(errors=1)
    short.stdout.fnmatch_lines(["pytest-daytona: create sandbox failed: HTTP 500: boom; fix: *"])
    assert "daytona/_sync" not in short.stdout.str()
    verbose = run(pytester, server, "-vv")
    verbose.assert_outcomes(errors=1)
    assert "daytona/_sync" in verbose.stdout.str()


@pytest.mark.quick
def test_a_create_that_completes_after_the_client_gave_up_is_deleted(
    pytester: pytest.Pytester, server: LocalServer, key_env: None
) -> None:
    pytester.makepyfile(TWO_TESTS)
    server.inject_fault(CREATE, 504, count=1, complete_after=0.5)
    run(pytester, server).assert_outcomes(passed=2)
    assert server.stats()["creates"] == 3  # the late one, then one per test
    assert settle(server) == {}


@pytest.mark.parametrize("route", [CREATE, EXECUTE, DELETE, "*"])
def test_latency_never_hangs_a_test_or_its_teardown(
    pytester: pytest.Pytester, server: LocalServer, key_env: None, route: str
) -> None:
    """With 60 s on a route and a 2 s timeout, the run ends before the latency does (the
    runner kills it after 58 s: a slow DELETE costs the end of the run ~25-30 s of deadlines
    and retries on this 2-core machine, under the suite's load); bench/bench_faults.py
    measures the phases."""
    pytester.makepyfile(TWO_TESTS)
    server.set_latency(route, 60)
    result = pytester.runpytest_subprocess(
        "--daytona-backend",
        "local",
        "--daytona-api-url",
        server.api_url,
        "--daytona-timeout",
        "2",
        "--daytona-retry-budget",
        "1",
        timeout=58,
    )
    assert result.ret != 0  # the tests could not work; what matters is that the run ended
    server.set_latency(route, 0)
