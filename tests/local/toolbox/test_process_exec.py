"""`process.exec` as today's daemon runs it, and the sandbox as a long-lived environment.

Daytona's daemon (v0.190.0 `apps/daemon/pkg/toolbox/process/execute.go`, and the SDK 0.226.1
`Process.exec` docstring) pipes the command to a shell on stdin, applies `envs` after checking
their names, kills the process group on timeout and has no default timeout.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from daytona import (
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaBadRequestError,
    DaytonaConfig,
    Sandbox,
)

from pytest_daytona.local import LocalServer
from tests.local.conftest import close_client, processes_mentioning, require_bwrap

SHELL_CASES = [
    ("echo a; exit 7", 7, "a\n"),
    ("printf '%s|' one two | tr a-z A-Z", 0, "ONE|TWO|"),
    ("true && echo yes || echo no", 0, "yes\n"),
    ("false && echo yes || echo no", 0, "no\n"),
    ("echo $FROM_CREATE-$GIVEN", 0, "yes-given\n"),
    ("echo ~", 0, None),  # the home, checked below
    ("mkdir -p g && touch g/a.txt g/b.txt && cd g && echo *.txt", 0, "a.txt b.txt\n"),
    ("cat <<'EOF'\nline $x\nEOF", 0, "line $x\n"),
    ("export A=1; sh -c 'echo $A'", 0, "1\n"),
    ("cd /tmp && pwd", 0, "/tmp\n"),
    ("echo out; echo err >&2", 0, "out\nerr\n"),
    ("no-such-program-pytest-daytona", 127, None),
    ("echo 'é ✓'", 0, "é ✓\n"),
]


@pytest.mark.parametrize(("command", "code", "output"), SHELL_CASES)
def test_exec_pipes_the_command_to_a_shell(
    iso_sandbox: Sandbox, command: str, code: int, output: str | None
) -> None:
    result = iso_sandbox.process.exec(command, env={"GIVEN": "given"})
    assert result.exit_code == code, result.result
    if output is not None:
        assert result.result == output
    elif code == 127:
        assert "not found" in result.result
    else:
        assert result.result.strip() == iso_sandbox.get_user_home_dir()


def test_exec_refuses_bad_env_names_and_empty_commands(iso_sandbox: Sandbox) -> None:
    with pytest.raises(DaytonaBadRequestError, match="invalid environment variable name: 'A-B'"):
        iso_sandbox.process.exec("true", env={"A-B": "1"})
    with pytest.raises(DaytonaBadRequestError, match="empty"):
        iso_sandbox.process.exec("   ")


@pytest.mark.quick
def test_commands_start_with_no_signal_ignored(iso_sandbox: Sandbox) -> None:
    """As under Daytona's daemon, a command starts with no signal ignored and SIGINT ends it
    with 130, however the server was started (a shell's background job ignores SIGINT and
    SIGQUIT, and an ignored signal stays ignored across exec)."""
    result = iso_sandbox.process.exec(
        "grep SigIgn /proc/self/status; sh -c 'kill -INT $$; echo on'"
    )
    assert result.result == "SigIgn:\t0000000000000000\n", result.result
    assert result.exit_code == 130


def test_exec_in_a_missing_cwd_answers_minus_one(iso_sandbox: Sandbox) -> None:
    result = iso_sandbox.process.exec("true", cwd="no/such/dir")
    assert result.exit_code == -1
    assert "no/such/dir" in result.result and "no such file or directory" in result.result


@pytest.mark.quick
def test_sandbox_runs_as_daytona_in_its_own_namespaces(
    server: LocalServer, sandbox: Sandbox
) -> None:
    require_bwrap()
    script = "whoami; id -u; echo $HOME; pwd; echo $$ > /dev/null; ps -e -o pid= | wc -l"
    lines = sandbox.process.exec(script).result.split()
    assert lines[:4] == ["daytona", "1000", "/home/daytona", "/home/daytona"]
    assert int(lines[4]) < 10  # its own PID namespace: only the sandbox's processes
    assert sandbox.process.exec("touch /usr/pd-probe").exit_code != 0  # host read-only
    assert sandbox.process.exec(f"ls {server.data_dir}/sandboxes").exit_code != 0  # hidden


def test_each_sandbox_has_its_own_tmp(client: Daytona) -> None:
    first, second = client.create(), client.create()
    assert first.process.exec("echo mine > /tmp/pd-own && cat /tmp/pd-own").result == "mine\n"
    assert second.process.exec("cat /tmp/pd-own").exit_code != 0


def _wait_for(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.mark.parametrize("detach", ["&", "setsid"])
def test_background_processes_live_until_the_sandbox_stops(
    iso_sandbox: Sandbox, detach: str
) -> None:
    marker = f"pd-bg-{uuid.uuid4().hex}"
    # The copied binary's name carries the marker; a `&` list would keep the exec's output
    # pipe open (as on Daytona, the exec then waits), so the copy is its own statement.
    start = "setsid " if detach == "setsid" else ""
    command = f"cp /bin/sleep ./sleep-{marker}; {start}./sleep-{marker} 300 >/dev/null 2>&1 &"
    assert iso_sandbox.process.exec(command).exit_code == 0
    assert _wait_for(lambda: len(processes_mentioning(f"sleep-{marker}")) == 1)
    assert (
        "sleep-" in iso_sandbox.process.exec(f"ps -eo args | grep {marker} | grep -v grep").result
    )
    iso_sandbox.stop()
    assert _wait_for(lambda: processes_mentioning(f"sleep-{marker}") == [])
    iso_sandbox.start()
    assert iso_sandbox.process.exec(f"ps -eo args | grep -c '^./sleep-{marker}'").result == "0\n"


def test_stop_returns_only_once_every_process_of_the_sandbox_is_gone(
    iso_sandbox: Sandbox,
) -> None:
    # bwrap's death kills the namespace a moment later: stop must wait for that, not for bwrap.
    marker = f"pd-stop-{uuid.uuid4().hex}"
    iso_sandbox.process.exec(f"cp /bin/sleep ./{marker}")
    for _ in range(4):
        sleepers = " ".join(f"./{marker} 300 >/dev/null 2>&1 &" for _ in range(12))
        assert iso_sandbox.process.exec(sleepers).exit_code == 0
        assert _wait_for(lambda: len(processes_mentioning(marker)) == 12)
        iso_sandbox.stop()
        assert processes_mentioning(marker) == []
        # Nor bubblewrap's own processes (their command lines name the sandbox's dirs).
        assert processes_mentioning(f"/sandboxes/{iso_sandbox.id}/") == []
        iso_sandbox.start()


def test_delete_and_server_stop_end_every_process(iso_server: LocalServer) -> None:
    daytona = Daytona(DaytonaConfig(api_key=iso_server.token, api_url=iso_server.api_url))
    try:
        markers = []
        for _ in range(2):
            sandbox = daytona.create(CreateSandboxFromSnapshotParams())
            marker = f"pd-del-{uuid.uuid4().hex}"
            sandbox.process.exec(f"cp /bin/sleep ./{marker}; ./{marker} 300 >/dev/null 2>&1 &")
            assert _wait_for(lambda m=marker: len(processes_mentioning(m)) == 1)  # type: ignore[misc]
            markers.append((sandbox, marker))
        doomed, doomed_marker = markers[0]
        doomed.delete()
        assert _wait_for(lambda: processes_mentioning(doomed_marker) == [])
        assert processes_mentioning(markers[1][1]) != []
    finally:
        close_client(daytona)
    iso_server.stop()
    assert _wait_for(lambda: processes_mentioning(markers[1][1]) == [])
