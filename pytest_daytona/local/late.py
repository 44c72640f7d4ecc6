"""Requests answered with a fault at once and carried out later, as behind a gateway timeout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[str]]


class LateCompletions:
    """Background completions of requests whose client already got a fault.

    Each waits its delay, then runs. On close, those still waiting are cancelled (they never
    happen) and those already running get `grace` seconds to finish before they are cancelled
    too (as a request in flight is when the server stops).
    """

    def __init__(self, grace: float = 5.0) -> None:
        self.grace = grace
        self._waiting: set[asyncio.Task[None]] = set()
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._waiting) + len(self._running)

    def schedule(self, delay: float, label: str, work: Work) -> None:
        """Run `work` `delay` seconds from now; `label` names it in the log."""
        if self._closed:
            log.debug("server stopping: late completion of %s dropped", label)
            return
        task = asyncio.ensure_future(self._later(delay, label, work))
        self._waiting.add(task)
        task.add_done_callback(self._forget)

    async def _later(self, delay: float, label: str, work: Work) -> None:
        await asyncio.sleep(delay)
        task = asyncio.current_task()
        assert task is not None
        self._waiting.discard(task)
        self._running.add(task)
        try:
            outcome = await work()
        except Exception:
            log.exception("late completion of %s failed", label)
            return
        log.debug("late completion of %s: %s", label, outcome)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._waiting.discard(task)
        self._running.discard(task)

    async def close(self) -> None:
        """Cancel the completions still waiting and finish the ones under way."""
        self._closed = True
        for task in self._waiting:
            task.cancel()
        pending = self._waiting | self._running
        if not pending:
            return
        _, overdue = await asyncio.wait(pending, timeout=self.grace)
        for task in overdue:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
