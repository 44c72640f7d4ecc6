"""`calls.Caller.call` for coroutines: the same deadlines, retries, short errors and circuit,
awaited in the test's event loop instead of run in a thread (see `calls`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .calls import DEADLINE_GRACE, Attempt, Caller, Retry
from .deadlines import DeadlineExceeded

T = TypeVar("T")


async def call_async(
    caller: Caller,
    operation: str,
    fn: Callable[[Attempt], Awaitable[T]],
    *,
    timeout: float,
    budget: float,
    target: str | None = None,
    retry: Retry = "idempotent",
    passthrough: tuple[type[BaseException], ...] = (),
    use_circuit: bool = True,
) -> T:
    """Await `fn(attempt)` until it succeeds, exactly as `Caller.call` runs its `fn`: each
    attempt within `timeout`, all within `timeout + budget`; an attempt past its deadline
    is cancelled."""
    __tracebackhide__ = True
    tries = caller.tries(operation, timeout, budget, target, retry, use_circuit)
    while True:
        attempt = tries.next()
        try:
            result = await _within(fn(attempt), attempt.limit + DEADLINE_GRACE)
        except passthrough:
            tries.answered()
            raise
        except Exception as exc:
            wait = tries.failed(exc)
            if wait is None:
                raise
            await asyncio.sleep(wait)
            continue
        tries.answered()
        return result


async def _within(awaitable: Awaitable[T], limit: float) -> T:
    try:
        return await asyncio.wait_for(awaitable, limit)
    except asyncio.TimeoutError:
        raise DeadlineExceeded(f"no answer within {limit:.3g}s") from None
