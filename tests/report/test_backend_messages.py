"""Issue 20: messages that fit the backend. On the local backend nothing points to the Daytona
dashboard or blames the Daytona API: a kept sandbox's text says where it is and how to reach
it there (and the way it gives works), a server error names the local server and its log."""

from __future__ import annotations

import re

import pytest
from daytona import Daytona, DaytonaConfig

from pytest_daytona.local import LocalServer
from tests.inner import settle
from tests.local.conftest import close_client
from tests.pytester_support import RunInner

FAILING = """
def test_fails(daytona_sandbox):
    daytona_sandbox.run("echo evidence > clue.txt", check=True)
    open("failed-id", "w").write(daytona_sandbox.id)
    assert False
"""

#: The inner test breaks the embedded server's next call of `ROUTE` (its URL is not known
#: before the run); `daytona_client` makes sure the server is up first.
BREAK_EMBEDDED = """
from pytest_daytona.run.startup import SESSION_KEY

def test_breaks(request, daytona_client, daytona_sandbox_factory):
    server = request.config.stash[SESSION_KEY].backend.server
    server.inject_fault("ROUTE", 500, count=COUNT, message="boom")
    daytona_sandbox_factory()
"""
NOT_DAYTONA = ("Daytona dashboard", "the Daytona API is having trouble")


def _embedded(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--daytona-backend", "local", *args)


def _assert_not_daytona(result: pytest.RunResult) -> None:
    text = result.stdout.str()
    assert not [phrase for phrase in NOT_DAYTONA if phrase in text], text


def test_a_kept_sandbox_of_the_embedded_server_is_said_to_end_with_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(FAILING)
    result = _embedded(pytester, "-p", "no:cacheprovider", "--daytona-keep", "failed")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-daytona: sandboxes kept*",
            "1 kept (stopped, label pytest-daytona-kept=true), but on the local backend they "
            "ended with this run: the embedded server's data dir was temporary. To look into "
            "one after the run, keep the data dir (--daytona-reuse keeps it in .pytest_cache), "
            "or run `pytest-daytona serve --data-dir DIR` and point the run at it "
            "(--daytona-api-url, DAYTONA_API_KEY).",
        ]
    )
    _assert_not_daytona(result)


def test_a_kept_sandbox_in_a_kept_data_dir_is_reached_the_way_the_summary_says(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``--daytona-reuse`` the embedded server's data dir outlives the run: the summary
    names it, a server started on it (the Python form of the `pytest-daytona serve` it
    prints) has the kept sandbox with its files, and the cleanup command it gives, with that
    server's URL and token, deletes it."""
    pytester.makepyfile(FAILING)
    result = _embedded(pytester, "--daytona-reuse", "--daytona-keep", "failed")
    result.assert_outcomes(failed=1)
    _assert_not_daytona(result)
    data_dir = pytester.path / ".pytest_cache" / "d" / "daytona-local-server"
    text = " ".join(result.outlines)
    assert (
        f"they stay in the embedded server's data dir {data_dir}: start a server on it with "
        f"`pytest-daytona serve --data-dir {data_dir}` (not while a run uses it)"
    ) in text
    command = re.search(r"delete them with: pytest (.*?) \(DAYTONA_API_KEY=<token>\)", text)
    assert command is not None, text
    kept_id = (pytester.path / "failed-id").read_text()
    with LocalServer(data_dir) as server:
        daytona = Daytona(DaytonaConfig(api_url=server.api_url, api_key=server.token))
        try:
            kept = daytona.get(kept_id)
            assert kept.labels["pytest-daytona-kept"] == "true"
            kept.start()
            assert kept.process.exec("cat pytest-workspace/clue.txt").result == "evidence\n"
        finally:
            close_client(daytona)
        monkeypatch.setenv("DAYTONA_API_KEY", server.token)
        args = command.group(1).replace("<URL>", server.api_url).split()
        cleanup = pytester.runpytest(*args)
        assert cleanup.ret == 0, cleanup.stdout.str()
        assert kept_id not in settle(server)


def test_a_500_of_the_embedded_server_names_it_and_its_log(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BREAK_EMBEDDED.replace("ROUTE", "POST /sandbox").replace("COUNT", "1"))
    result = _embedded(pytester, "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-daytona: create sandbox failed: HTTP 500: boom; fix: the local server "
            "embedded in this run failed on this request (pytest-daytona's local backend, not "
            "Daytona): its log (loggers aiohttp.server and pytest_daytona.local) is in the "
            "failing test's 'Captured log' section, under xdist in the file of "
            "--log-file=FILE; report it with that log"
        ]
    )
    _assert_not_daytona(result)


def test_a_500_of_a_served_local_server_names_it_and_its_log(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makepyfile("def test_set_up(daytona_sandbox):\n    pass\n")
    server.inject_fault("POST /sandbox", 500, message="boom")
    result = run_inner()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*HTTP 500: boom; fix: the local server at {server.api_url} failed on this request "
            "(pytest-daytona's local backend, not Daytona): its log is on the stderr of "
            "`pytest-daytona serve`; report it with that log"
        ]
    )
    _assert_not_daytona(result)


def test_a_sandbox_the_embedded_server_could_not_delete_is_said_to_end_with_it(
    pytester: pytest.Pytester,
) -> None:
    route = "DELETE /sandbox/{sandboxIdOrName}"
    pytester.makepyfile(BREAK_EMBEDDED.replace("ROUTE", route).replace("COUNT", "1000"))
    result = _embedded(pytester, "-p", "no:cacheprovider", "--daytona-retry-budget", "0")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*pytest-daytona: sandboxes left behind*",
            "1 sandbox could not be deleted; they ended with the embedded server all the same "
            "(its data dir was temporary)",
        ]
    )
    _assert_not_daytona(result)


@pytest.mark.parametrize("kind", ["embedded", "served"])
def test_the_probes_fixes_on_the_local_backend_point_to_nothing_of_daytonas(kind: str) -> None:
    from pytest_daytona.tools.probe import STEP_FIXES, step_fixes

    fixes = step_fixes(kind)  # type: ignore[arg-type]
    assert set(fixes) == set(STEP_FIXES)
    for step, fix in fixes.items():
        assert "dashboard" not in fix and "quota" not in fix, step
    assert "Daytona dashboard" in step_fixes("daytona")["wait started"]
