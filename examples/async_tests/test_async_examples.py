"""Async tests: ``daytona_async_sandbox`` and ``daytona_async_sandbox_factory``.

The handle's methods are coroutines (``await sb.run(...)``), so one test can drive several
commands or sandboxes at once with ``asyncio.gather``. The fixtures work under pytest-asyncio
(``@pytest.mark.asyncio``) and anyio (``@pytest.mark.anyio``, asyncio backend): install one
of them (``pip install pytest-asyncio``).
"""

from __future__ import annotations

import asyncio

import pytest

from pytest_daytona import AsyncDaytonaSandbox, AsyncSandboxFactory


@pytest.mark.asyncio
async def test_commands_and_files(daytona_async_sandbox: AsyncDaytonaSandbox) -> None:
    sb = daytona_async_sandbox

    await sb.write_text("greet.sh", 'echo "hello, $1"\n')
    result = await sb.run(["sh", "greet.sh", "async"], check=True)

    assert result.stdout == "hello, async\n"
    assert await sb.read_text("greet.sh") == 'echo "hello, $1"\n'


@pytest.mark.asyncio
async def test_commands_run_concurrently(daytona_async_sandbox: AsyncDaytonaSandbox) -> None:
    """Three one-second jobs side by side: ``gather`` keeps the order of the results."""
    jobs = [daytona_async_sandbox.run(f"sleep 1; echo job {n}") for n in range(3)]

    results = await asyncio.gather(*jobs)

    assert [r.stdout for r in results] == ["job 0\n", "job 1\n", "job 2\n"]


@pytest.mark.asyncio
async def test_two_sandboxes_made_at_once(
    daytona_async_sandbox_factory: AsyncSandboxFactory,
) -> None:
    """``make()`` runs in a worker thread: both sandboxes are created concurrently."""
    server, client = await asyncio.gather(
        daytona_async_sandbox_factory(env={"ROLE": "server"}),
        daytona_async_sandbox_factory(env={"ROLE": "client"}),
    )

    roles = await asyncio.gather(server.run("echo $ROLE"), client.run("echo $ROLE"))

    assert [r.stdout for r in roles] == ["server\n", "client\n"]
    assert server.id != client.id


@pytest.fixture
def anyio_backend() -> str:
    """anyio's tests run on asyncio here (the Daytona SDK's async client needs asyncio)."""
    return "asyncio"


@pytest.mark.anyio
async def test_under_anyio(daytona_async_sandbox: AsyncDaytonaSandbox) -> None:
    result = await daytona_async_sandbox.run("uname -s")

    assert result.stdout == "Linux\n"
