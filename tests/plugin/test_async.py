"""The async fixtures under pytest-asyncio and anyio, against the local server."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse

import pytest
from daytona import DaytonaNotFoundError

from pytest_daytona.api.backend import Backend
from pytest_daytona.local import LocalServer
from tests.api.test_faults import GET
from tests.inner import settle
from tests.leases.test_lease import make_settings
from tests.pytester_support import RunInner
from tests.report.test_keep_and_summary import figures
from tests.run.test_performance import CREATE, DELETE, EXECUTE

#: One body of checks, run under each async runner (`{mark}` marks the tests for it).
HANDLE_TESTS = """
import asyncio
import contextlib

import pytest
from daytona import AsyncSandbox

from pytest_daytona import AsyncDaytonaSandbox, CommandError, DaytonaSandbox

pytestmark = {mark}


async def test_run(daytona_async_sandbox):
    sandbox = daytona_async_sandbox
    assert isinstance(sandbox, AsyncDaytonaSandbox)
    assert isinstance(sandbox.sync, DaytonaSandbox) and sandbox.sync.id == sandbox.id
    result = await sandbox.run("echo out; echo err >&2; exit 3", env={{"A": "1"}})
    assert (result.stdout, result.stderr, result.exit_code) == ("out\\n", "err\\n", 3)
    assert (await sandbox.run(["printf", "%s", "$A"], env={{"A": "1"}})).stdout == "$A"
    assert (await sandbox.run("echo $A", env={{"A": "x y"}})).stdout == "x y\\n"
    assert (await sandbox.run("pwd")).stdout.strip() == sandbox.workspace
    assert (await sandbox.run("cat", stdin="piped\\n")).stdout == "piped\\n"
    with pytest.raises(CommandError, match="exited with code 1: false"):
        await sandbox.run("false", check=True)


async def test_timeout_and_files(daytona_async_sandbox):
    sandbox = daytona_async_sandbox
    slow = await sandbox.run("echo started; sleep 30", timeout=1)
    assert slow.timed_out and slow.exit_code is None and slow.stdout == "started\\n"
    path = await sandbox.write_text("sub/a.txt", "hello")
    assert path == sandbox.path("sub/a.txt")
    assert await sandbox.read_text("sub/a.txt") == "hello"
    await sandbox.upload(b"\\x00\\x01", "b.bin")
    assert await sandbox.download("b.bin") == b"\\x00\\x01"
    assert (await sandbox.run("cat sub/a.txt", cwd=".")).stdout == "hello"


async def test_sdk_and_concurrent_commands(daytona_async_sandbox):
    sdk = await daytona_async_sandbox.sdk()
    assert isinstance(sdk, AsyncSandbox) and sdk.id == daytona_async_sandbox.id
    assert await daytona_async_sandbox.sdk() is sdk
    results = await asyncio.gather(
        *(daytona_async_sandbox.run(f"sleep 0.3; echo {{i}}") for i in range(4))
    )
    assert [r.stdout for r in results] == ["0\\n", "1\\n", "2\\n", "3\\n"]


async def test_factory(daytona_async_sandbox_factory):
    one, two = await asyncio.gather(
        daytona_async_sandbox_factory(), daytona_async_sandbox_factory(env={{"WHO": "two"}})
    )
    assert one.id != two.id
    assert (await two.run("echo $WHO")).stdout == "two\\n"
    assert (await one.run("echo ${{WHO:-none}}")).stdout == "none\\n"
"""

ASYNCIO_MARK = "pytest.mark.asyncio"
ANYIO_MARK = "pytest.mark.anyio"
ANYIO_BACKEND = """
import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


def ran_cleanly(result: pytest.RunResult) -> None:
    """No unclosed aiohttp session or unawaited coroutine was reported."""
    text = "\n".join(result.outlines + result.errlines)
    for sign in ("Unclosed client session", "Unclosed connector", "was never awaited"):
        assert sign not in text


@pytest.mark.parametrize("runner", ["pytest-asyncio", "anyio"])
def test_async_fixtures_under_each_runner(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer, runner: str
) -> None:
    if runner == "anyio":
        pytester.makeconftest(ANYIO_BACKEND)  # anyio's other backend, trio, is not asyncio
        pytester.makepyfile(HANDLE_TESTS.format(mark=ANYIO_MARK))
        result = run_inner("-p", "no:asyncio", "-W", "error::ResourceWarning")
    else:
        pytester.makepyfile(HANDLE_TESTS.format(mark=ASYNCIO_MARK))
        result = run_inner("-p", "no:anyio", "-W", "error::ResourceWarning")
    result.assert_outcomes(passed=4)
    ran_cleanly(result)
    routes = server.stats()["by_route"]
    assert (routes[CREATE], routes[DELETE]) == (5, 5)  # 3 fixtures and 2 of the factory
    assert settle(server) == {}


SHARED_LOOP_TESTS = """
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize("n", range(3))
async def test_one(daytona_async_sandbox, n):
    assert (await daytona_async_sandbox.run(f"echo {n}")).stdout == f"{n}\\n"
"""


def test_tests_sharing_an_event_loop(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makepyfile(SHARED_LOOP_TESTS)
    result = run_inner("-W", "error::ResourceWarning")
    result.assert_outcomes(passed=3)
    ran_cleanly(result)
    assert settle(server) == {}


SUMMARY_TESTS = """
import asyncio

import pytest


@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(4))
async def test_async(daytona_async_sandbox, n):
    await asyncio.gather(*(daytona_async_sandbox.run("true", check=True) for _ in range(n)))


def test_sync(daytona_sandbox):
    daytona_sandbox.run("true", check=True)


@pytest.mark.asyncio
async def test_made(daytona_async_sandbox_factory):
    made = await daytona_async_sandbox_factory()
    await made.run("true", check=True)
"""


@pytest.mark.parametrize("workers", [(), ("-n", "2")])
def test_summary_counts_async_and_sync_sandboxes_as_the_server_does(
    pytester: pytest.Pytester,
    run_inner: RunInner,
    server: LocalServer,
    workers: tuple[str, ...],
) -> None:
    pytester.makepyfile(SUMMARY_TESTS)
    result = run_inner(*workers)
    result.assert_outcomes(passed=6)
    counts = figures(result)
    routes = server.stats()["by_route"]
    assert counts["created"] == counts["deleted"] == routes[CREATE] == routes[DELETE] == 6
    assert counts["commands"] == 0 + 1 + 2 + 3 + 1 + 1 == routes[EXECUTE]
    # One lookup per async handle that made a call, even when its first calls were gathered
    # (test_async[0] made none).
    assert routes[GET] == 1 + 1 + 1 + 1
    assert settle(server) == {}


FAILING_TESTS = """
import pytest


@pytest.mark.asyncio
async def test_fails(daytona_async_sandbox):
    await daytona_async_sandbox.run("echo first-command")
    await daytona_async_sandbox.run("exit 4", check=True)
"""

HOOKS_CONFTEST = """
def pytest_daytona_sandbox_ready(sandbox, scope, fresh):
    from pytest_daytona import DaytonaSandbox

    assert isinstance(sandbox, DaytonaSandbox)
    sandbox.run("echo ready > ready.txt", check=True)
    print(f"READY {scope} {fresh}")
"""


@pytest.mark.quick
def test_failure_report_and_hooks(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makeconftest(HOOKS_CONFTEST)
    pytester.makepyfile(FAILING_TESTS)
    result = run_inner("-rA")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- daytona -*",
            "*echo ready > ready.txt*",
            "*echo first-command*",
            "*exit 4*",
        ]
    )
    result.stdout.fnmatch_lines(["*READY function True*"])
    # The failing command's error is short: no frame of the plugin in the traceback.
    assert not [line for line in result.outlines if "pytest_daytona/" in line]
    assert settle(server) == {}


def connections_to(port: int) -> int:
    """Established TCP connections to `port` on loopback (from /proc/net/tcp and tcp6)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as file:
            for line in file.readlines()[1:]:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                established = fields[3] == "01"
                count += remote_port == port and established
    return count


def test_each_event_loop_gets_a_client_closed_when_the_loop_ends(server: LocalServer) -> None:
    backend = Backend(make_settings(server))
    port = urllib.parse.urlsplit(server.api_url).port
    assert port is not None
    seen: list[object] = []

    async def use() -> int:
        client = await backend.async_client()
        assert await backend.async_client() is client  # one per loop
        seen.append(client)
        with contextlib.suppress(DaytonaNotFoundError):
            await client.get("no-such-sandbox")  # a request, so a connection
        return connections_to(port)

    try:
        assert asyncio.run(use()) >= 1  # a keep-alive connection while the loop runs
        assert connections_to(port) == 0  # closed with the loop, not left to the GC
        assert asyncio.run(use()) >= 1
        assert seen[0] is not seen[1]  # the second loop got its own client
        assert connections_to(port) == 0
        clients = backend._async_clients
        assert clients is not None and len(clients) == 0  # ended loops are not held on to
    finally:
        backend.close()
