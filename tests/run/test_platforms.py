"""Issue 20: the plugin loads wherever pytest runs. Where a signal is missing (Windows has no
SIGHUP) it handles the others; where no sandbox can be taken (Windows), the tests that take
one are skipped, saying why, and the others run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytest_daytona.local import LocalServer
from pytest_daytona.run import startup

#: pytest started in a Python whose `signal` has no SIGHUP, as on Windows: the plugin is
#: loaded (pytest11 entry point) after that.
WITHOUT_SIGHUP = """
import signal, sys
del signal.SIGHUP
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""

SIGNAL_TESTS = """
import signal

from pytest_daytona.run import signals

def test_sigterm_is_still_handled_like_ctrl_c():
    assert not hasattr(signal, "SIGHUP")
    assert signals.HANDLED == (signal.SIGTERM,)
    assert signal.getsignal(signal.SIGTERM) is signals._raise_terminated

def test_a_sandbox(daytona_sandbox):
    assert daytona_sandbox.run("true").ok
"""


def test_without_sighup_the_plugin_loads_and_a_run_with_a_sandbox_ends_cleanly(
    pytester: pytest.Pytester, server: LocalServer
) -> None:
    """The end of the run (`signals.shielded`) too: it shields SIGINT and SIGTERM only."""
    pytester.makepyfile(SIGNAL_TESTS)
    env = dict(os.environ, DAYTONA_API_KEY=server.token, PYTEST_ADDOPTS="")
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SIGHUP, "-p", "no:cacheprovider", "-p", "no:randomly",
         "--daytona-backend", "local", "--daytona-api-url", server.api_url, "-rA"],
        cwd=pytester.path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout
    assert server.stats()["live"] == 0


@pytest.mark.quick
def test_sandboxes_are_taken_on_posix_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert startup.unsupported_platform() is None  # this machine
    monkeypatch.setattr(startup.os, "name", "nt")
    monkeypatch.setattr(startup.sys, "platform", "win32")
    reason = startup.unsupported_platform()
    monkeypatch.undo()
    assert reason is not None and "need Linux or macOS, not win32" in reason


@pytest.mark.quick
def test_where_no_sandbox_can_be_taken_those_tests_skip_and_the_others_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process, with the platform check answering as on Windows."""
    reason = "pytest-daytona: tests that take a Daytona sandbox need Linux or macOS, not win32"
    monkeypatch.setattr("pytest_daytona.plugin.unsupported_platform", lambda: reason)
    monkeypatch.setattr("pytest_daytona.run.startup.unsupported_platform", lambda: reason)
    pytester.makepyfile(
        """
        import pytest

        def test_plain():
            pass

        def test_a_sandbox(daytona_sandbox):
            pass

        @pytest.mark.daytona(cpu=1)
        def test_a_marked_one():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--daytona-backend", "local", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines([f"SKIPPED * {reason}"] * 2)
