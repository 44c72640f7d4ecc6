"""Deletes a process runs in the background, so that a test's teardown does not wait for them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

#: Deletes a process runs at once in the background.
MAX_RELEASES = 8


@dataclass(frozen=True)
class ReleaseFailure:
    """A sandbox that could not be released: it may be left behind."""

    sandbox_id: str
    name: str
    reason: str


class BackgroundDeletes:
    """At most `MAX_RELEASES` calls of `release(sandbox_id)` at once, in worker threads."""

    def __init__(self, release: Callable[[str], None]) -> None:
        self._release = release
        self._lock = threading.Lock()
        self._running: dict[str, Future[None]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def busy(self) -> set[str]:
        """Sandboxes whose delete is under way."""
        with self._lock:
            return set(self._running)

    def submit(self, sandbox_id: str) -> None:
        """Start deleting `sandbox_id` (once: a delete under way is not started again)."""
        with self._lock:
            if sandbox_id in self._running:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    MAX_RELEASES, thread_name_prefix="pytest-daytona-release"
                )
            self._running[sandbox_id] = self._pool.submit(self._run, sandbox_id)

    def _run(self, sandbox_id: str) -> None:
        try:
            self._release(sandbox_id)
        finally:
            with self._lock:
                self._running.pop(sandbox_id, None)

    def wait(self, limit: float) -> list[str]:
        """Wait up to `limit` seconds for the deletes under way; the ones still running."""
        with self._lock:
            pending = dict(self._running)
        if not pending:
            return []
        _, late = wait(pending.values(), timeout=limit)
        return [sandbox_id for sandbox_id, future in pending.items() if future in late]

    def shutdown(self) -> None:
        """Stop taking deletes; those not started are cancelled."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
