"""Process sessions as today's daemon keeps them, driven by the unmodified SDK.

Behaviour read from Daytona v0.190.0 ``apps/daemon/pkg/session/*.go`` and
``apps/daemon/pkg/toolbox/process/session/*.go``, and from SDK 0.226.1
(``daytona/_sync/process.py``, ``daytona/_utils/stream.py``): one shell per session sources
every command (cwd and env persist), each output line is marked ``\\x01\\x01\\x01`` (stdout)
or ``\\x02\\x02\\x02`` (stderr) in the log, and following logs is a WebSocket carrying the
marked log.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from daytona import (
    AsyncDaytona,
    CreateSandboxFromSnapshotParams,
    CreateSnapshotParams,
    Daytona,
    DaytonaBadRequestError,
    DaytonaConfig,
    DaytonaConflictError,
    DaytonaError,
    DaytonaGoneError,
    DaytonaNotFoundError,
    Sandbox,
    SessionExecuteRequest,
    SessionExecuteResponse,
)

from pytest_daytona.local import LocalServer
from pytest_daytona.local.agent.shellsession import Command, wrapper
from tests.local.conftest import processes_mentioning, require


def run(sandbox: Sandbox, session: str, command: str, **kwargs: bool) -> SessionExecuteResponse:
    return sandbox.process.execute_session_command(
        session, SessionExecuteRequest(command=command, **kwargs)
    )


def test_session_lifecycle_and_unknown_ids(iso_sandbox: Sandbox) -> None:
    process = iso_sandbox.process
    process.create_session("a")
    process.create_session("b")
    with pytest.raises(DaytonaConflictError, match="session already exists"):
        process.create_session("a")
    assert [s.session_id for s in process.list_sessions()] == ["a", "b"]
    assert process.get_session("a").commands == []
    process.delete_session("a")
    assert [s.session_id for s in process.list_sessions()] == ["b"]
    for call in (
        lambda: process.get_session("a"),
        lambda: process.delete_session("a"),
        lambda: process.get_session_command("a", "x"),
        lambda: process.get_session_command_logs("a", "x"),
        lambda: process.execute_session_command("a", SessionExecuteRequest(command="true")),
    ):
        with pytest.raises(DaytonaNotFoundError, match="session not found"):
            call()
    with pytest.raises(DaytonaNotFoundError, match="command not found"):
        process.get_session_command("b", "no-such-command")


def test_commands_share_the_shell_cwd_and_env(iso_sandbox: Sandbox) -> None:
    iso_sandbox.process.create_session("s")
    first = run(iso_sandbox, "s", "mkdir -p sub && cd sub && export PD_X=kept; PD_Y=shellvar")
    assert first.exit_code == 0
    second = run(iso_sandbox, "s", 'pwd; echo "$PD_X $PD_Y $FROM_CREATE"')
    home = iso_sandbox.get_user_home_dir()
    assert second.stdout == f"{home}/sub\nkept shellvar yes\n"
    iso_sandbox.process.create_session("other")
    fresh = run(iso_sandbox, "other", 'pwd; echo "[$PD_X]"')
    assert fresh.stdout == f"{home}\n[]\n"


MIXED = "echo out; echo err >&2; printf 'no newline'; (exit 7)"


@pytest.mark.quick
def test_stdout_stderr_apart_exit_codes_and_line_marks(iso_sandbox: Sandbox) -> None:
    iso_sandbox.process.create_session("s")
    result = run(iso_sandbox, "s", MIXED)
    assert (result.exit_code, result.stdout, result.stderr) == (7, "out\nno newline\n", "err\n")
    # `output` is the log itself: every line behind its stream's mark, as the daemon answers.
    assert "\x01\x01\x01out\n" in result.output and "\x02\x02\x02err\n" in result.output
    missing = run(iso_sandbox, "s", "no-such-program-pd")
    assert missing.exit_code == 127 and "not found" in missing.stderr and missing.stdout == ""
    logs = iso_sandbox.process.get_session_command_logs("s", result.cmd_id)
    assert (logs.stdout, logs.stderr, logs.output) == (result.stdout, result.stderr, result.output)
    command = iso_sandbox.process.get_session_command("s", result.cmd_id)
    assert (command.command, command.exit_code) == (MIXED, 7)
    session = iso_sandbox.process.get_session("s")
    assert [(c.id, c.exit_code) for c in session.commands] == [
        (result.cmd_id, 7),
        (missing.cmd_id, 127),
    ]


def test_async_command_takes_input_then_is_gone(iso_sandbox: Sandbox) -> None:
    process = iso_sandbox.process
    process.create_session("s")
    started = run(
        iso_sandbox, "s", 'read a; echo "got $a"; read b; echo "got $b" >&2', run_async=True
    )
    assert started.exit_code is None and started.stdout == ""
    assert process.get_session_command("s", started.cmd_id).exit_code is None
    process.send_session_command_input("s", started.cmd_id, "one")
    process.send_session_command_input("s", started.cmd_id, "two\n")
    done = wait_for_exit(iso_sandbox, "s", started.cmd_id)
    assert done == 0
    logs = process.get_session_command_logs("s", started.cmd_id)
    assert "got one\n" in logs.stdout and logs.stderr == "got two\n"
    assert "one\n" in logs.stdout.replace("got one\n", "")  # input is echoed as stdout
    with pytest.raises(DaytonaGoneError, match="already completed with exit code 0"):
        process.send_session_command_input("s", started.cmd_id, "late")
    quiet = run(iso_sandbox, "s", "read a; echo done", run_async=True, suppress_input_echo=True)
    process.send_session_command_input("s", quiet.cmd_id, "secret")
    assert wait_for_exit(iso_sandbox, "s", quiet.cmd_id) == 0
    assert process.get_session_command_logs("s", quiet.cmd_id).stdout == "done\n"


def wait_for_exit(sandbox: Sandbox, session: str, command_id: str) -> int | None:
    """The exit code, waited for by following the logs to their end (no polling)."""
    asyncio.run(
        sandbox.process.get_session_command_logs_async(
            session, command_id, lambda _: None, lambda _: None
        )
    )
    return sandbox.process.get_session_command(session, command_id).exit_code


def follow_until(follow: Callable[..., Awaitable[None]], text: str) -> str:
    """Follow logs with `follow(on_stdout, on_stderr)` until `text` shows on stdout."""
    seen: list[str] = []

    async def on_stdout(chunk: str) -> None:
        if text in "".join(seen):
            return  # the SDK hands what it buffered over once more as it unwinds
        seen.append(chunk)
        if text in "".join(seen):
            raise asyncio.CancelledError  # stop reading: the command goes on

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(follow(on_stdout, lambda _: None))
    return "".join(seen)


def test_following_logs_streams_while_the_command_runs(iso_sandbox: Sandbox) -> None:
    process = iso_sandbox.process
    process.create_session("s")
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    script = f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo second >&2; echo third"
    started = run(iso_sandbox, "s", script, run_async=True)
    seen: list[tuple[str, str]] = []

    async def on_stdout(text: str) -> None:
        seen.append(("out", text))
        if "first" in text:  # only a streamed chunk can open the gate the command waits for
            await asyncio.to_thread(iso_sandbox.fs.upload_file, b"", gate)

    async def on_stderr(text: str) -> None:
        seen.append(("err", text))

    asyncio.run(process.get_session_command_logs_async("s", started.cmd_id, on_stdout, on_stderr))
    assert "".join(t for k, t in seen if k == "out") == "first\nthird\n"
    assert "".join(t for k, t in seen if k == "err") == "second\n"
    assert process.get_session_command("s", started.cmd_id).exit_code == 0


def test_following_an_unknown_command_fails_before_the_upgrade(iso_sandbox: Sandbox) -> None:
    iso_sandbox.process.create_session("s")
    # The daemon answers 404 instead of upgrading; the SDK reports the failed upgrade.
    with pytest.raises(DaytonaError, match=r"404"):
        asyncio.run(
            iso_sandbox.process.get_session_command_logs_async(
                "s", "nope", lambda _: None, lambda _: None
            )
        )


def test_delete_ends_every_process_of_the_session(iso_sandbox: Sandbox) -> None:
    marker = str(700000 + uuid.uuid4().int % 99999)
    process = iso_sandbox.process
    process.create_session("s")
    sleeper = run(iso_sandbox, "s", f"echo up; sleep {marker}", run_async=True)
    run(iso_sandbox, "s", "touch never", run_async=True)  # queued behind the sleep
    follow_until(partial(process.get_session_command_logs_async, "s", sleeper.cmd_id), "up")
    assert processes_mentioning(f"sleep {marker}")
    iso_sandbox.process.delete_session("s")
    assert not processes_mentioning(f"sleep {marker}")
    assert iso_sandbox.process.list_sessions() == []
    # One shell runs a session's commands in turn: the one queued behind the sleep never ran.
    assert iso_sandbox.process.exec("test -e never").exit_code == 1


def test_a_command_that_exits_the_shell_ends_the_session(iso_sandbox: Sandbox) -> None:
    iso_sandbox.process.create_session("s")
    assert run(iso_sandbox, "s", "exit 3").exit_code == 3
    with pytest.raises(DaytonaGoneError):
        run(iso_sandbox, "s", "echo again")


def test_entrypoint_session_is_reserved(iso_sandbox: Sandbox) -> None:
    process = iso_sandbox.process
    session = process.get_entrypoint_session()
    assert session.session_id == "entrypoint"
    assert [(c.id, c.command, c.exit_code) for c in session.commands] == [
        ("entrypoint_command", "'sleep' 'infinity'", None)
    ]
    logs = process.get_entrypoint_logs()
    assert (logs.output, logs.stdout, logs.stderr) == ("", "", "")
    assert process.list_sessions() == []  # not listed
    with pytest.raises(DaytonaBadRequestError, match="reserved"):
        process.create_session("entrypoint")
    with pytest.raises(DaytonaBadRequestError, match="can't execute"):
        run(iso_sandbox, "entrypoint", "true")
    with pytest.raises(DaytonaBadRequestError, match="can't delete"):
        process.delete_session("entrypoint")
    with pytest.raises(DaytonaBadRequestError, match="can't send input"):
        process.send_session_command_input("entrypoint", "entrypoint_command", "x")


@pytest.mark.usefixtures("stand_in_registry")  # short image names
def test_snapshot_entrypoint_runs_in_the_entrypoint_session(client: Daytona) -> None:
    script = "echo booted; echo warn >&2; sleep 600"
    client.snapshot.create(
        CreateSnapshotParams(name="ep", image="alpine:3.20", entrypoint=["sh", "-c", script])
    )
    sandbox = client.create(CreateSandboxFromSnapshotParams(snapshot="ep"))
    command = sandbox.process.get_entrypoint_session().commands[0]
    assert command.command == f"'sh' '-c' '{script}'" and command.exit_code is None
    assert follow_until(sandbox.process.get_entrypoint_logs_async, "booted") == "booted\n"
    logs = sandbox.process.get_entrypoint_logs()
    assert (logs.stdout, logs.stderr) == ("booted\n", "warn\n")


def test_stop_ends_sessions(server: LocalServer, sandbox: Sandbox) -> None:
    marker = str(800000 + uuid.uuid4().int % 99999)
    sandbox.process.create_session("s")
    sleeper = run(sandbox, "s", f"echo up; sleep {marker}", run_async=True)
    follow_until(partial(sandbox.process.get_session_command_logs_async, "s", sleeper.cmd_id), "up")
    assert processes_mentioning(f"sleep {marker}")
    sandbox.stop()
    assert not processes_mentioning(f"sleep {marker}")
    sandbox.start()
    assert sandbox.process.list_sessions() == []
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.get_session("s")


def test_async_sdk_runs_async_commands_and_follows_logs(iso_server: LocalServer) -> None:
    async def scenario() -> tuple[list[str], list[str], int | None, str]:
        config = DaytonaConfig(api_key=iso_server.token, api_url=iso_server.api_url)
        async with AsyncDaytona(config) as daytona:
            sandbox = await daytona.create()
            process = sandbox.process
            await process.create_session("s")
            await process.execute_session_command("s", SessionExecuteRequest(command="cd /tmp"))
            started = await process.execute_session_command(
                "s",
                SessionExecuteRequest(
                    command="for i in 1 2 3; do echo o$i; echo e$i >&2; sleep 0.1; done; pwd",
                    run_async=True,
                ),
            )
            out: list[str] = []
            err: list[str] = []
            await process.get_session_command_logs_async(
                "s", started.cmd_id, out.append, err.append
            )
            command = await process.get_session_command("s", started.cmd_id)
            entry = await process.get_entrypoint_session()
            await process.delete_session("s")
            await sandbox.delete()
            return out, err, command.exit_code, entry.session_id

    out, err, code, entrypoint = asyncio.run(scenario())
    assert "".join(out) == "o1\no2\no3\n/tmp\n" and "".join(err) == "e1\ne2\ne3\n"
    assert code == 0 and entrypoint == "entrypoint"


def _run_wrapped(shell: list[str], base: Path, count: int) -> list[int]:
    """`count` commands through the session wrapper in one long-lived `shell`, prepared and
    read back as the agent does (`Command`); each one's exit code, or -1 for one that never
    ended (bounded wait)."""
    proc = subprocess.Popen(shell, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    codes = []
    try:
        for number in range(count):
            script = f"export N={number}; exit_with() {{ return $1; }}; exit_with {number % 3}"
            command = Command(str(base), str(number), script, echo_input=False)
            command.prepare()
            proc.stdin.write(wrapper(command.dir, False).encode())
            proc.stdin.flush()
            deadline = time.monotonic() + 10
            while command.finished() is None and time.monotonic() < deadline:
                time.sleep(0.001)
            code = command.finished()
            codes.append(-1 if code is None else code)
            if code is None:
                break
            proc.stdout.readline()
    finally:
        proc.kill()
        proc.wait()
    return codes


def test_the_session_wrapper_never_waits_forever_under_busybox_sh(tmp_path: Path) -> None:
    """busybox sh fails an open of a FIFO that a SIGCHLD interrupts; the wrapper's labellers
    then waited for a writer forever (seen: a session command in a busybox image that never
    ended). Three shells at once, as under load; before the retried opens each of three such
    loops hung within its first 1,500 commands."""
    busybox = shutil.which("busybox")
    require(busybox is not None, "busybox is not installed (apt-get install busybox-static)")
    assert busybox is not None
    with ThreadPoolExecutor(3) as pool:
        runs = list(
            pool.map(
                lambda n: _run_wrapped([busybox, "sh"], tmp_path / f"shell{n}", 1000), range(3)
            )
        )
    for codes in runs:
        assert codes == [n % 3 for n in range(1000)]
