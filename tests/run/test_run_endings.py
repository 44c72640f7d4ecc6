"""Every way a run ends releases what it holds (counts from the local server).

Non-reused sandboxes end deleted, a reused one ends stopped and unclaimed: after a pass, a
failure, a set-up error, ``-x``/``--maxfail``, Ctrl-C once and twice, SIGTERM and SIGHUP to
pytest, to the whole process group under xdist, or to the xdist controller alone (then the
orphaned workers finish the run), and SIGKILL to the controller alone.
"""

from __future__ import annotations

import signal
import time

import pytest

from pytest_daytona.leases.reuse import CLAIM_LABEL
from pytest_daytona.local import LocalServer
from tests.inner import HOLDING_TESTS, children, settle, start_inner, wait_for_exit

OUTCOMES = """
import pytest

def test_pass(daytona_sandbox):
    assert daytona_sandbox.run("true").ok

def test_fail(daytona_sandbox, daytona_session_sandbox):
    assert daytona_sandbox.run("false").ok

@pytest.fixture
def broken(daytona_sandbox):
    raise RuntimeError("set-up failed after the sandbox was made")

def test_setup_error(broken):
    pass

def test_later(daytona_sandbox):
    pass
"""


@pytest.fixture
def key_env(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", server.token)


def external(server: LocalServer, *args: str) -> list[str]:
    return ["--daytona-backend", "local", "--daytona-api-url", server.api_url, *args]


@pytest.mark.parametrize(
    ("args", "creates"),
    [
        ((), 5),  # pass, fail (+ session sandbox), set-up error, later
        (("-x",), 3),  # stops at the failure
        (("--maxfail", "2"), 4),  # stops at the set-up error
        (("-n", "2"), 5),
    ],
    ids=["all", "-x", "--maxfail", "xdist"],
)
def test_pass_fail_setup_error_and_early_stops_release_everything(
    pytester: pytest.Pytester,
    server: LocalServer,
    key_env: None,
    args: tuple[str, ...],
    creates: int,
) -> None:
    pytester.makepyfile(OUTCOMES)
    result = pytester.runpytest_subprocess(*external(server, "-p", "no:randomly", *args))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    stats = server.stats()
    assert stats["creates"] == creates
    assert settle(server) == {}


SIGNAL_CASES = [
    # (signal, xdist workers, to the whole process group, also a second signal)
    pytest.param(signal.SIGTERM, 0, False, False, id="SIGTERM"),
    pytest.param(signal.SIGHUP, 0, False, False, id="SIGHUP"),
    pytest.param(signal.SIGINT, 0, False, False, id="Ctrl-C"),
    pytest.param(signal.SIGINT, 0, False, True, id="Ctrl-C-twice"),
    pytest.param(signal.SIGTERM, 0, False, True, id="SIGTERM-twice"),
    pytest.param(signal.SIGTERM, 2, True, False, id="xdist-SIGTERM-group"),
    pytest.param(signal.SIGHUP, 2, True, False, id="xdist-SIGHUP-group"),
    pytest.param(signal.SIGINT, 2, True, True, id="xdist-Ctrl-C-twice"),
    pytest.param(signal.SIGTERM, 2, False, False, id="xdist-SIGTERM-controller"),
    pytest.param(signal.SIGKILL, 2, False, False, id="xdist-SIGKILL-controller"),
]


@pytest.mark.parametrize(("sig", "workers", "group", "twice"), SIGNAL_CASES)
def test_signals_release_every_sandbox(
    pytester: pytest.Pytester,
    server: LocalServer,
    sig: int,
    workers: int,
    group: bool,
    twice: bool,
) -> None:
    pytester.makepyfile(HOLDING_TESTS)
    xdist = ["-n", str(workers)] if workers else []
    inner = start_inner(pytester.path, server, [*xdist, "-p", "no:randomly"])
    inner.wait_ready(max(1, workers))
    held = 1 + max(1, workers)  # the session sandbox and one per running test
    assert server.stats()["live"] == held
    workers_pids = children(inner.process.pid)
    inner.signal(sig, group=group)
    if twice:
        time.sleep(0.2)
        inner.signal(sig, group=group)
    code, output = inner.finish()
    assert code != 0, output
    if sig == signal.SIGKILL:  # the orphaned workers finish the run in the controller's place
        wait_for_exit(workers_pids)
    assert settle(server) == {}, output
    assert server.stats()["creates"] == held


def test_sigterm_leaves_a_reused_sandbox_stopped_and_unclaimed(
    pytester: pytest.Pytester, server: LocalServer
) -> None:
    pytester.makepyfile(HOLDING_TESTS)
    inner = start_inner(pytester.path, server, ["-n", "2", "--daytona-reuse"])
    inner.wait_ready(2)
    inner.signal(signal.SIGTERM, group=True)
    code, output = inner.finish()
    assert code == pytest.ExitCode.INTERRUPTED, output
    remaining = settle(server)
    assert list(remaining.values()) == ["stopped"], output
    (sandbox_id,) = remaining
    from daytona import Daytona, DaytonaConfig

    client = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    assert CLAIM_LABEL not in client.get(sandbox_id).labels
