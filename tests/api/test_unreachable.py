"""An API that stops answering, and the cleanup command after runs that could not clean up.

The server runs as its own process (`pytest-daytona serve`) so that it can be frozen with
SIGSTOP: connections are still accepted by the kernel, nothing answers.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_daytona.local import LocalServer
from tests.inner import HOLDING_TESTS, settle, start_inner, wait_for_exit

SEVEN_TESTS = """
import pytest

@pytest.mark.parametrize("n", range(7))
def test_n(daytona_sandbox, n):
    assert daytona_sandbox.run("true").ok
"""


@dataclass
class Served:
    """A `pytest-daytona serve` process."""

    process: subprocess.Popen[str]
    api_url: str
    token: str

    def stats(self) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.api_url}/_local/stats", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            stats: dict[str, Any] = json.load(answer)
        return stats


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_daytona", "serve", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    values = dict(process.stdout.readline().strip().partition("=")[::2] for _ in range(2))
    try:
        yield Served(process, values["DAYTONA_API_URL"], values["DAYTONA_API_KEY"])
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(30)


def inner_args(api_url: str, *args: str) -> list[str]:
    return ["-p", "no:cacheprovider", "--daytona-backend", "local", "--daytona-api-url", api_url,
            *args]  # fmt: skip


def cleanup(pytester: pytest.Pytester, api_url: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        *inner_args(api_url, "--daytona-cleanup", "--daytona-cleanup-older-than", "0s", *args),
        timeout=120,
    )


def wait_until(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.2)


def test_an_api_that_stops_answering_fails_fast_and_cleanup_removes_the_rest(
    pytester: pytest.Pytester, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", served.token)
    pytester.makepyfile(SEVEN_TESTS)
    served.process.send_signal(signal.SIGSTOP)
    result = pytester.runpytest_subprocess(
        *inner_args(served.api_url, "--daytona-timeout", "2", "--daytona-retry-budget", "1"),
        timeout=90,  # a hang fails here; the run itself takes a few seconds
    )
    result.assert_outcomes(errors=7)
    output = result.stdout.str()
    assert len(output.splitlines()) < 60, output  # one short line per test, not 4,000
    assert "Traceback" not in output
    result.stdout.fnmatch_lines(["*create sandbox failed*no answer within*"])
    assert output.count("stopped answering earlier in this run") >= 5

    served.process.send_signal(signal.SIGCONT)  # the API comes back: queued creates complete
    wait_until(lambda: served.stats()["creates"] >= 1)
    time.sleep(1)  # let the rest of the queue drain
    leaked = served.stats()["live"]
    assert leaked >= 1
    cleaned = cleanup(pytester, served.api_url, "--daytona-cleanup-yes")
    assert cleaned.ret == 0, cleaned.stdout.str()
    wait_until(lambda: served.stats()["live"] == 0)
    assert served.stats()["live"] == 0


def test_sigkill_of_every_process_then_cleanup_leaves_nothing(
    pytester: pytest.Pytester, server: LocalServer
) -> None:
    pytester.makepyfile(HOLDING_TESTS)
    inner = start_inner(pytester.path, server, ["-n", "2"])
    inner.wait_ready(2)
    pids = [inner.process.pid]
    inner.signal(signal.SIGKILL, group=True)
    inner.finish()
    wait_for_exit(pids)
    assert len(settle(server)) == 3  # nothing could release them: 2 function + 1 session
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAYTONA_API_KEY", server.token)
        listed = cleanup(pytester, server.api_url)
        assert listed.ret == 0
        assert len(settle(server)) == 3  # a dry run deletes nothing
        result = cleanup(pytester, server.api_url, "--daytona-cleanup-yes")
    assert result.ret == 0, result.stdout.str()
    assert settle(server) == {}
