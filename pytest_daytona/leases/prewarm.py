"""Sandboxes made ahead of need: while a test runs, the sandboxes of the next tests of this
process are created in the background, so a test gets one that is already started.

`Pool` holds at most `depth` sandboxes made ahead (being created or ready), per settings key,
and never more than the upcoming tests it was told about need: each made sandbox goes to one
test only, and every one no test took is deleted (by the session, which records each like any
lease). A failed background create (a 429, a quota) shrinks the pool by one instead of failing
a test, which then creates its sandbox itself. `Upcoming` says which tests come next: all the
remaining ones of this process, or, in an xdist worker, the ones it was handed so far.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest
    from daytona import Sandbox

    from ..config.settings import Settings

log = logging.getLogger(__name__)

#: How many upcoming sandbox tests, per unit of depth, a plan looks at.
WINDOW_PER_DEPTH = 4
Need = tuple[str, "Settings"]


def pool_key(settings: Settings) -> str:
    """Settings that make the same sandbox (params, labels, TTL) share a key."""
    return settings.model_dump_json(exclude={"api_key"})


class Pool:
    """A bounded set of sandboxes created in the background for the next tests.

    `create(settings)` makes and records one sandbox (it blocks; run in a pool thread);
    `discard(sandbox)` releases one no test will take.
    """

    def __init__(
        self,
        create: Callable[[Settings], Sandbox],
        discard: Callable[[Sandbox], None],
        depth: int,
    ) -> None:
        self._create = create
        self._discard = discard
        self.depth = depth
        self._cond = threading.Condition()
        self._ready: dict[str, deque[Sandbox]] = {}
        self._making: Counter[str] = Counter()
        self._upcoming: list[Need] = []
        self._stopped = False
        self._executor: ThreadPoolExecutor | None = None
        self._futures: set[Future[None]] = set()
        self.created = 0
        self.taken = 0
        self.failed = 0
        self.peak = 0  # the most sandboxes made ahead at one time

    @property
    def ahead(self) -> int:
        """Sandboxes made ahead now: being created or ready."""
        with self._cond:
            return self._ahead()

    def _ahead(self) -> int:
        return sum(len(q) for q in self._ready.values()) + sum(self._making.values())

    def plan(self, upcoming: Sequence[Need]) -> None:
        """The sandboxes the next tests will take, in order, the test about to run first."""
        with self._cond:
            self._upcoming = list(upcoming)
            self._fill()

    def take(self, key: str, timeout: float) -> Sandbox | None:
        """A sandbox made ahead for `key`: a ready one, else the one being created (waited
        for at most `timeout`); None when there is none (the caller creates its own)."""
        with self._cond:
            for index, (upcoming, _) in enumerate(self._upcoming):
                if upcoming == key:  # that test's need is met now, one way or another
                    del self._upcoming[index]
                    break
            found = self._cond.wait_for(
                lambda: self._ready.get(key) or not self._making[key] or self._stopped, timeout
            )
            sandbox = None
            if found and self._ready.get(key) and not self._stopped:
                sandbox = self._ready[key].popleft()
                self.taken += 1
            self._fill()
            return sandbox

    def halt(self) -> None:
        """Create nothing more; release the ready sandboxes (creates under way are released
        by the session's end of run, which waits for them)."""
        with self._cond:
            self._stopped = True
            left = [sandbox for queue in self._ready.values() for sandbox in queue]
            self._ready.clear()
            self._cond.notify_all()
        for sandbox in left:
            self._discard(sandbox)

    def stop(self, timeout: float) -> None:
        """`halt`, then wait (at most `timeout`) for the creates under way."""
        self.halt()
        with self._cond:
            futures, executor, self._executor = list(self._futures), self._executor, None
        wait(futures, timeout=timeout)
        if executor is not None:
            executor.shutdown(wait=False)

    def _fill(self) -> None:
        """Start creates for the first upcoming needs not covered, within the depth; release
        ready sandboxes no upcoming test needs."""
        if self._stopped:
            return
        seen: Counter[str] = Counter()
        ahead = self._ahead()
        for key, settings in self._upcoming:
            seen[key] += 1
            if len(self._ready.get(key, ())) + self._making[key] >= seen[key]:
                continue
            if ahead >= self.depth:
                break
            self._start(key, settings)
            ahead += 1
        self.peak = max(self.peak, ahead)
        for key, queue in self._ready.items():
            while queue and len(queue) + self._making[key] > seen[key]:
                self._discard(queue.pop())

    def _start(self, key: str, settings: Settings) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max(1, self.depth), thread_name_prefix="pytest-daytona-prewarm"
            )
        self._making[key] += 1
        future = self._executor.submit(self._make, key, settings)
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    def _make(self, key: str, settings: Settings) -> None:
        try:
            sandbox = self._create(settings)
        except Exception as exc:
            with self._cond:
                self._making[key] -= 1
                self.failed += 1
                self.depth = max(0, self.depth - 1)
                self._cond.notify_all()
            log.info("pytest-daytona: a create ahead of need failed, pool shrunk: %s", exc)
            return
        with self._cond:
            self._making[key] -= 1
            self.created += 1
            keep = not self._stopped
            if keep:
                self._ready.setdefault(key, deque()).append(sandbox)
            self._cond.notify_all()
        if not keep:
            self._discard(sandbox)


class Upcoming:
    """Which tests of this process come next and which sandbox each takes.

    `need(item)` is the `Need` of a test taking ``daytona_sandbox``, else None.
    """

    def __init__(
        self, items: Sequence[pytest.Item], need: Callable[[pytest.Item], Need | None]
    ) -> None:
        self._items = list(items)
        self._index = {id(item): i for i, item in enumerate(self._items)}
        self._need = need
        self._needs: list[tuple[int, Need]] = []
        for i, item in enumerate(self._items):
            found = need(item)
            if found is not None:
                self._needs.append((i, found))
        self._positions = [i for i, _ in self._needs]

    def after(
        self, item: pytest.Item | None, queued: Sequence[int] | None, limit: int
    ) -> list[Need]:
        """At most `limit` needs of the tests from `item` on. `queued`: in an xdist worker,
        the indexes of the tests it was handed after `item` (None: all the rest run here)."""
        if queued is not None:
            ahead = [item] if item is not None else []
            ahead += [self._items[i] for i in queued if 0 <= i < len(self._items)]
            found = (self._need(each) for each in ahead)
            return [n for n in found if n is not None][:limit]
        start = self._index.get(id(item), 0) if item is not None else 0
        first = bisect.bisect_left(self._positions, start)
        return [need for _, need in self._needs[first : first + limit]]


def worker_queue(config: pytest.Config) -> list[int] | None:
    """In an xdist worker, the indexes of the tests handed to it and not started yet (read
    from xdist's worker plugin; None outside a worker or if that cannot be read)."""
    if not hasattr(config, "workerinput"):
        return None
    for plugin in config.pluginmanager.get_plugins():
        queue: Any = getattr(plugin, "torun", None)
        if queue is None or not hasattr(plugin, "nextitem_index"):
            continue
        try:
            with queue.lock() as items:
                queued = [i for i in items if isinstance(i, int)]
        except Exception:
            return []
        nxt = plugin.nextitem_index
        return ([nxt] if isinstance(nxt, int) else []) + queued
    return []
