"""`DaytonaSandbox.run` inputs and deadlines, through the real SDK against the embedded server,
with bubblewrap isolation and without."""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from daytona import CreateSandboxFromSnapshotParams, Daytona, DaytonaConfig

from pytest_daytona import CommandError, DaytonaSandbox
from pytest_daytona.local import LocalServer
from pytest_daytona.local.sandboxes.runner import choose_bwrap
from tests.local.conftest import ISOLATIONS

EXECUTE = "POST /process/execute"
#: Names of the old wrapper's temp files (it has none now) and of uploaded stdin files.
WRAPPER_FILE = re.compile(r"\.?pytest-daytona-[0-9a-f]{24}\.\w+|stdin-[0-9a-f]{16}")


@functools.cache
def _bwrap_usable() -> bool:
    return choose_bwrap("auto") is not None


@pytest.fixture(scope="module", params=ISOLATIONS)
def iso_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServer]:
    """A server per isolation mode; without bubblewrap the bwrap variant fails under CI (which
    installs it) and is skipped elsewhere."""
    if request.param == "bwrap" and not _bwrap_usable():
        message = "bubblewrap (bwrap) is not installed or not working: apt-get install bubblewrap"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with LocalServer(tmp_path_factory.mktemp("data"), isolation=request.param) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(iso_server: LocalServer) -> Iterator[Daytona]:
    daytona = Daytona(DaytonaConfig(api_key=iso_server.token, api_url=iso_server.api_url))
    yield daytona
    dispatcher = getattr(daytona, "_event_dispatcher", None)  # the sync SDK has no close
    if dispatcher is not None:
        with contextlib.suppress(AttributeError):
            dispatcher.disconnect()


@pytest.fixture
def sandbox(client: Daytona) -> Iterator[DaytonaSandbox]:
    """The real handle on a fresh sandbox, as the fixtures build it."""
    sdk = client.create(CreateSandboxFromSnapshotParams())
    workspace = posixpath.join(sdk.get_work_dir(), "pytest-workspace")
    sdk.fs.create_folder(workspace, "755")
    yield DaytonaSandbox(sdk, workspace, default_timeout=60)
    sdk.delete()


def requests(server: LocalServer, route: str | None = None) -> int:
    stats = server.stats()
    return int(stats["requests"] if route is None else stats["by_route"].get(route, 0))


def raw(sb: DaytonaSandbox, script: str) -> str:
    """Output of `script` run by sh through the bare SDK: no wrapper, so no temp files of its
    own (the toolbox splits the line into words at spaces outside quotes)."""
    return str(sb.sdk.process.exec(f"sh -c '{script}'", timeout=10).result)


def leftovers(sb: DaytonaSandbox) -> list[str]:
    """The wrapper's temp files in $TMPDIR, /tmp and $HOME, and stdin files in the scratch dir."""
    listing = raw(
        sb,
        'for d in "${TMPDIR:-/tmp}" /tmp "$HOME" "$HOME/.pytest-daytona"; '
        'do ls -A "$d" 2>/dev/null; done',
    )
    return [name for name in listing.split() if WRAPPER_FILE.fullmatch(name)]


def processes_with(sb: DaytonaSandbox, marker: str) -> str:
    """/proc entries of live processes whose command line contains `marker` (of the sandbox:
    under bubblewrap each command has its own PID namespace, so none of an earlier one)."""
    pattern = f"[{marker[0]}]{marker[1:]}"  # does not match grep's own command line
    return raw(sb, f'grep -l "{pattern}" /proc/[0-9]*/cmdline 2>/dev/null')


def test_env_value_that_is_not_str_is_refused_before_any_request(
    sandbox: DaytonaSandbox, iso_server: LocalServer
) -> None:
    before = requests(iso_server)
    with pytest.raises(TypeError, match=r"'N' must be a str, got int"):
        sandbox.run("true", env={"N": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"'PATH_2' must be a str, got NoneType"):
        sandbox.run("true", env={"OK": "x", "PATH_2": None})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="1BAD"):
        sandbox.run("true", env={"1BAD": "x"})
    assert requests(iso_server) == before
    assert sandbox.run('printf %s "$N"', env={"N": "1"}).stdout == "1"


def test_stdin_takes_text_bytes_buffers_and_local_files(
    sandbox: DaytonaSandbox, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 3
    local = tmp_path / "input.bin"
    local.write_bytes(data)

    def sent(stdin: object) -> bytes:
        result = sandbox.run("od -An -v -tx1", stdin=stdin)  # type: ignore[arg-type]
        assert result.ok, result
        return bytes.fromhex(result.stdout)

    assert sandbox.run("cat", stdin="ünï ✓\n").stdout == "ünï ✓\n"
    assert sent(data) == data
    assert sent(bytearray(data)) == data
    assert sent(memoryview(data)[1:4]) == data[1:4]
    assert sent(local) == data
    assert sent(str(local)) == str(local).encode()  # a str is text, never a path
    assert leftovers(sandbox) == []


@pytest.mark.parametrize("stdin", [1, 2.5, ["a"], {"a": 1}, object()])
def test_stdin_of_another_type_is_refused_before_any_request(
    sandbox: DaytonaSandbox, iso_server: LocalServer, stdin: object
) -> None:
    before = requests(iso_server)
    with pytest.raises(TypeError, match=rf"stdin must be .* not {type(stdin).__name__}$"):
        sandbox.run("cat", stdin=stdin)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        sandbox.run("cat", stdin=Path("/no/such/local/file"))
    assert requests(iso_server) == before


@pytest.mark.parametrize("limit", [0.2, 1.2])
def test_a_timeout_that_is_not_whole_seconds_is_honoured(
    sandbox: DaytonaSandbox, limit: float
) -> None:
    result = sandbox.run(f"sleep {limit + 0.6}; echo late", timeout=limit)
    assert (result.timed_out, result.exit_code, result.ok) == (True, None, False)
    assert "late" not in result.stdout
    assert f"timed out after {limit}s" in result.stderr
    assert sandbox.run("sleep 0.1; echo in time", timeout=2.5).stdout == "in time\n"


def test_a_timed_out_command_keeps_its_partial_output(sandbox: DaytonaSandbox) -> None:
    result = sandbox.run("echo before; echo err >&2; sleep 5", timeout=0.5)
    assert (result.timed_out, result.exit_code) == (True, None)
    assert result.stdout == "before\n"
    assert result.stderr.startswith("err\n")
    with pytest.raises(CommandError, match="timed out") as info:
        sandbox.run("echo before; sleep 5", timeout=0.5, check=True)
    assert info.value.result.stdout == "before\n"


def test_a_command_exiting_124_did_not_time_out(sandbox: DaytonaSandbox) -> None:
    result = sandbox.run("echo out; exit 124", timeout=5)
    assert (result.exit_code, result.timed_out, result.stdout) == (124, False, "out\n")


def test_a_timeout_leaves_no_temp_files_nor_children_that_ignore_term(
    sandbox: DaytonaSandbox,
) -> None:
    marker = f"survivor-{secrets.token_hex(6)}"
    child = f'trap "" TERM; sleep 30; echo {marker}'
    result = sandbox.run(f"sh -c '{child}' & cat; wait", stdin="from stdin\n", timeout=0.5)
    assert result.timed_out
    # The output came back through the wrapper (not the API's timeout): the pipe closed.
    assert result.stdout == "from stdin\n"
    assert result.stderr.startswith("pytest-daytona: timed out after 0.5s")
    assert processes_with(sandbox, marker) == ""
    assert leftovers(sandbox) == []
    assert sandbox.run("echo alive").stdout == "alive\n"


def test_when_the_api_timeout_fires_the_result_is_timed_out_and_cleaned_up(
    sandbox: DaytonaSandbox, iso_server: LocalServer
) -> None:
    marker = f"stopped-{secrets.token_hex(6)}"
    executes = requests(iso_server, EXECUTE)
    # A stopped process group (the wrapper's timer too) cannot enforce the deadline, so the
    # execute API's backstop fires and kills the group, as Daytona's daemon does.
    result = sandbox.run(f"kill -STOP 0; echo {marker}", stdin="x", timeout=0.2)
    assert (result.timed_out, result.exit_code) == (True, None)
    assert "timed out" in result.stderr.lower()
    assert requests(iso_server, EXECUTE) == executes + 1  # no clean-up command is needed
    assert processes_with(sandbox, marker) == ""  # the stopped process group was killed
    assert leftovers(sandbox) == []  # the stdin file was deleted through the file API
