"""The embedded server on the oldest and newest Python (issue 20): what it does in place of
3.11's APIs on 3.10 (each 3.10 path runs on every Python here, and where 3.11's own API exists
it is the reference), and what 3.13's `subprocess` (posix_spawn) would leave behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pytest_daytona.local.agent import procs
from pytest_daytona.local.state.records import iso_before_311, iso_time, parse_iso

#: The quick development loop (`pytest -m quick`, README: Development) runs all of these.
pytestmark = pytest.mark.quick

UTC = timezone.utc
EXPECTED = {
    # What the SDK sends for a datetime query parameter (`%Y-%m-%dT%H:%M:%S.%f%z`).
    "2026-12-06T23:11:06.694381+0000": datetime(2026, 12, 6, 23, 11, 6, 694381, UTC),
    "2026-12-06T23:11:06.694Z": datetime(2026, 12, 6, 23, 11, 6, 694000, UTC),
    "2026-12-06T23:11:06.5+00:00": datetime(2026, 12, 6, 23, 11, 6, 500000, UTC),
    "2026-12-06T23:11:06.123456789+00:00": datetime(2026, 12, 6, 23, 11, 6, 123456, UTC),
    "2026-12-06T23:11:06-0530": datetime(
        2026, 12, 6, 23, 11, 6, tzinfo=timezone(-timedelta(hours=5, minutes=30))
    ),
    "2026-12-06T23:11+02": datetime(2026, 12, 6, 23, 11, tzinfo=timezone(timedelta(hours=2))),
    "2026-12-06 23:11:06": datetime(2026, 12, 6, 23, 11, 6),
    "2026-12-06": datetime(2026, 12, 6),
    "20261206T231106Z": datetime(2026, 12, 6, 23, 11, 6, tzinfo=UTC),
}


@pytest.mark.parametrize("text", list(EXPECTED))
def test_dates_read_before_311_as_311_reads_them(text: str) -> None:
    assert iso_before_311(text) == EXPECTED[text]
    assert parse_iso(text) == EXPECTED[text]
    if sys.version_info >= (3, 11):
        assert datetime.fromisoformat(text) == EXPECTED[text]


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "2026-12-06T25:00"])
def test_a_date_neither_reads_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        iso_before_311(text)
    with pytest.raises(ValueError):
        parse_iso(text)


def test_the_servers_own_times_read_back() -> None:
    assert parse_iso(iso_time(1_800_000_000.25)).timestamp() == 1_800_000_000.25


@pytest.mark.parametrize(
    "version", [(3, 10, 13, "final", 0), sys.version_info], ids=["3.10", "this-python"]
)
def test_an_agent_process_gets_a_group_of_its_own_in_the_same_session(
    version: tuple[object, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``process_group=0`` (3.11) or setpgid(0, 0) before exec (3.10): the process leads a new
    group, so killing the group ends it, and stays in the agent's session (not setsid)."""
    monkeypatch.setattr(procs.sys, "version_info", version)
    proc = procs.popen(["sleep", "30"], stdout=subprocess.DEVNULL)
    monkeypatch.undo()
    try:
        assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
        assert os.getsid(proc.pid) == os.getsid(0)
        procs.kill_group(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()
        procs.forget(proc)


#: Run in a process started by posix_spawn, as Python 3.13's `subprocess` starts xdist's
#: workers: its own ignored signals, again after `unignore_libc_signals`, then a child's.
SPAWNED = """
from pytest_daytona.local.agent import procs

def ignored():
    with open("/proc/self/status") as status:
        return next(line for line in status if line.startswith("SigIgn:")).split()[1]

print(ignored(), flush=True)
procs.unignore_libc_signals()
print(ignored(), flush=True)
procs.popen(["grep", "SigIgn", "/proc/self/status"]).wait()
"""
LIBC_BITS = 1 << 31 | 1 << 32  # signals 32 and 33


def test_glibcs_own_signals_that_posix_spawn_left_ignored_are_reset(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    pid = os.posix_spawn(
        sys.executable,
        [sys.executable, "-c", SPAWNED],
        os.environ,
        file_actions=[(os.POSIX_SPAWN_OPEN, 1, str(out), os.O_WRONLY | os.O_CREAT, 0o644)],
    )
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    spawned, after, child = out.read_text().splitlines()
    if not int(spawned, 16) & LIBC_BITS:
        pytest.skip(f"posix_spawn leaves no glibc signal ignored here (SigIgn {spawned})")
    assert not int(after, 16) & LIBC_BITS, after
    assert not int(child.split()[1], 16) & LIBC_BITS, child  # (SIGINT: a background job's)
