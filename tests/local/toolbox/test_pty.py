"""PTY sessions with the real SDK (0.226.1 ``Process.*_pty_session``, ``PtyHandle``).

The SDK creates and attaches in one WebSocket (``/process/pty/create-connect``, envs in a
subprotocol) and reads the exit code from an ``exited`` control message or the close reason;
semantics follow the daemon v0.190.0 `apps/daemon/pkg/toolbox/process/pty/` (login shell on a
terminal, many clients per session, kill = exit code 137).
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from daytona import (
    AsyncDaytona,
    DaytonaConfig,
    DaytonaConflictError,
    DaytonaConnectionError,
    PtySize,
    Sandbox,
)

from pytest_daytona.local import LocalServer


@pytest.mark.quick
def test_a_session_runs_input_in_a_login_shell_and_reports_its_exit(
    iso_sandbox: Sandbox,
) -> None:
    handle = iso_sandbox.process.create_pty_session(
        "term", envs={"GIVEN": "given"}, pty_size=PtySize(rows=30, cols=100)
    )
    assert handle.is_connected()
    handle.send_input("echo $GIVEN-$TERM-$FROM_CREATE; stty size; exit 3\n")
    output = bytearray()
    result = handle.wait(on_data=output.extend, timeout=30)
    text = output.decode(errors="replace")
    assert "given-xterm-256color-yes" in text
    assert "30 100" in text
    assert (result.exit_code, result.error) == (3, "non-zero exit")
    assert not handle.is_connected()
    assert iso_sandbox.process.list_pty_sessions() == []  # an exited session is gone


def test_sessions_list_resize_share_clients_and_die_on_kill(sandbox: Sandbox) -> None:
    process = sandbox.process
    first = process.create_pty_session("shared")
    info = process.get_pty_session_info("shared")
    assert (info.id, info.cols, info.rows, info.active) == ("shared", 80, 24, True)
    assert info.cwd == sandbox.get_work_dir()
    assert [s.id for s in process.list_pty_sessions()] == ["shared"]
    resized = first.resize(PtySize(rows=12, cols=40))
    assert (resized.cols, resized.rows) == (40, 12)

    second = process.connect_pty_session("shared")
    second.send_input("stty size; echo done-$((6*7))\n")
    seen = bytearray()
    # Output of the second client's input reaches the first. Read by iterating the handle:
    # its wait(timeout=) returns from an idle PTY only from daytona 0.226.1 on. A PTY that
    # stays silent is killed by the guard, which ends the loop (and fails the test).
    guard = threading.Timer(60, process.kill_pty_session, args=("shared",))
    guard.start()
    try:
        for chunk in first:
            seen.extend(chunk)
            if b"done-42" in seen:
                break
    finally:
        guard.cancel()
    assert b"done-42" in seen and b"12 40" in seen, seen

    first.kill()
    assert (second.wait(timeout=30).exit_code, second.error) == (137, "SIGKILL")
    assert first.wait(timeout=30).exit_code == 137
    assert process.list_pty_sessions() == []


def test_unknown_and_duplicate_sessions(sandbox: Sandbox) -> None:
    with pytest.raises(DaytonaConnectionError, match="PTY session not found"):
        sandbox.process.connect_pty_session("nope")
    handle = sandbox.process.create_pty_session("once")
    with pytest.raises(DaytonaConflictError, match="HTTP 409"):  # the SDK drops the body
        sandbox.process.create_pty_session("once")
    handle.send_input("exit\n")
    assert handle.wait(timeout=30).exit_code == 0


def test_async_client_streams_a_session(server: LocalServer) -> None:
    async def scenario() -> tuple[int | None, bytes]:
        config = DaytonaConfig(api_key=server.token, api_url=server.api_url)
        async with AsyncDaytona(config) as daytona:
            sandbox = await daytona.create()
            received = bytearray()
            handle = await sandbox.process.create_pty_session("async", on_data=received.extend)
            await handle.send_input("echo from-$((40+2)); exit 0\n")
            result = await handle.wait()
            return result.exit_code, bytes(received)

    code, output = asyncio.run(scenario())
    assert code == 0
    assert b"from-42" in output
