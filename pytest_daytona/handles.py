"""The handle a test gets on a sandbox: a `DaytonaSandbox` whose every API call goes through
the process's caller (deadline, retries, circuit breaker) and whose commands are counted for
the end-of-run summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .calls import Attempt, Retry
from .lease import Api, describe
from .sandbox import RUN_OPERATION, DaytonaSandbox, Workspace
from .settings import Settings
from .stats import RunStats

T = TypeVar("T")

if TYPE_CHECKING:
    from daytona import Sandbox


def make_handle(
    api: Api, sdk: Sandbox, workspace: str | Workspace, settings: Settings, stats: RunStats
) -> DaytonaSandbox:
    """A handle on `sdk` whose calls use `api` with `settings`' budget; the time of each
    command run in it is added to `stats`."""
    target = describe(sdk)

    def call(
        operation: str,
        fn: Callable[[Attempt], T],
        *,
        timeout: float,
        retry: Retry = "idempotent",
        passthrough: tuple[type[BaseException], ...] = (),
    ) -> T:
        __tracebackhide__ = True
        started = time.monotonic()
        result: T = api.caller.call(
            operation,
            fn,
            timeout=timeout,
            budget=settings.retry_budget,
            target=target,
            retry=retry,
            passthrough=passthrough,
            use_circuit=api.circuit,
        )
        if operation == RUN_OPERATION:
            stats.command(sdk.id, time.monotonic() - started)
        return result

    return DaytonaSandbox(sdk, workspace, default_timeout=settings.timeout, call=call)
