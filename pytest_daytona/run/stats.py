"""What one process did with sandboxes (counts and times), and the run's merged figures.

Each process counts its own (`SandboxSession.stats`); an xdist worker sends its figures to
the controller in ``config.workeroutput``, and the controller merges them for the summary.
"""

from __future__ import annotations

import threading
from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr

#: Key of a worker's figures in ``workeroutput``.
#: How a sandbox ended: deleted, stopped (a reusable one), kept, or still held.
End = Literal["deleted", "stopped", "kept", "held"]
ENDS: frozenset[str] = frozenset({"deleted", "stopped", "kept"})


class SandboxLine(BaseModel):
    """One sandbox this process made or joined, for the ``-v`` summary."""

    sandbox_id: str
    name: str
    scope: str
    worker: str
    how: str  # created, resumed (reuse), reused (joined)
    end: End = "held"
    test: str = ""  # the last test that released it
    commands: int = 0


class RunStats(BaseModel):
    """Counts and seconds of one process, or of the whole run once merged."""

    created: int = 0
    resumed: int = 0
    reused: int = 0
    deleted: int = 0
    stopped: int = 0
    kept: int = 0
    commands: int = 0
    provisioning: float = 0.0
    running: float = 0.0
    releasing: float = 0.0
    sandboxes: dict[str, SandboxLine] = Field(default_factory=dict)

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def released(self) -> int:
        """Sandboxes deleted or stopped for reuse (not kept ones)."""
        return self.deleted + self.stopped

    @property
    def used(self) -> bool:
        """Whether anything was made, joined or released."""
        return bool(self.created or self.resumed or self.reused or self.released or self.kept)

    def acquired(
        self, sandbox_id: str, name: str, *, scope: str, worker: str, how: str, seconds: float
    ) -> None:
        """A sandbox was created, resumed or joined in `seconds`."""
        with self._lock:
            setattr(self, how, getattr(self, how) + 1)
            self.provisioning += seconds
            self.sandboxes.setdefault(
                sandbox_id,
                SandboxLine(sandbox_id=sandbox_id, name=name, scope=scope, worker=worker, how=how),
            )

    def command(self, sandbox_id: str, seconds: float) -> None:
        """A command ran in `sandbox_id` in `seconds`."""
        with self._lock:
            self.commands += 1
            self.running += seconds
            line = self.sandboxes.get(sandbox_id)
            if line is not None:
                line.commands += 1

    def tested(self, sandbox_id: str, nodeid: str) -> None:
        """`nodeid` released `sandbox_id` (it is the test a kept sandbox is kept for)."""
        with self._lock:
            line = self.sandboxes.get(sandbox_id)
            if line is not None:
                line.test = nodeid

    def released_one(self, sandbox_id: str, name: str, end: End, seconds: float) -> None:
        """`sandbox_id` ended `end` after `seconds` of releasing (a release that failed: its
        time only, with `end` ``held``)."""
        with self._lock:
            self.releasing += seconds
            if end == "held":
                return
            setattr(self, end, getattr(self, end) + 1)
            line = self.sandboxes.get(sandbox_id)
            if line is None:  # made by a crashed worker, or a late create
                line = SandboxLine(sandbox_id=sandbox_id, name=name, scope="?", worker="?", how="")
                self.sandboxes[sandbox_id] = line
            line.end = end

    def merge(self, other: RunStats) -> None:
        """Add `other`'s figures (another process's) to these."""
        with self._lock:
            for field in ("created", "resumed", "reused", "deleted", "stopped", "kept"):
                setattr(self, field, getattr(self, field) + getattr(other, field))
            self.commands += other.commands
            self.provisioning += other.provisioning
            self.running += other.running
            self.releasing += other.releasing
            for sandbox_id, line in other.sandboxes.items():
                mine = self.sandboxes.get(sandbox_id)
                if mine is None:
                    self.sandboxes[sandbox_id] = line.model_copy()
                    continue
                mine.commands += line.commands
                mine.test = mine.test or line.test
                if mine.end == "held":
                    mine.end = line.end
                if mine.scope == "?":
                    mine.scope, mine.worker, mine.how = line.scope, line.worker, line.how

    def output(self) -> dict[str, object]:
        """These figures as plain data, for ``workeroutput``."""
        with self._lock:
            return self.model_dump(mode="json")
