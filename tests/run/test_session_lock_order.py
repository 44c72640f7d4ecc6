"""Under xdist each worker builds its SDK client before it asks for the run's ``session``
lock, so workers do not queue behind each other's SDK imports (issue 9, point 6).

The inner run's conftest records, per worker and in order, when the client was built and
when a run lock was asked for; only the order is asserted, never wall time."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_daytona.local import LocalServer
from tests.inner import settle
from tests.pytester_support import RunInner

#: Wraps `Backend.client` and `RunDir.lock` in each xdist worker of the inner run. The
#: background warm-up is switched off: it would build the client early on its own and
#: hide the order `session_sandbox` keeps.
RECORDING_CONFTEST = """
import pathlib

from pytest_daytona.api.backend import Backend
from pytest_daytona.run.coordination import RunDir

HERE = pathlib.Path(__file__).parent


def pytest_configure(config):
    # Only in xdist workers (their own processes): the controller runs inside the outer
    # test's process, and PYTEST_XDIST_WORKER may be set there by an outer xdist.
    if not hasattr(config, "workerinput"):
        return
    events = HERE / f"events-{config.workerinput['workerid']}.txt"
    original_client, original_lock = Backend.client, RunDir.lock

    def event(text):
        with open(events, "a") as fh:
            fh.write(text + "\\n")

    def client(self):
        was_built = self.started
        built = original_client(self)
        if not was_built:
            event("client built")
        return built

    def lock(self, name, timeout):
        event(f"lock {name} requested")
        return original_lock(self, name, timeout)

    Backend.client = client
    Backend.warm_up = lambda self: None
    RunDir.lock = lock
"""

SESSION_TESTS = """
def test_one(daytona_session_sandbox):
    assert daytona_session_sandbox.run("echo one").stdout == "one\\n"

def test_two(daytona_session_sandbox):
    assert daytona_session_sandbox.run("echo two").stdout == "two\\n"
"""


def events(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_each_worker_builds_its_client_before_asking_for_the_session_lock(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makeconftest(RECORDING_CONFTEST)
    pytester.makepyfile(SESSION_TESTS)
    run_inner("-n", "2", "--dist", "each").assert_outcomes(passed=4)
    assert server.stats()["creates"] == 1  # one session sandbox, shared by both workers
    logs = {path.name: events(path) for path in sorted(pytester.path.glob("events-*.txt"))}
    assert sorted(logs) == ["events-gw0.txt", "events-gw1.txt"]
    for name, log in logs.items():
        assert log.count("client built") == 1, (name, log)
        assert "lock session requested" in log, (name, log)
        assert log.index("client built") < log.index("lock session requested"), (name, log)
    assert settle(server) == {}
