"""The process's way to the Daytona API: the SDK client, and the `Caller` through which each of
its calls gets the deadline and retry budget of the settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..config.settings import Settings
from .calls import Attempt, Caller, Retry

if TYPE_CHECKING:
    from daytona import Daytona

T = TypeVar("T")


@dataclass
class Api:
    """The SDK client and the `Caller` that gives each of its calls a deadline and retries."""

    client: Daytona
    caller: Caller
    circuit: bool = True

    def final(self) -> Api:
        """This API for the end of the run: every call is tried even when the API stopped
        answering earlier (concurrent releases keep that bounded by one deadline)."""
        return dataclasses.replace(self, circuit=False)

    def call(
        self,
        operation: str,
        fn: Callable[[Attempt], T],
        settings: Settings,
        *,
        target: str | None = None,
        retry: Retry = "idempotent",
        not_found_ok: bool = False,
        **kwargs: Any,
    ) -> T:
        """`fn` with the deadline (`timeout`) and retry budget of `settings`; with
        `not_found_ok` a 404 is raised as the SDK's `DaytonaNotFoundError` for the caller."""
        __tracebackhide__ = True
        from daytona import DaytonaNotFoundError

        result: T = self.caller.call(
            operation,
            fn,
            timeout=settings.timeout,
            budget=settings.retry_budget,
            target=target,
            retry=retry,
            passthrough=(DaytonaNotFoundError,) if not_found_ok else (),
            use_circuit=self.circuit,
            **kwargs,
        )
        return result
