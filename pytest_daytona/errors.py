"""The errors pytest-daytona raises, in one place."""

from __future__ import annotations


class DaytonaPluginError(Exception):
    """Base of every error pytest-daytona raises itself."""


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
