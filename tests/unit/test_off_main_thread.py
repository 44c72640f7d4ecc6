"""SDK calls run off the main thread; a call abandoned by Ctrl-C still gets cleaned up.

No SDK and no server here: the branch under test (the caller interrupted while the call is
still running) cannot be produced on demand through a server, so plain callables stand in.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import pytest

from pytest_daytona.lease import off_main_thread


def test_runs_in_a_worker_thread_and_returns_its_result() -> None:
    assert off_main_thread(lambda: threading.current_thread().name).startswith("pytest-daytona")


def test_an_abandoned_call_hands_its_result_to_on_abandon() -> None:
    release = threading.Event()
    abandoned: list[str] = []
    handled = threading.Event()

    def slow_create() -> str:
        release.wait(10)
        return "sandbox-1"

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            off_main_thread(slow_create, on_abandon=lambda r: (abandoned.append(r), handled.set()))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert abandoned == []  # the call was still running when the caller gave up
    release.set()
    assert handled.wait(10)
    assert abandoned == ["sandbox-1"]


def test_a_call_that_fails_is_not_handed_to_on_abandon() -> None:
    seen: list[object] = []

    def boom() -> str:
        raise ValueError("create failed")

    with pytest.raises(ValueError, match="create failed"):
        off_main_thread(boom, on_abandon=seen.append)
    assert seen == []
