"""What the processes of one test run share: a run directory with file locks and lease records.

The controller (the only process without xdist, else xdist's controller) makes the directory;
xdist workers get its path through ``workerinput``. The shared session sandbox's record is
written under a lock by whichever process creates the sandbox; every lease a process takes is
recorded too, so the controller can release what a crashed worker left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from .._files import atomic_write
from ..errors import CoordinationError
from ..leases.create_params import LABEL_PREFIX
from ..leases.lease import LeaseRecord

__all__ = ["RunDir", "ci_labels", "pid_alive", "run_dirs"]

SESSION_RECORD = "session.json"
OWNER_FILE = "owner"
_LEASES = "leases"
_PROCS = "procs"


def default_parent() -> Path:
    """Where this user's run directories live: a private folder in the temp dir."""
    return Path(tempfile.gettempdir()) / f"pytest-daytona-{os.getuid()}"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this machine is alive (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: trust kill(0)
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def run_dirs(parent: Path | None = None) -> list[RunDir]:
    """Every run directory of this user on this machine."""
    root = parent or default_parent()
    if not root.is_dir():
        return []
    return [RunDir(path) for path in sorted(root.iterdir()) if (path / _LEASES).is_dir()]


class RunDir:
    """The directory of one test run (xdist's ``testrun_uid``), private to this user."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, run_id: str, parent: Path | None = None) -> RunDir:
        """Make the directory of run `run_id`, by default under a per-user parent in the
        temp dir (never the shared temp root itself)."""
        if parent is None:
            parent = default_parent()
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = parent / (re.sub(r"[^A-Za-z0-9_-]", "_", run_id) or "run")
        (path / _LEASES).mkdir(parents=True, exist_ok=True)
        (path / _PROCS).mkdir(exist_ok=True)
        run_dir = cls(path)
        atomic_write(path / OWNER_FILE, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return run_dir

    @property
    def run_id(self) -> str:
        """The run id this directory is named after."""
        return self.path.name

    def owner_pid(self) -> int | None:
        """The pid of the process that made the directory (the controller), if recorded."""
        try:
            return int((self.path / OWNER_FILE).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def register(self, pid: int | None = None) -> None:
        """Record a process (an xdist worker) taking part in the run."""
        procs = self.path / _PROCS
        procs.mkdir(exist_ok=True)
        (procs / str(pid or os.getpid())).touch()

    def unregister(self, pid: int | None = None) -> None:
        """Forget a process of the run."""
        (self.path / _PROCS / str(pid or os.getpid())).unlink(missing_ok=True)

    def live_processes(self) -> list[int]:
        """Registered processes of the run still alive on this machine."""
        procs = self.path / _PROCS
        pids = [int(p.name) for p in procs.iterdir() if p.name.isdigit()] if procs.is_dir() else []
        return [pid for pid in pids if pid_alive(pid)]

    def alive(self) -> bool:
        """Whether any process of the run (its controller or a worker) is still alive."""
        owner = self.owner_pid()
        return (owner is not None and pid_alive(owner)) or bool(self.live_processes())

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        """Hold lock `name` of this run. A lock left by a dead process is free again (the
        kernel drops it with the process); waiting longer than `timeout` is an error."""
        import filelock

        lock_file = self.path / f"{name}.lock"
        lock = filelock.FileLock(lock_file, timeout=timeout)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise CoordinationError(
                f"waited {timeout:g}s for {lock_file}: another process of this test run is "
                "still setting up the shared session sandbox. Raise --daytona-lock-timeout "
                "(ini daytona_lock_timeout) if creating a sandbox takes that long here."
            ) from None
        try:
            yield
        finally:
            lock.release()

    def read_session(self) -> LeaseRecord | None:
        """The shared session sandbox's record, if one was written."""
        return _read(self.path / SESSION_RECORD)

    def write_session(self, record: LeaseRecord) -> None:
        """Record the shared session sandbox (call under the ``session`` lock)."""
        atomic_write(self.path / SESSION_RECORD, record.model_dump_json().encode())

    def forget_session(self) -> None:
        """Drop the session record (the sandbox was released)."""
        (self.path / SESSION_RECORD).unlink(missing_ok=True)

    def add_lease(self, record: LeaseRecord) -> None:
        """Record a lease a process took, until it releases it."""
        target = self.path / _LEASES / f"{record.sandbox_id}.json"
        atomic_write(target, record.model_dump_json().encode())

    def remove_lease(self, sandbox_id: str) -> None:
        """Forget a released lease."""
        (self.path / _LEASES / f"{sandbox_id}.json").unlink(missing_ok=True)

    def leftover_leases(self) -> list[LeaseRecord]:
        """Leases still recorded: taken by processes that never released them."""
        found = (_read(p) for p in sorted((self.path / _LEASES).glob("*.json")))
        return [record for record in found if record is not None]

    def remove(self) -> None:
        """Delete the run directory."""
        shutil.rmtree(self.path, ignore_errors=True)


def _read(path: Path) -> LeaseRecord | None:
    from pydantic import ValidationError

    try:
        return LeaseRecord.model_validate_json(path.read_bytes())
    except (FileNotFoundError, ValidationError):
        return None


#: CI job identifiers worth a label, so that a cleanup can target one job.
CI_VARIABLES = {
    "GITHUB_RUN_ID": "gh-run-id",
    "GITHUB_RUN_ATTEMPT": "gh-run-attempt",
    "GITHUB_JOB": "gh-job",
    "CI_PIPELINE_ID": "gitlab-pipeline-id",
    "CI_JOB_ID": "gitlab-job-id",
}


def ci_labels(environ: Mapping[str, str]) -> dict[str, str]:
    """Labels naming the CI job this run belongs to (none outside CI)."""
    labels = {
        f"{LABEL_PREFIX}-{name}": environ[var][:63]
        for var, name in CI_VARIABLES.items()
        if environ.get(var)
    }
    if environ.get("CI", "").lower() in ("1", "true", "yes"):
        labels[f"{LABEL_PREFIX}-ci"] = "true"
    return labels
