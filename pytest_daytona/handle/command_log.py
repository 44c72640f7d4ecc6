"""The commands a sandbox handle ran, kept short for failure reports (`diagnostics`)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from ..results import ExecResult, rounded_repr

#: Trailing lines of stdout and of stderr kept per command.
KEPT_LINES = 10
#: Commands kept per handle; older ones are dropped first.
KEPT_COMMANDS = 100
_LINE_CHARS = 240
_COMMAND_CHARS = 300


class _Counter:
    """Numbers every command this process records, across handles, in the order they end."""

    def __init__(self) -> None:
        self._next = 1
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            number, self._next = self._next, self._next + 1
            return number

    def peek(self) -> int:
        with self._lock:
            return self._next


_COUNTER = _Counter()


def position() -> int:
    """The number the next command recorded in this process gets: `CommandLog.since` it
    gives the commands run from now on."""
    return _COUNTER.peek()


@dataclass(frozen=True, repr=False)
class CommandRecord:
    """One command a handle ran: what, where, how it ended, how long, what it printed last
    (its repr rounds `duration` to milliseconds)."""

    number: int
    command: str
    cwd: str | None  # as given to `run`; None: the workspace
    exit_code: int | None  # None when it timed out
    timed_out: bool
    duration: float  # seconds
    stdout_tail: str  # the last `KEPT_LINES` lines
    stderr_tail: str

    @property
    def outcome(self) -> str:
        """``exit 0`` or ``timed out``."""
        return "timed out" if self.timed_out else f"exit {self.exit_code}"

    def __repr__(self) -> str:
        return rounded_repr(self)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _tail(text: str) -> str:
    return "\n".join(_shorten(line, _LINE_CHARS) for line in text.splitlines()[-KEPT_LINES:])


class CommandLog:
    """The last `KEPT_COMMANDS` commands of one handle (thread-safe)."""

    def __init__(self, limit: int = KEPT_COMMANDS) -> None:
        self._records: deque[CommandRecord] = deque(maxlen=limit)
        self._last_dropped = 0
        self._lock = threading.Lock()

    def add(self, result: ExecResult, cwd: str | None) -> CommandRecord:
        """Record what `result` says about a command run in `cwd`."""
        record = CommandRecord(
            number=_COUNTER.take(),
            command=_shorten(result.command, _COMMAND_CHARS),
            cwd=cwd,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            duration=result.duration,
            stdout_tail=_tail(result.stdout),
            stderr_tail=_tail(result.stderr),
        )
        with self._lock:
            if len(self._records) == self._records.maxlen:
                self._last_dropped = self._records[0].number
            self._records.append(record)
        return record

    def since(self, start: int) -> tuple[list[CommandRecord], bool]:
        """The kept commands numbered `start` or later, and whether any of those was dropped."""
        with self._lock:
            return [r for r in self._records if r.number >= start], self._last_dropped >= start

    def __iter__(self) -> Iterator[CommandRecord]:
        with self._lock:
            return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)
