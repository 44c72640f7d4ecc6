"""The types of the factory fixtures: what `make(**overrides)` takes and returns."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict

from .sandbox import DaytonaSandbox

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from .async_sandbox import AsyncDaytonaSandbox

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # a dependency there (pyproject.toml); also what a type checker at 3.10 reads
    from typing_extensions import Unpack

__all__ = ["AsyncSandboxFactory", "SandboxFactory", "SandboxOverrides"]


class SandboxOverrides(TypedDict, total=False):
    """The settings one sandbox may override: those of the ``daytona`` marker (every setting
    but the run-wide ones). Validated like the marker's; see the README's settings table.
    A time setting takes a number in its unit or a duration text such as ``"2h"``."""

    target: str
    snapshot: str
    image: str
    language: str
    timeout: float | str
    retry_budget: float | str
    ttl: int | str
    cpu: int
    memory: int
    disk: int
    gpu: int
    auto_stop_interval: int | str
    auto_archive_interval: int | str
    auto_delete_interval: int | str
    keep: Literal["never", "failed", "always"]
    workspace: str
    labels: Mapping[str, str]
    env: Mapping[str, str]


class SandboxFactory(Protocol):
    """What ``daytona_sandbox_factory`` yields: ``make(cpu=2, env={"A": "1"})`` returns a new
    sandbox with these settings over the test's own; it is deleted when the test ends.

    Annotate the fixture argument with it so a type checker checks the override names::

        def test_two(daytona_sandbox_factory: SandboxFactory) -> None:
            small, big = daytona_sandbox_factory(), daytona_sandbox_factory(cpu=4)
    """

    def __call__(self, **overrides: Unpack[SandboxOverrides]) -> DaytonaSandbox: ...


class AsyncSandboxFactory(Protocol):
    """What ``daytona_async_sandbox_factory`` yields: ``await make(cpu=2)`` returns a new
    `AsyncDaytonaSandbox` with these settings over the test's own; it is deleted when the
    test ends. The overrides are those of `SandboxFactory`."""

    def __call__(self, **overrides: Unpack[SandboxOverrides]) -> Awaitable[AsyncDaytonaSandbox]: ...
