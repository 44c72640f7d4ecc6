"""A call with a deadline: it runs in a daemon thread and the caller waits at most so long, so
a hung API never hangs the run (and the SDK times out with a timer, never with SIGALRM, which
would cancel pytest-timeout's alarm)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """A call did not return within its deadline (it may still finish in its thread)."""


@dataclass
class _Outcome(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    result: Any = None
    error: BaseException | None = None
    abandoned: bool = False


def run_with_deadline(
    fn: Callable[[], T],
    limit: float | None,
    *,
    on_abandon: Callable[[T], object] | None = None,
    name: str = "pytest-daytona-call",
) -> T:
    """`fn()` in a daemon thread; `DeadlineExceeded` after `limit` seconds (None: no limit).

    If the caller stops waiting (deadline, Ctrl-C) and `fn` later returns, `on_abandon` gets
    its result, e.g. to delete a sandbox nobody will use.
    """
    outcome: _Outcome[T] = _Outcome()

    def body() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the waiting caller
            with outcome.lock:
                outcome.error = exc
                outcome.done.set()
            return
        with outcome.lock:
            outcome.result = result
            outcome.done.set()
            late = outcome.abandoned
        if late and on_abandon is not None:
            try:
                on_abandon(result)
            except Exception as exc:
                log.warning("pytest-daytona: cleaning up after an abandoned call failed: %s", exc)

    threading.Thread(target=body, name=name, daemon=True).start()
    try:
        finished = outcome.done.wait(limit)
    except BaseException:
        _abandon(outcome)
        raise
    if not finished and not _abandon(outcome):
        raise DeadlineExceeded(f"no answer within {limit:.3g}s")
    if outcome.error is not None:
        raise outcome.error
    result: T = outcome.result
    return result


def _abandon(outcome: _Outcome[Any]) -> bool:
    """Mark the call abandoned; True when it had finished after all."""
    with outcome.lock:
        if outcome.done.is_set():
            return True
        outcome.abandoned = True
        return False
