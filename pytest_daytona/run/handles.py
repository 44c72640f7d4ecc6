"""The handles a test gets on a sandbox: a `DaytonaSandbox`, or its async form, whose every API
call goes through the process's caller (deadline, retries, circuit breaker) and whose commands
are counted for the end-of-run summary."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from ..api.async_calls import call_async
from ..api.calls import Attempt, Retry
from ..api.client import Api
from ..config.settings import Settings
from ..handle.async_sandbox import AsyncDaytonaSandbox
from ..handle.sandbox import RUN_OPERATION, DaytonaSandbox, Workspace
from ..leases.lease import describe
from .stats import RunStats

T = TypeVar("T")

if TYPE_CHECKING:
    from daytona import AsyncSandbox, Sandbox

    from ..api.backend import Backend


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
        _count(stats, sdk.id, operation, started)
        return result

    return DaytonaSandbox(sdk, workspace, default_timeout=settings.timeout, call=call)


def make_async_handle(
    backend: Backend, sync: DaytonaSandbox, settings: Settings, stats: RunStats
) -> AsyncDaytonaSandbox:
    """The async form of `sync`: its calls go through `backend`'s `AsyncDaytona` client of the
    running event loop, with the same caller, budget and command counting as `sync`'s."""
    target = describe(sync.sdk)

    async def call(
        operation: str,
        fn: Callable[[Attempt], Awaitable[T]],
        *,
        timeout: float,
        retry: Retry = "idempotent",
        passthrough: tuple[type[BaseException], ...] = (),
    ) -> T:
        __tracebackhide__ = True
        started = time.monotonic()
        result = await call_async(
            backend.caller,
            operation,
            fn,
            timeout=timeout,
            budget=settings.retry_budget,
            target=target,
            retry=retry,
            passthrough=passthrough,
        )
        _count(stats, sync.id, operation, started)
        return result

    async def connect() -> AsyncSandbox:
        client = await backend.async_client()
        return await call("connect to", lambda _: client.get(sync.id), timeout=settings.timeout)

    return AsyncDaytonaSandbox(sync, connect, call)


def _count(stats: RunStats, sandbox_id: str, operation: str, started: float) -> None:
    if operation == RUN_OPERATION:
        stats.command(sandbox_id, time.monotonic() - started)
