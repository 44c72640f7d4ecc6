"""Running an inner pytest as a real process, so a test can signal it and read the server after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_daytona.local import LocalServer

#: A test module whose tests take sandboxes, say so with a file, then wait to be interrupted.
HOLDING_TESTS = """
import os
import pathlib
import time

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def _hold(name):
    pathlib.Path("ready").mkdir(exist_ok=True)
    pathlib.Path("ready", f"{WORKER}-{name}").touch()
    deadline = time.monotonic() + 120  # bounded: the outer test signals well before
    while time.monotonic() < deadline:
        time.sleep(0.05)


def test_a(daytona_sandbox, daytona_session_sandbox):
    _hold("a")


def test_b(daytona_sandbox, daytona_session_sandbox):
    _hold("b")


def test_c(daytona_sandbox, daytona_session_sandbox):
    _hold("c")
"""


def default_signals() -> None:
    """For a child: the signals the tests send act as from a terminal. The suite may run with
    some ignored (a shell's background job ignores SIGINT, ``nohup`` SIGHUP), and an ignored
    signal stays ignored across exec; the plugin leaves an ignored signal alone."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@dataclass
class Inner:
    """A running inner pytest in its own process group."""

    process: subprocess.Popen[str]
    path: Path

    def wait_ready(self, count: int, timeout: float = 90) -> None:
        """Wait until `count` tests hold their sandboxes (bounded)."""
        ready = self.path / "ready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready.is_dir() and len(list(ready.iterdir())) >= count:
                return
            if self.process.poll() is not None:
                raise AssertionError(f"inner run ended early:\n{self.finish()[1]}")
            time.sleep(0.05)
        raise AssertionError(f"only {len(list(ready.iterdir()))} of {count} tests got ready")

    def signal(self, sig: int, *, group: bool = False) -> None:
        """Send `sig` to pytest (or to its whole process group)."""
        if group:
            os.killpg(self.process.pid, sig)
        else:
            os.kill(self.process.pid, sig)

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """Exit code and output, once the run ended (killed if it outlives `timeout`)."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            out, _ = self.process.communicate()
            raise AssertionError(f"inner run hung for {timeout}s:\n{out}") from None
        return self.process.returncode, out


def start_inner(path: Path, server: LocalServer, args: Sequence[str]) -> Inner:
    """Start ``python -m pytest`` in `path` against `server` (local backend, given URL)."""
    env = dict(os.environ, DAYTONA_API_KEY=server.token)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--daytona-backend",
        "local",
        "--daytona-api-url",
        server.api_url,
        *args,
    ]
    process = subprocess.Popen(
        command,
        cwd=path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=default_signals,
    )
    return Inner(process, path)


def settle(server: LocalServer, timeout: float = 30) -> dict[str, str]:
    """The server's sandbox states once deletions in flight have landed (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        states: dict[str, str] = dict(server.stats()["states"])
        busy = any(state in ("destroying", "stopping") for state in states.values())
        if not busy or time.monotonic() > deadline:
            return {k: v for k, v in states.items() if v not in ("destroying", "destroyed")}
        time.sleep(0.1)


def wait_for_exit(pids: Sequence[int], timeout: float = 60) -> None:
    """Wait until none of `pids` is alive (bounded)."""
    from pytest_daytona.run.coordination import pid_alive

    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return found
