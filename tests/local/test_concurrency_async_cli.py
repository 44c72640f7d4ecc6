"""Concurrency (threads), the async SDK, and the `serve` command in a real subprocess."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from daytona import (
    AsyncDaytona,
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaConfig,
    DaytonaNotFoundError,
    Sandbox,
)
from daytona_api_client import SandboxState

from pytest_daytona.local import LocalServer
from tests.local.conftest import close_client, route_count


def test_20_creates_from_threads_and_50_concurrent_execs(
    server: LocalServer, client: Daytona
) -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        sandboxes: list[Sandbox] = list(
            pool.map(
                lambda i: client.create(CreateSandboxFromSnapshotParams(labels={"n": str(i)})),
                range(20),
            )
        )
        assert len({sb.id for sb in sandboxes}) == 20
        assert server.stats()["creates"] == 20 and server.stats()["live"] == 20

        def run(i: int) -> tuple[int, str, int | None]:
            sb = sandboxes[i % 20]
            result = sb.process.exec(
                f'sh -c "echo {i}-$N; exit {i % 5}"', env={"N": sb.labels["n"]}
            )
            return i, result.result, result.exit_code

        outcomes = list(pool.map(run, range(50)))
    for i, output, exit_code in outcomes:
        assert output == f"{i}-{i % 20}\n"
        assert exit_code == i % 5
    assert route_count(server, "POST /process/execute") == 50


@pytest.mark.quick
def test_async_sdk_through_every_operation(server: LocalServer) -> None:
    async def scenario() -> None:
        async with AsyncDaytona(DaytonaConfig(api_key=server.token, api_url=server.api_url)) as d:
            sb = await d.create(CreateSandboxFromSnapshotParams(name="async", labels={"a": "1"}))
            assert sb.state == SandboxState.STARTED
            assert (await d.get("async")).id == sb.id
            assert await sb.get_work_dir()
            result = await sb.process.exec('sh -c "echo async-$X"', env={"X": "ok"})
            assert (result.exit_code, result.result) == (0, "async-ok\n")
            await sb.fs.upload_file(b"async bytes", "f.bin")
            assert await sb.fs.download_file("f.bin") == b"async bytes"
            assert [f.name for f in await sb.fs.list_files(".")] == ["f.bin"]
            await sb.set_labels({"b": "2"})
            assert [s.id async for s in d.list()] == [sb.id]
            await sb.stop()
            assert sb.state == SandboxState.STOPPED
            await sb.start()
            assert sb.state == SandboxState.STARTED
            await sb.delete(wait=True)
            with pytest.raises(DaytonaNotFoundError):
                await d.get(sb.id)

    asyncio.run(scenario())
    assert server.stats()["live"] == 0


def _serve(*args: str, data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*args, "serve", "--data-dir", str(data_dir), "--token", "cli-token"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.parametrize(
    ("command", "stop_signal"),
    [
        ((sys.executable, "-m", "pytest_daytona"), signal.SIGTERM),
        ((str(Path(sys.executable).with_name("pytest-daytona")),), signal.SIGINT),
    ],
)
def test_serve_prints_env_serves_the_sdk_and_stops_cleanly(
    tmp_path: Path, command: tuple[str, ...], stop_signal: signal.Signals
) -> None:
    assert shutil.which(command[0]) or os.path.exists(command[0])
    proc = _serve(*command, data_dir=tmp_path / "data")
    try:
        assert proc.stdout is not None
        url_line = proc.stdout.readline().strip()
        key_line = proc.stdout.readline().strip()
        assert url_line.startswith("DAYTONA_API_URL=http://127.0.0.1:")
        assert url_line.endswith("/api")
        assert key_line == "DAYTONA_API_KEY=cli-token"
        api_url = url_line.split("=", 1)[1]
        daytona = Daytona(DaytonaConfig(api_key="cli-token", api_url=api_url))
        try:
            sb = daytona.create()
            assert sb.process.exec("echo served").result == "served\n"
        finally:
            close_client(daytona)
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "data" / "sandboxes" / sb.id / "state.json").exists()  # kept on disk
