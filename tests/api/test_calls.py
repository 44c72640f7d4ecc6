"""The retry policy of `Caller`, on the branches a server cannot produce on demand.

Plain callables stand in for SDK calls (no SDK is mocked): a call that outlives its deadline,
the circuit that opens once the API stops answering, and the pure helpers (Retry-After,
backoff, the SDK's message prefix). Retries against real HTTP errors are in
tests/api/test_faults.py.
"""

from __future__ import annotations

import email.utils
import threading
import time

import pytest
from daytona import DaytonaError, DaytonaRateLimitError

from pytest_daytona.api.calls import (
    BACKOFF_CAP,
    Attempt,
    Caller,
    _first_line,
    _retry_after,
    classify,
)
from pytest_daytona.errors import BackendCallError, BackendUnreachableError

#: The quick development loop (`pytest -m quick`, README: Development) runs all of these.
pytestmark = pytest.mark.quick


def no_sleep(caller: Caller) -> list[float]:
    waits: list[float] = []
    caller.sleep = waits.append
    return waits


def test_retry_after_in_seconds_and_as_a_date() -> None:
    assert _retry_after(DaytonaRateLimitError("x", 429, {"Retry-After": "3"})) == 3.0
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (_retry_after(DaytonaRateLimitError("x", 429, {"retry-after": soon})) or 0) <= 30
    assert _retry_after(DaytonaRateLimitError("x", 429, {"Retry-After": "soon"})) is None
    assert _retry_after(DaytonaRateLimitError("x", 429, {})) is None


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    first = [Caller._backoff(1, None) for _ in range(50)]
    assert all(0.125 <= w <= 0.25 for w in first)
    assert all(w <= BACKOFF_CAP for w in (Caller._backoff(30, None) for _ in range(50)))
    assert Caller._backoff(1, 5.0) == 5.0


def test_the_sdk_prefix_is_dropped_from_messages() -> None:
    assert _first_line(DaytonaError("Failed to create sandbox: quota exceeded")) == (
        "quota exceeded"
    )
    assert _first_line(DaytonaError("plain\nsecond line")) == "plain"


def test_429_is_retried_even_for_a_call_that_may_not_run_twice() -> None:
    caller = Caller()
    waits = no_sleep(caller)
    attempts: list[int] = []

    def flaky(attempt: Attempt) -> str:
        attempts.append(attempt.number)
        if attempt.number < 3:
            raise DaytonaRateLimitError("slow down", 429, {"Retry-After": "0"})
        return "ok"

    assert caller.call("run", flaky, timeout=5, budget=10, retry="unsent") == "ok"
    assert attempts == [1, 2, 3] and len(waits) == 2


def test_502_is_not_retried_for_a_call_that_may_have_run() -> None:
    caller = Caller()
    no_sleep(caller)
    attempts: list[int] = []

    def gateway(attempt: Attempt) -> str:
        attempts.append(attempt.number)
        raise DaytonaError("bad gateway", 502)

    with pytest.raises(BackendCallError, match=r"^run a command in sandbox x failed: HTTP 502"):
        caller.call(
            "run a command in", gateway, timeout=5, budget=10, retry="unsent", target="sandbox x"
        )
    assert attempts == [1]
    assert classify(DaytonaError("bad gateway", 502)) is not None


def test_retries_stop_when_the_budget_is_spent() -> None:
    caller = Caller()
    waits = no_sleep(caller)

    def always(attempt: Attempt) -> str:
        raise DaytonaError("unavailable", 503, {"Retry-After": "2"})

    with pytest.raises(BackendCallError, match=r"after 3 attempts.*HTTP 503: unavailable"):
        caller.call("delete", always, timeout=5, budget=5)
    assert waits == [2.0, 2.0]


def test_a_hung_call_ends_at_its_deadline_and_opens_the_circuit() -> None:
    caller = Caller(lambda: "http://127.0.0.1:9/api")
    release = threading.Event()

    def hung(attempt: Attempt) -> str:
        release.wait(10)
        return "late"

    try:
        with pytest.raises(BackendCallError, match="no answer within") as caught:
            caller.call("create sandbox", hung, timeout=0.2, budget=0)
        assert caught.value.unreachable
        assert "--daytona-timeout" in caught.value.fix
        calls: list[int] = []
        with pytest.raises(BackendUnreachableError, match="stopped answering earlier"):
            caller.call("look up", lambda a: calls.append(1), timeout=30, budget=0)
        assert calls == []  # failed fast: not even tried
        assert caller.call("delete", lambda a: "done", timeout=1, budget=0, use_circuit=False)
        assert caller.unreachable is None  # an answer closes the circuit
    finally:
        release.set()


def test_a_probe_goes_through_once_per_timeout() -> None:
    caller = Caller()

    def hung(attempt: Attempt) -> str:
        time.sleep(1)
        return "late"

    with pytest.raises(BackendCallError):
        caller.call("get", hung, timeout=0.05, budget=0)
    time.sleep(0.1)
    assert caller.call("get", lambda a: "back", timeout=0.05, budget=0) == "back"
    assert caller.unreachable is None
