"""Issue 9: the fewest round trips per test, nothing loaded when no test takes a sandbox,
background provisioning and release (counts from the local server, never wall time)."""

from __future__ import annotations

import pytest

from pytest_daytona.local import LocalServer
from tests.inner import settle
from tests.pytester_support import RunInner

ONE_RUN_EACH = """
import pytest

@pytest.mark.parametrize("n", range(3))
def test_one_run(daytona_sandbox, n):
    assert daytona_sandbox.run("pwd").stdout == daytona_sandbox.workspace + "\\n"
"""

CREATE = "POST /sandbox"
EXECUTE = "POST /process/execute"
DELETE = "DELETE /sandbox/{sandboxIdOrName}"
#: Once per run, not per test: the end-of-run sweep lists what carries the run's id.
SWEEP = "GET /sandbox"


@pytest.mark.quick
def test_a_test_with_one_run_makes_three_requests(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makepyfile(ONE_RUN_EACH)
    run_inner().assert_outcomes(passed=3)
    routes = server.stats()["by_route"]
    assert routes == {CREATE: 3, EXECUTE: 3, DELETE: 3, SWEEP: 1}
    assert settle(server) == {}


NO_SANDBOX_TESTS = """
import sys

HEAVY = ("daytona", "daytona_api_client", "pydantic", "filelock", "aiohttp")


def test_plain():
    assert 1 + 1 == 2


def test_nothing_heavy_was_imported():
    assert [name for name in HEAVY if name in sys.modules] == []
"""


@pytest.mark.parametrize("args", [(), ("--daytona-backend", "local"), ("-n", "1")])
def test_a_run_without_sandbox_tests_imports_neither_sdk_nor_pydantic_nor_filelock(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    """Under xdist the tests run (and look) in the worker; the controller, which collects
    nothing, still validates the settings up front."""
    pytester.makepyfile(NO_SANDBOX_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["daytona: backend=*"])


def test_bad_settings_stop_a_run_that_uses_sandboxes_but_not_one_that_does_not(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_plain="def test_plain(): pass")
    assert pytester.runpytest_subprocess("--daytona-timeout", "soon").ret == 0
    pytester.makepyfile(test_uses="def test_uses(daytona_sandbox): pass")
    result = pytester.runpytest_subprocess("--daytona-timeout", "soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*daytona_timeout = 'soon' (from --daytona-timeout)*"])


#: Inner-test code reading the outer server's counters (its URL in SERVER_URL_FOR_TEST).
SERVER_STATS = """
import json, os, urllib.request

def server_stats():
    url = os.environ["SERVER_URL_FOR_TEST"] + "/_local/stats"
    request = urllib.request.Request(
        url, headers={"Authorization": "Bearer " + os.environ["DAYTONA_API_KEY"]}
    )
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)
"""

LIVE_DURING_NEXT_TEST = (
    SERVER_STATS
    + """
def live():
    return server_stats()["live"]

def test_first(daytona_sandbox):
    pass

def test_second_starts_while_the_first_is_being_deleted(daytona_sandbox):
    assert live() == 2
"""
)


def test_teardown_does_not_wait_for_the_delete_and_the_run_end_does(
    pytester: pytest.Pytester,
    run_inner: RunInner,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A delete held up 5 s by the server is still in flight when the next test runs; the
    end of the run waits for it, so nothing is left."""
    server.set_latency(DELETE, 5)
    monkeypatch.setenv("SERVER_URL_FOR_TEST", server.api_url)
    pytester.makepyfile(LIVE_DURING_NEXT_TEST)
    run_inner("--daytona-prewarm", "0").assert_outcomes(passed=2)
    assert server.stats()["by_route"][DELETE] == 2
    assert settle(server) == {}


#: An inner conftest: the run's end prints what it loaded, whether the embedded server's code
#: was (the server starts in-process), and whether a sandbox session was built.
WHAT_LOADED = """
import sys

import pytest

HEAVY = ("daytona", "daytona_api_client", "pydantic", "filelock", "aiohttp")


def pytest_sessionfinish(session):
    from pytest_daytona.run.startup import SESSION_KEY

    loaded = [name for name in HEAVY if name in sys.modules]
    server = "pytest_daytona.local.server" in sys.modules
    built = session.config.stash.get(SESSION_KEY, None) is not None
    print(f"\\nloaded={loaded} server={server} session={built}")
"""

SANDBOX_TESTS = """
import pytest

def test_plain_one():
    pass

def test_plain_two():
    pass

@pytest.mark.daytona(cpu=1)
def test_sandbox(daytona_sandbox):
    pass
"""

BAD_MARKER = """
import pytest

@pytest.mark.daytona(cpus=2)
def test_bad_marker(daytona_sandbox):
    pass
"""


def _run_local(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--daytona-backend", "local", "-s", *args
    )


@pytest.mark.quick
@pytest.mark.parametrize("deselect", [("-k", "plain"), ("-m", "not daytona")], ids=["-k", "-m"])
def test_deselected_sandbox_tests_load_nothing(
    pytester: pytest.Pytester, deselect: tuple[str, str]
) -> None:
    """Issue 20: the plugin's work starts after pytest's deselection and looks at the selected
    tests only: no SDK, no pydantic, no server, no session."""
    pytester.makeconftest(WHAT_LOADED)
    pytester.makepyfile(SANDBOX_TESTS)
    result = _run_local(pytester, *deselect)
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.fnmatch_lines(["loaded=[] server=False session=False"])


@pytest.mark.quick
def test_a_bad_marker_stops_the_run_only_when_its_test_is_selected(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(WHAT_LOADED)
    pytester.makepyfile(test_mix=SANDBOX_TESTS, test_bad=BAD_MARKER)
    result = _run_local(pytester, "-k", "plain")
    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.fnmatch_lines(["loaded=[] server=False session=False"])
    result = _run_local(pytester, "-k", "plain or bad")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cpus (from @pytest.mark.daytona in *test_bad_marker)*"])
    result.stdout.no_fnmatch_line("*passed*")
