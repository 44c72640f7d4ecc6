"""What a command did in a sandbox (`ExecResult`); `check()` raises `errors.CommandError`."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CommandError

__all__ = ["ExecResult"]


@dataclass(frozen=True)
class ExecResult:
    """What one command did in a sandbox."""

    exit_code: int | None  # None when the command timed out
    stdout: str
    stderr: str
    timed_out: bool
    duration: float  # seconds
    command: str  # as shell text, for messages

    def __post_init__(self) -> None:
        if self.timed_out and self.exit_code is not None:
            raise ValueError("a command that timed out has no exit code")

    @property
    def ok(self) -> bool:
        """Whether the command exited 0 in time."""
        return self.exit_code == 0 and not self.timed_out

    def check(self) -> ExecResult:
        """Return self if the command succeeded, else raise `CommandError`."""
        __tracebackhide__ = True
        if not self.ok:
            raise CommandError(self)
        return self
