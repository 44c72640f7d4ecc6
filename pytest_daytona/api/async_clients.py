"""One `daytona.AsyncDaytona` client per event loop, for the async fixtures.

An `AsyncDaytona` holds an aiohttp session, which belongs to the event loop it was first used
in, and async test runners (pytest-asyncio, anyio) give tests loops of various scopes. So each
loop gets its own client, made on first use in it. It is closed in that loop when the loop
shuts down its async generators, which `asyncio.run` and `asyncio.Runner` (both runners' way
of ending a loop) do before closing it: the client's guard is such a generator.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daytona import AsyncDaytona, DaytonaConfig


@dataclass
class _LoopClient:
    client: AsyncDaytona
    guard: AsyncGenerator[None, None]  # held here: the loop keeps only a weak reference


class AsyncClients:
    """The `AsyncDaytona` clients of one process, by event loop."""

    def __init__(self, config: Callable[[], DaytonaConfig]) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )

    async def get(self) -> AsyncDaytona:
        """The running loop's client, made now if this loop has none yet."""
        loop = asyncio.get_running_loop()
        with self._lock:  # one loop runs one task at a time: the lock is for other threads
            found = self._by_loop.get(loop)
            if found is not None:
                return found.client
            from daytona import AsyncDaytona

            client = AsyncDaytona(self._config())
            guard = _close_at_shutdown(client, lambda: self._forget(loop))
            self._by_loop[loop] = _LoopClient(client, guard)
        await guard.__anext__()  # its first step registers it with the loop
        return client

    def __len__(self) -> int:
        """How many loops have a client now."""
        with self._lock:
            return len(self._by_loop)

    def _forget(self, loop: asyncio.AbstractEventLoop) -> None:
        # The client refers to its loop, so the weak key alone would never let go of either.
        with self._lock:
            self._by_loop.pop(loop, None)


async def _close_at_shutdown(
    client: AsyncDaytona, forget: Callable[[], None]
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        forget()
        await client.close()  # type: ignore[no-untyped-call]
