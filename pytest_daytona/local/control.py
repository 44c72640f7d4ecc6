"""Counters and fault/latency injection: what tests and benchmarks read and steer."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

#: The `LatencyRule.route` that applies to every counted route without a rule of its own.
ANY_ROUTE = "*"


class FaultRule(BaseModel):
    """The next `count` calls of `route` (e.g. ``POST /sandbox``) answer `status`.

    With `complete_after` (seconds) the call is still carried out that long after the fault
    was answered, as an API behind a gateway that gave up (say, 504) finishes the work anyway.
    """

    route: str
    status: int = Field(ge=400, le=599)
    count: int = Field(default=1, ge=1)
    message: str = "injected fault"
    retry_after: int | None = Field(default=None, ge=0)
    complete_after: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class LatencyRule(BaseModel):
    """Every call of `route` (``"*"``: of every route) waits `seconds` first (0 removes it)."""

    route: str
    seconds: float = Field(ge=0, le=120)


class ErrorStateRule(BaseModel):
    """Force a sandbox into the ``error`` state."""

    recoverable: bool = True
    reason: str = "injected error"


@dataclass
class Control:
    """Per-route request counters plus the faults and latencies still to apply."""

    by_route: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    faults: list[FaultRule] = field(default_factory=list)
    latency: dict[str, float] = field(default_factory=dict)

    def count(self, route: str) -> None:
        """Count one request of `route`."""
        self.requests += 1
        self.by_route[route] += 1

    def take_fault(self, route: str) -> FaultRule | None:
        """The fault to answer this call of `route` with, consuming one of its count."""
        for rule in self.faults:
            if rule.route == route:
                rule.count -= 1
                if rule.count == 0:
                    self.faults.remove(rule)
                return rule
        return None

    def delay(self, route: str) -> float:
        """Seconds a call of `route` waits: its own rule, else the ``"*"`` rule, else 0."""
        return self.latency.get(route, self.latency.get(ANY_ROUTE, 0.0))

    def set_latency(self, rule: LatencyRule) -> None:
        """Add, change or (with 0 seconds) remove the latency of a route."""
        if rule.seconds:
            self.latency[rule.route] = rule.seconds
        else:
            self.latency.pop(rule.route, None)

    def reset(self) -> None:
        """Drop all faults, latencies and counters."""
        self.by_route.clear()
        self.requests = 0
        self.faults.clear()
        self.latency.clear()
