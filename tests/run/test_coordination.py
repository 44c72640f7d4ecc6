"""The run directory: locks with a bounded wait, records, stale locks; CI labels."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pytest_daytona.errors import CoordinationError
from pytest_daytona.leases.lease import LeaseRecord
from pytest_daytona.run.coordination import RunDir, ci_labels

#: The quick development loop (`pytest -m quick`, README: Development) runs all of these.
pytestmark = pytest.mark.quick

HOLD_LOCK = """
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def record(sandbox_id: str) -> LeaseRecord:
    return LeaseRecord(
        sandbox_id=sandbox_id,
        name=f"n-{sandbox_id}",
        workspace="/home/daytona/pytest-workspace",
        scope="function",
        reuse=False,
        run_id="r",
        worker="gw0",
        signature="s",
    )


def test_records_round_trip(tmp_path: Path) -> None:
    run = RunDir.create("run-1", tmp_path)
    assert run.read_session() is None
    run.write_session(record("s1"))
    assert run.read_session() == record("s1")
    run.add_lease(record("a"))
    run.add_lease(record("b"))
    run.remove_lease("a")
    assert run.leftover_leases() == [record("b")]
    run.remove()
    assert not run.path.exists()


def test_default_location_is_private_and_per_run() -> None:
    run = RunDir.create("../abc/def")
    try:
        assert run.path.parent == Path(tempfile.gettempdir()) / f"pytest-daytona-{os.getuid()}"
        assert run.path.parent.stat().st_mode & 0o077 == 0  # private to this user
        assert run.path.name == "___abc_def"  # one directory, inside the parent
    finally:
        run.remove()


def test_lock_wait_is_bounded_with_a_clear_error(tmp_path: Path) -> None:
    run = RunDir.create("run-2", tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run.path / "session.lock"), "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        expected = r"waited 0.3s .*--daytona-lock-timeout"
        with pytest.raises(CoordinationError, match=expected), run.lock("session", 0.3):
            pass
    finally:
        holder.kill()
        holder.wait()
    # The holder died without unlocking: its lock file stays but the lock is free.
    assert (run.path / "session.lock").exists()
    with run.lock("session", 5):  # would raise CoordinationError if it were still held
        run.write_session(record("after-crash"))
    assert run.read_session() == record("after-crash")


def test_missing_lock_file_is_fine(tmp_path: Path) -> None:
    run = RunDir.create("run-3", tmp_path)
    (run.path / "session.lock").unlink(missing_ok=True)
    with run.lock("session", 1):
        run.write_session(record("x"))
    assert run.read_session() == record("x")


def test_ci_labels() -> None:
    env = {
        "CI": "true",
        "GITHUB_RUN_ID": "123",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_JOB": "test",
        "CI_JOB_ID": "77",
        "HOME": "/root",
    }
    assert ci_labels(env) == {
        "pytest-daytona-gh-run-id": "123",
        "pytest-daytona-gh-run-attempt": "2",
        "pytest-daytona-gh-job": "test",
        "pytest-daytona-gitlab-job-id": "77",
        "pytest-daytona-ci": "true",
    }
    assert ci_labels({"HOME": "/root"}) == {}
