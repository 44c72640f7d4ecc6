"""SDK calls run off the main thread with a deadline; an abandoned call still gets cleaned up.

No SDK and no server here: the branches under test (the caller interrupted while the call is
still running, a call that outlives its deadline) cannot be produced on demand through a
server, so plain callables stand in.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import pytest

from pytest_daytona.api.deadlines import DeadlineExceeded, run_with_deadline

#: The quick development loop (`pytest -m quick`, README: Development) runs all of these.
pytestmark = pytest.mark.quick


def test_runs_in_a_worker_thread_and_returns_its_result() -> None:
    name = run_with_deadline(lambda: threading.current_thread().name, 5)
    assert name.startswith("pytest-daytona")
    assert name != threading.main_thread().name


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
            run_with_deadline(
                slow_create, None, on_abandon=lambda r: (abandoned.append(r), handled.set())
            )
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
        run_with_deadline(boom, 5, on_abandon=seen.append)
    assert seen == []


def test_a_call_past_its_deadline_raises_and_is_handed_over_when_it_returns() -> None:
    release = threading.Event()
    late: list[str] = []
    handled = threading.Event()

    def hung() -> str:
        release.wait(10)
        return "late-sandbox"

    with pytest.raises(DeadlineExceeded, match=r"no answer within 0\.1s"):
        run_with_deadline(hung, 0.1, on_abandon=lambda r: (late.append(r), handled.set()))
    release.set()
    assert handled.wait(10)
    assert late == ["late-sandbox"]


def test_the_call_thread_is_a_daemon_so_a_hung_api_never_blocks_exit() -> None:
    flags: list[bool] = []
    run_with_deadline(lambda: flags.append(threading.current_thread().daemon), 5)
    assert flags == [True]
