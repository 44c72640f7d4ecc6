"""What a command did in a sandbox (`ExecResult`) and the error `check()` raises."""

from __future__ import annotations

from dataclasses import dataclass

#: How many trailing lines of stdout and of stderr a `CommandError` shows.
TAIL_LINES = 20
_SHOWN_COMMAND_CHARS = 500


class CommandError(Exception):
    """A command exited non-zero or timed out; `result` holds everything it printed."""

    def __init__(self, result: ExecResult) -> None:
        self.result = result
        super().__init__(_failure_message(result))


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
        if not self.ok:
            raise CommandError(self)
        return self


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else "(empty)"


def _failure_message(result: ExecResult) -> str:
    shown = result.command
    if len(shown) > _SHOWN_COMMAND_CHARS:
        shown = shown[:_SHOWN_COMMAND_CHARS] + "..."
    if result.timed_out:
        what = f"timed out after {result.duration:g}s"
    else:
        what = f"exited with code {result.exit_code}"
    return (
        f"command {what}: {shown}\n"
        f"--- stdout (last {TAIL_LINES} lines) ---\n{_tail(result.stdout)}\n"
        f"--- stderr (last {TAIL_LINES} lines) ---\n{_tail(result.stderr)}"
    )
