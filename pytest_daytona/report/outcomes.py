"""What a test and the run ended with, for `pytest_daytona_before_release` and
`pytest_daytona_keep` (a plugin module, registered with the hook specs)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from ..run.startup import SESSION_KEY

PLUGIN_NAME = "daytona-outcomes"
REPORTS_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "setup":  # a new run of the test (a rerun too): forget the last one's
        item.stash[REPORTS_KEY] = {}
    item.stash.setdefault(REPORTS_KEY, {})[report.when] = report
    return report


def report_of(item: pytest.Item) -> pytest.TestReport | None:
    """The report a function-scoped sandbox is released with: the call's, else the set-up's."""
    reports = item.stash.get(REPORTS_KEY, {})
    return reports.get("call") or reports.get("setup")


def run_outcome(exitstatus: int | pytest.ExitCode) -> str:
    """``"passed"`` when pytest exits 0 or collected no tests, else ``"failed"``."""
    ok = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    return "passed" if exitstatus in ok else "failed"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
    """Tell this process's sandbox session how the run ended, before it releases anything."""
    sandbox_session = session.config.stash.get(SESSION_KEY, None)
    if sandbox_session is not None:
        sandbox_session.run_outcome = run_outcome(exitstatus)
