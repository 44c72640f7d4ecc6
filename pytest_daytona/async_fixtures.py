"""The async fixtures: `daytona_async_sandbox`, `daytona_async_sandbox_factory`.

They are plain (sync) fixtures that hand out async handles, so they work under any runner of
async tests on asyncio (pytest-asyncio, anyio's pytest plugin) without depending on either:
the sandbox is leased before the test's event loop runs (so provisioning never blocks it) by
the same code as the sync fixtures, and released the same way when the test ends. The handle
binds to the test's loop on its first call (`async_sandbox`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .fixtures import (
    backend_errors_fail_the_test,
    item_settings,
    leased,
    make_one,
    release_made,
    sandbox_session,
)
from .handle.async_sandbox import AsyncDaytonaSandbox
from .report.outcomes import report_of

if TYPE_CHECKING:
    from .config.settings import Settings
    from .handle.factory import AsyncSandboxFactory
    from .handle.sandbox import DaytonaSandbox
    from .run.session import SandboxSession


@pytest.fixture
def daytona_async_sandbox(request: pytest.FixtureRequest) -> Iterator[AsyncDaytonaSandbox]:
    """`daytona_sandbox` for async tests: a fresh sandbox, deleted when the test ends, whose
    methods are coroutines: ``await sandbox.run("make test", check=True)``.

    Works under pytest-asyncio and anyio (asyncio backend); the calls go through
    `daytona.AsyncDaytona` in the test's event loop. Settings as for `daytona_sandbox`.
    """
    _, settings = item_settings(request)
    with leased(request, settings, ahead=True) as sandbox:
        with backend_errors_fail_the_test(request.config):
            _ = sandbox.workspace  # made now: the async handle never blocks the loop on it
        yield to_async(sandbox_session(request.config), sandbox, settings)


@pytest.fixture
def daytona_async_sandbox_factory(
    request: pytest.FixtureRequest,
) -> Iterator[AsyncSandboxFactory]:
    """`daytona_sandbox_factory` for async tests: ``await make(**overrides)`` returns a new
    `AsyncDaytonaSandbox` (the marker's keys over the test's settings); every sandbox made is
    deleted when the test ends. The sandbox is made in a worker thread: the test's event loop
    goes on meanwhile, so ``asyncio.gather(make(), make())`` makes two at once. Its type:
    `pytest_daytona.AsyncSandboxFactory`."""
    marker_kwargs, _ = item_settings(request)
    session = sandbox_session(request.config)
    made: list[str] = []

    async def make(**overrides: Any) -> AsyncDaytonaSandbox:
        sandbox, settings = await asyncio.to_thread(
            make_one, request, marker_kwargs, overrides, made, realize=True
        )
        return to_async(session, sandbox, settings)

    try:
        yield make
    finally:
        release_made(request, made, report_of(request.node))


def to_async(
    session: SandboxSession, sandbox: DaytonaSandbox, settings: Settings
) -> AsyncDaytonaSandbox:
    """The async handle of `sandbox` (see `handles.make_async_handle`)."""
    from .run.handles import make_async_handle  # not at import: it loads pydantic

    return make_async_handle(session.backend, sandbox, settings, session.stats)
