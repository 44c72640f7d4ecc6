"""Fixtures for driving the embedded server with the real `daytona` SDK over real HTTP."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daytona import CreateSandboxFromSnapshotParams, Daytona, DaytonaConfig, Sandbox

from pytest_daytona.api.deadlines import DeadlineExceeded, run_with_deadline
from pytest_daytona.local import LocalServer
from pytest_daytona.local.sandboxes.runner import choose_bwrap


@functools.cache
def _bwrap_usable() -> bool:
    return choose_bwrap("auto") is not None


#: The isolation modes the tests run in: both, unless ``PYTEST_DAYTONA_TEST_ISOLATION`` names
#: fewer (``.ci/sdk-range`` runs only ``bwrap`` at the oldest SDK: the mode is the server's
#: own process handling, the same whatever the SDK sends).
ISOLATIONS = os.environ.get("PYTEST_DAYTONA_TEST_ISOLATION", "bwrap,none").split(",")


@pytest.fixture(params=ISOLATIONS)
def isolation(request: pytest.FixtureRequest) -> str:
    """Both ways commands run: under bubblewrap and as plain processes.

    Without a working bubblewrap the bwrap variants fail under CI (which installs it) and are
    skipped elsewhere, saying so.
    """
    if request.param == "bwrap":
        require_bwrap()
    return str(request.param)


def require(available: bool, message: str) -> None:
    """Fail under CI (whose .ci/run installs every tool the tests use), skip elsewhere (the
    quick start's machine may have only Python), when a tool is missing."""
    if not available:
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def require_bwrap() -> None:
    """Require a working bubblewrap (see `require`)."""
    require(
        _bwrap_usable(),
        "bubblewrap (bwrap) is not installed or not working: apt-get install bubblewrap",
    )


@pytest.fixture
def needs_git() -> None:
    """Require git on this machine: sandboxes run this machine's userland."""
    require(shutil.which("git") is not None, "git is not installed: apt-get install git")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(data_dir: Path) -> Iterator[LocalServer]:
    """A fresh server per test (isolation: bubblewrap when it works here)."""
    with LocalServer(data_dir) as srv:
        yield srv
    assert_no_sandbox_process(data_dir)


@pytest.fixture
def client(server: LocalServer) -> Iterator[Daytona]:
    """The unmodified SDK, configured only with api_url and api_key."""
    daytona = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    yield daytona
    close_client(daytona)


@pytest.fixture
def sandbox(client: Daytona) -> Sandbox:
    return client.create(CreateSandboxFromSnapshotParams(labels={"suite": "local"}))


@pytest.fixture
def iso_server(data_dir: Path, isolation: str) -> Iterator[LocalServer]:
    """A server per isolation mode, for behaviour that must hold in both."""
    with LocalServer(data_dir, isolation=isolation) as srv:  # type: ignore[arg-type]
        yield srv
    assert_no_sandbox_process(data_dir)


def assert_no_sandbox_process(data_dir: Path) -> None:
    """Once the server stopped, no process of its sandboxes is left (bubblewrap's name the
    sandbox's directories on their command lines)."""
    assert processes_mentioning(f"{data_dir}/sandboxes/") == []


@pytest.fixture
def iso_sandbox(iso_server: LocalServer) -> Iterator[Sandbox]:
    daytona = Daytona(DaytonaConfig(api_key=iso_server.token, api_url=iso_server.api_url))
    yield daytona.create(CreateSandboxFromSnapshotParams(env_vars={"FROM_CREATE": "yes"}))
    close_client(daytona)


def close_client(daytona: Daytona) -> None:
    """Stop the sync client's Socket.IO thread (the sync SDK has no public close)."""
    dispatcher = getattr(daytona, "_event_dispatcher", None)
    if dispatcher is not None:
        # The SDK's disconnect can trip over its own half-open connection (AttributeError
        # in engineio) when called while the first connect is still under way, and can wait
        # out a ping timeout (~30 s): bounded as the plugin bounds it.
        with contextlib.suppress(AttributeError, DeadlineExceeded):
            run_with_deadline(dispatcher.disconnect, 2.0)


def route_count(server: LocalServer, route: str) -> int:
    """How often `route` (e.g. ``"GET /sandbox/{sandboxIdOrName}"``) was called."""
    by_route: dict[str, Any] = server.stats()["by_route"]
    return int(by_route.get(route, 0))


def http_json(
    server: LocalServer, method: str, path: str, token: str | None, body: Any = None
) -> tuple[int, Any]:
    """One raw HTTP call under the server's API URL: (status, decoded JSON body)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.api_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live host processes containing `text` (what pgrep -f would find)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found
