"""Every call the plugin makes to the Daytona API: a deadline, retries with backoff, short errors.

A call runs in a daemon thread and the caller waits at most its deadline, so a hung API never
hangs the run (and the SDK times out with a timer, never with SIGALRM, which would cancel
pytest-timeout's alarm). Failures worth retrying (429, 502, 503, 504, a dropped or refused
connection, a missed deadline) are retried with exponential backoff and jitter, honouring
``Retry-After``, while the retry budget lasts. A call that may have run on the server
(``retry="unsent"``) is retried only where the answer proves it did not run: 429 and 503
("not handled", RFC 9110) and a refused connection. Whatever still fails becomes one
`BackendCallError` with the operation, the sandbox, the status, the server's words and a fix.
Once the API stops answering, later calls fail at once (`BackendUnreachableError`) instead of
each waiting out its deadline; one call per `timeout` seconds still goes through as a probe,
and the first that gets an answer closes that circuit again.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ..errors import BackendCallError, BackendUnreachableError
from .deadlines import DeadlineExceeded, run_with_deadline

log = logging.getLogger(__name__)

T = TypeVar("T")
Retry = Literal["idempotent", "unsent", "never"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Statuses that say the request was not handled at all, so even a create may be sent again.
NOT_RUN_STATUSES = frozenset({429, 503})
BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0
#: Extra time a call's thread gets past the SDK's own timeout before the caller gives up
#: (so that the SDK's clearer timeout error wins); counted inside `timeout + budget`.
DEADLINE_GRACE = 0.25
#: A retry is made only if at least this long is left for it.
MIN_ATTEMPT = 0.25


@dataclass(frozen=True)
class Attempt:
    """One try of a call: its number (from 1) and the seconds it may take."""

    number: int
    limit: float


@dataclass(frozen=True)
class Failure:
    """What one failed attempt says about retrying."""

    retryable: bool  # worth another try for a call that may safely run twice
    not_run: bool  # the request provably did not run on the server
    unreachable: bool  # the API did not answer at all
    status: int | None
    message: str
    retry_after: float | None = None


def classify(exc: BaseException) -> Failure | None:
    """How a failed attempt should be treated; None for errors that are not the API's."""
    if isinstance(exc, DeadlineExceeded):
        return Failure(True, False, True, None, str(exc))
    from daytona import DaytonaConnectionError, DaytonaError, DaytonaTimeoutError

    # The SDK's create reports a refused connection as a plain DaytonaError (0.226.1).
    connection = isinstance(exc, DaytonaError) and exc.status_code is None and _refused(exc)
    if isinstance(exc, DaytonaConnectionError) or connection:
        refused = _refused(exc)
        return Failure(True, refused, True, None, _first_line(exc))
    if not isinstance(exc, DaytonaError):
        return None
    status = exc.status_code
    message = _first_line(exc, getattr(exc, "message", None))
    if status in RETRY_STATUSES:
        return Failure(True, status in NOT_RUN_STATUSES, False, status, message, _retry_after(exc))
    if isinstance(exc, DaytonaTimeoutError) and status is None:
        # The SDK's own wait ran out: the API answered, the operation is just slow.
        return Failure(False, False, False, None, message)
    return Failure(False, False, False, status, message)


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or type(seen).__name__ in (
            "NewConnectionError",
            "ClientConnectorError",
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_SDK_PREFIX = re.compile(r"^(?:Failed|Failure) [^:]{1,60}: ")


def _first_line(exc: BaseException, message: str | None = None) -> str:
    """The error's first line, without the SDK's "Failed to <do this>: " prefix."""
    text = (message or str(exc) or type(exc).__name__).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return _SDK_PREFIX.sub("", line, count=1)[:300]


def _retry_after(exc: Any) -> float | None:
    headers: Mapping[str, Any] = getattr(exc, "headers", None) or {}
    value = next((str(v) for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


#: Which API the calls go to: Daytona's, the local server this run embeds, or one started
#: with ``pytest-daytona serve`` (the local backend with ``--daytona-api-url``).
Kind = Literal["daytona", "embedded", "served"]
#: Where the embedded server's log goes (it runs in this pytest process, or in the xdist
#: controller).
EMBEDDED_LOG = (
    "its log (loggers aiohttp.server and pytest_daytona.local) is in the failing test's "
    "'Captured log' section, under xdist in the file of --log-file=FILE"
)


#: Where the log of a server started with ``pytest-daytona serve`` goes.
SERVED_LOG = "its log is on the stderr of `pytest-daytona serve`"


def api_name(kind: Kind, api_url: str | None) -> str:
    """The API as messages name it."""
    if kind == "embedded":
        return "the local server embedded in this run"
    if kind == "served":
        return f"the local server at {api_url}"
    return "the Daytona API"


def fix_for(failure: Failure, api_url: str | None, limit: float, kind: Kind = "daytona") -> str:
    """What a user can do about a call that failed like `failure`, on backend `kind`."""
    status = failure.status
    local = kind != "daytona"
    if status is None and failure.message.startswith("no answer within"):
        if local:
            return f"raise --daytona-timeout (now {limit:g}s): {api_name(kind, api_url)} is slow"
        return f"raise --daytona-timeout (now {limit:g}s) or check the Daytona API's status"
    if failure.unreachable:
        if kind == "embedded":
            return f"{api_name(kind, api_url)} stopped answering; {EMBEDDED_LOG}"
        where = api_url or "the SDK's default URL"
        if kind == "served":
            return f"check that `pytest-daytona serve` still runs and {where} is reachable"
        return f"check that {where} is reachable (--daytona-api-url / DAYTONA_API_URL)"
    if status == 401:
        if kind == "served":
            return "check DAYTONA_API_KEY: it must be the token `pytest-daytona serve` printed"
        return "check DAYTONA_API_KEY: the API refused the key"
    if status == 403:
        return "the API key lacks the permission for this; check its scopes"
    if status == 429:
        if local:
            return f"{api_name(kind, api_url)} is refusing requests: raise --daytona-retry-budget"
        return "Daytona is rate-limiting: run fewer workers or raise --daytona-retry-budget"
    if status is not None and status >= 500:
        if not local:
            return "the Daytona API is having trouble: retry later or raise --daytona-retry-budget"
        name = api_name(kind, api_url)
        log = EMBEDDED_LOG if kind == "embedded" else SERVED_LOG
        if status in RETRY_STATUSES:
            return f"{name} is busy or unavailable: raise --daytona-retry-budget; {log}"
        return (
            f"{name} failed on this request (pytest-daytona's local backend, not Daytona): "
            f"{log}; report it with that log"
        )
    if status is None:
        return f"raise --daytona-timeout (now {limit:g}s)"
    return ""


class Caller:
    """Makes API calls with deadlines and retries; one per process (see `Backend`).

    `api_url` and `kind` name the API in messages. `verbose` keeps the SDK's exception
    chained to the short error (pytest shows it with ``-vv`` or ``--tb=long``).
    """

    def __init__(
        self,
        api_url: Callable[[], str | None] = lambda: None,
        kind: Callable[[], Kind] = lambda: "daytona",
    ) -> None:
        self._api_url = api_url
        self._kind = kind
        self.verbose = False
        self._unreachable: str | None = None
        self._probed_at = 0.0
        self._lock = threading.Lock()
        self.sleep: Callable[[float], None] = time.sleep

    @property
    def unreachable(self) -> str | None:
        """Why the API counts as unreachable now, or None."""
        return self._unreachable

    def call(
        self,
        operation: str,
        fn: Callable[[Attempt], T],
        *,
        timeout: float,
        budget: float,
        target: str | None = None,
        retry: Retry = "idempotent",
        passthrough: tuple[type[BaseException], ...] = (),
        before_retry: Callable[[], object] | None = None,
        on_abandon: Callable[[T], object] | None = None,
        use_circuit: bool = True,
    ) -> T:
        """`fn(attempt)` until it succeeds: each attempt within `timeout`, all of them within
        `timeout + budget`. Errors of a `passthrough` type are raised as they are (e.g. not
        found, which callers handle); every other failure becomes a `BackendCallError`.
        """
        __tracebackhide__ = True
        tries = self.tries(operation, timeout, budget, target, retry, use_circuit)
        while True:
            attempt = tries.next()
            try:
                result = run_with_deadline(
                    lambda: fn(attempt),  # noqa: B023 - called before the loop moves on
                    attempt.limit + DEADLINE_GRACE,
                    on_abandon=on_abandon,
                    name=f"pytest-daytona {operation}",
                )
            except passthrough:
                tries.answered()
                raise
            except Exception as exc:
                wait = tries.failed(exc)
                if wait is None:
                    raise
                self.sleep(wait)
                if before_retry is not None:
                    before_retry()
                continue
            tries.answered()
            return result

    def tries(
        self,
        operation: str,
        timeout: float,
        budget: float,
        target: str | None = None,
        retry: Retry = "idempotent",
        use_circuit: bool = True,
    ) -> Tries:
        """The attempts of one call (`call`'s loop, and the async one's in `async_calls`);
        `BackendUnreachableError` at once while the API counts as unreachable."""
        __tracebackhide__ = True
        if use_circuit and self._unreachable is not None:
            if not self._probe_due(timeout):
                api_url, kind = self._api_url(), self._kind()
                raise BackendUnreachableError(
                    operation,
                    f"{api_name(kind, api_url)} stopped answering earlier in this run "
                    f"({self._unreachable})",
                    target=target,
                    fix=fix_for(Failure(False, False, True, None, ""), api_url, timeout, kind),
                    unreachable=True,
                )
            budget = 0.0  # a probe: one attempt tells whether the API is back
        return Tries(self, operation, timeout, budget, target, retry)

    @staticmethod
    def _backoff(number: int, retry_after: float | None) -> float:
        backoff: float = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (number - 1))
        return max(backoff * random.uniform(0.5, 1.0), retry_after or 0.0)

    def _final(
        self,
        operation: str,
        target: str | None,
        failure: Failure,
        attempts: int,
        timeout: float,
        exc: BaseException,
    ) -> BackendCallError:
        if failure.unreachable:
            with self._lock:
                self._unreachable = f"{operation}: {failure.message}"
                self._probed_at = time.monotonic()
        return BackendCallError(
            operation,
            failure.message,
            target=target,
            status=failure.status,
            fix=fix_for(failure, self._api_url(), timeout, self._kind()),
            attempts=attempts,
            unreachable=failure.unreachable,
        )

    def _probe_due(self, timeout: float) -> bool:
        """While the circuit is open, let one call through per `timeout` seconds."""
        with self._lock:
            now = time.monotonic()
            if now - self._probed_at < timeout:
                return False
            self._probed_at = now
            return True

    def _reachable(self) -> None:
        if self._unreachable is not None:
            with self._lock:
                self._unreachable = None


class Tries:
    """The attempts of one call: each one's time limit, and after a failure whether to try
    again (and after how long) or which error to raise."""

    def __init__(
        self,
        caller: Caller,
        operation: str,
        timeout: float,
        budget: float,
        target: str | None,
        retry: Retry,
    ) -> None:
        self._caller = caller
        self._operation = operation
        self._timeout = timeout
        self._budget = budget
        self._target = target
        self._retry = retry
        self._end = time.monotonic() + timeout + budget
        self._waited = 0.0
        self._number = 0

    def next(self) -> Attempt:
        """The next attempt: its number and how long it may take (the caller gives it
        `DEADLINE_GRACE` more before it counts as unanswered)."""
        self._number += 1
        limit = max(0.05, min(self._timeout, self._end - time.monotonic() - DEADLINE_GRACE))
        return Attempt(self._number, limit)

    def answered(self) -> None:
        """The attempt got an answer (a result, or an error the caller passes through)."""
        self._caller._reachable()

    def failed(self, exc: Exception) -> float | None:
        """After attempt failed with `exc`: the seconds to wait before the next one; None to
        raise `exc` as it is (not the API's error). Raises the call's `BackendCallError`
        when there is no next attempt."""
        __tracebackhide__ = True
        caller = self._caller
        failure = classify(exc)
        if failure is None:
            return None
        if not failure.unreachable:
            caller._reachable()  # an error answer is still an answer
        retry = self._retry
        allowed = retry == "idempotent" or (retry == "unsent" and failure.not_run)
        wait = caller._backoff(self._number, failure.retry_after)
        now = time.monotonic()
        if (
            failure.retryable
            and allowed
            and self._waited + wait <= self._budget
            and self._end - (now + wait) >= DEADLINE_GRACE + MIN_ATTEMPT
        ):
            log.info("pytest-daytona: %s: %s; retrying in %.2fs", self._operation, exc, wait)
            self._waited += wait
            return wait
        error = caller._final(
            self._operation, self._target, failure, self._number, self._timeout, exc
        )
        raise error from (exc if caller.verbose else None)
