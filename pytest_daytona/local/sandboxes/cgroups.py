"""Control groups of sandboxes, where the server may make them: a sandbox's processes,
memory and CPU held together, whatever each process does.

cgroup v2 (one hierarchy with the pids, memory and cpu controllers delegated to the
server's own group) or v1 (a hierarchy per controller, writable); elsewhere none, and the
per-process limits of :class:`~.confinement.Limits` are all there is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .confinement import GIB, Limits

log = logging.getLogger(__name__)

_ROOT = Path("/sys/fs/cgroup")
_V1 = ("pids", "memory", "cpu")
_PERIOD_US = 100_000


def _own_paths() -> dict[str, str]:
    """This process's cgroup per v1 controller, and ``""`` for the v2 hierarchy."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


@dataclass
class Cgroup:
    """One sandbox's groups (one per hierarchy)."""

    dirs: tuple[Path, ...]

    def join(self) -> None:
        """Move the calling process in (called in the agent's child before it execs)."""
        for directory in self.dirs:
            (directory / "cgroup.procs").write_text("0")

    def remove(self) -> None:
        """Remove the groups (their processes are gone by now; a left one is killed). A
        group empties a moment after its last process was killed: tried for a second."""
        for directory in self.dirs:
            for _ in range(50):
                with contextlib.suppress(OSError):
                    for pid in (directory / "cgroup.procs").read_text().split():
                        with contextlib.suppress(OSError):
                            os.kill(int(pid), signal.SIGKILL)
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


class CgroupTree:
    """This server's group, under which each sandbox gets its own."""

    def __init__(self, bases: tuple[Path, ...], v2: bool) -> None:
        self.bases = bases
        self.v2 = v2

    @classmethod
    def make(cls, prefix: str = "pytest-daytona-") -> CgroupTree | None:
        """This server's group (`prefix` and its PID) under its own, or None where it may
        not make one. Empty groups a server left (it was killed) are removed first."""
        own = _own_paths()
        name = f"{prefix}{os.getpid()}"
        try:
            if (_ROOT / "cgroup.controllers").exists():
                parent = _ROOT / own.get("", "/").lstrip("/")
                _remove_stale(parent, prefix)
                base = parent / name
                base.mkdir(exist_ok=True)
                (base / "cgroup.subtree_control").write_text("+pids +memory +cpu")
                return cls((base,), v2=True)
            bases = []
            for controller in _V1:
                parent = _ROOT / controller / own.get(controller, "/").lstrip("/")
                _remove_stale(parent, prefix)
                base = parent / name
                base.mkdir(exist_ok=True)
                bases.append(base)
            return cls(tuple(bases), v2=False)
        except OSError as exc:
            log.info("local server: no control groups for sandboxes (%s): rlimits only", exc)
            return None

    def create(self, sandbox_id: str, limits: Limits) -> Cgroup | None:
        """A group for one sandbox with `limits`; None if it cannot be made."""
        dirs = tuple(base / sandbox_id for base in self.bases)
        try:
            for directory in dirs:
                directory.mkdir(exist_ok=True)
            quota = limits.cpu * _PERIOD_US
            if self.v2:
                (group,) = dirs
                (group / "pids.max").write_text(str(limits.processes))
                (group / "memory.max").write_text(str(limits.memory_gib * GIB))
                with contextlib.suppress(OSError):  # absent without swap accounting
                    (group / "memory.swap.max").write_text("0")
                (group / "cpu.max").write_text(f"{quota} {_PERIOD_US}")
            else:
                pids, memory, cpu = dirs
                (pids / "pids.max").write_text(str(limits.processes))
                (memory / "memory.limit_in_bytes").write_text(str(limits.memory_gib * GIB))
                (cpu / "cpu.cfs_period_us").write_text(str(_PERIOD_US))
                (cpu / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError as exc:
            log.warning("local server: sandbox %s gets no control group: %s", sandbox_id, exc)
            Cgroup(dirs).remove()
            return None
        return Cgroup(dirs)

    def remove(self) -> None:
        """Remove the server's group and any sandbox group left in it (on server stop)."""
        for base in self.bases:
            with contextlib.suppress(OSError):
                Cgroup(tuple(g for g in base.iterdir() if g.is_dir())).remove()
            with contextlib.suppress(OSError):
                base.rmdir()


def _remove_stale(parent: Path, prefix: str) -> None:
    """Remove the groups of servers that are gone (their sandboxes' groups first)."""
    for base in parent.glob(f"{prefix}*"):
        pid = base.name[len(prefix) :]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        with contextlib.suppress(OSError):
            Cgroup(tuple(g for g in base.iterdir() if g.is_dir())).remove()
        with contextlib.suppress(OSError):
            base.rmdir()
