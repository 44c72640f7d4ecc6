"""The errors pytest-daytona raises, in one place."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

#: How many trailing lines of stdout and of stderr a `CommandError` shows.
TAIL_LINES = 20
_SHOWN_COMMAND_CHARS = 500


@dataclass(frozen=True)
class Problem:
    """One invalid setting: which, from where, what is wrong, and how to fix it.

    `value` is the offending value as shown to the user (a repr), None when it must not be
    shown (the API key) or there is none.
    """

    setting: str
    source: str
    message: str
    value: str | None = None
    fix: str = ""

    def __str__(self) -> str:
        head = self.setting if self.value is None else f"{self.setting} = {self.value}"
        tail = f"; fix: {self.fix}" if self.fix else ""
        return f"{head} (from {self.source}): {self.message}{tail}"


class CommandOutcome(Protocol):
    """What a `CommandError` reads of its result (an `ExecResult`, which is defined above
    the errors: it raises them)."""

    @property
    def command(self) -> str: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def duration(self) -> float: ...
    @property
    def ok(self) -> bool: ...


class DaytonaPluginError(Exception):
    """Base of every error pytest-daytona raises itself."""


class SettingsError(DaytonaPluginError):
    """Invalid settings; lists every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = "".join(f"\n  {problem}" for problem in self.problems)
        super().__init__(f"{count} invalid pytest-daytona setting{'s' * (count != 1)}:{lines}")


class CommandError(DaytonaPluginError):
    """A command exited non-zero or timed out; `result` holds everything it printed.

    The message is the command, its exit code (or the timeout) and the last `TAIL_LINES`
    lines of its stdout and stderr."""

    def __init__(self, result: CommandOutcome) -> None:
        self.result = result
        super().__init__(_failure_message(result))


class BackendError(DaytonaPluginError):
    """No sandbox can be had with these settings (e.g. no API key for the daytona backend)."""


class BackendCallError(BackendError):
    """A call to the Daytona API failed for good: after its retries, or past its deadline.

    The message is short and complete: the operation, the sandbox, the HTTP status, the
    server's message and what to do. `status` is None for transport failures and deadlines.
    """

    def __init__(
        self,
        operation: str,
        message: str,
        *,
        target: str | None = None,
        status: int | None = None,
        fix: str = "",
        attempts: int = 1,
        unreachable: bool = False,
    ) -> None:
        self.operation = operation
        self.target = target
        self.status = status
        self.server_message = message
        self.fix = fix
        self.attempts = attempts
        self.unreachable = unreachable
        what = f"{operation} {target}" if target else operation
        http = f"HTTP {status}: " if status is not None else ""
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        tail = f"; fix: {fix}" if fix else ""
        super().__init__(f"{what} failed{tries}: {http}{message}{tail}")


class BackendUnreachableError(BackendCallError):
    """The API stopped answering earlier in this run: the call was not even tried."""


class LeaseError(DaytonaPluginError):
    """A sandbox could not be acquired, resumed or released."""


class CoordinationError(DaytonaPluginError):
    """Waiting for another process of the run took too long."""


class SandboxWarning(UserWarning):
    """A sandbox could not be cleaned up as planned (it may be left behind)."""


class IsolationWarning(UserWarning):
    """The local backend runs sandboxes without isolation from this machine (no working
    bubblewrap): their commands can reach everything the user running pytest can."""


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else "(empty)"


def _failure_message(result: CommandOutcome) -> str:
    shown = result.command
    if len(shown) > _SHOWN_COMMAND_CHARS:
        shown = shown[:_SHOWN_COMMAND_CHARS] + "..."
    if result.timed_out:
        what = f"timed out after {round(result.duration, 3):g}s"
    else:
        what = f"exited with code {result.exit_code}"
    return (
        f"command {what}: {shown}\n"
        f"--- stdout (last {TAIL_LINES} lines) ---\n{_tail(result.stdout)}\n"
        f"--- stderr (last {TAIL_LINES} lines) ---\n{_tail(result.stderr)}"
    )
