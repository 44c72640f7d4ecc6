"""One `run` of a sandbox handle, without the I/O: what to send and how to read the answer.

The sync handle (`sandbox.DaytonaSandbox`) and the async one (`async_sandbox`) both plan a
command here, then do the same I/O in their own way: upload the stdin file if there is one,
make one execute call, and hand its answer (or the execute API's own timeout) back to the plan.
"""

from __future__ import annotations

import math
import os
import posixpath
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..results import ExecResult
from .executor import (
    backstop_timeout,
    build_script,
    command_to_shell,
    new_delimiter,
    reported_workdir,
    result_from_output,
    toolbox_call,
    validate_env,
)

#: Directory next to the sandbox work dir for the plugin's own temporary files (stdin).
SCRATCH_DIR = ".pytest-daytona"

#: What `run` takes as stdin: text, bytes (any bytes-like object) or a path.
Stdin = str | bytes | bytearray | memoryview | os.PathLike[str] | os.PathLike[bytes]


@dataclass(frozen=True)
class RunPlan:
    """One command ready to send: the execute call's command, env and timeout, the stdin file
    to upload first (if any), and what is needed to read the answer."""

    shown: str  # the command as shell text, for results and messages
    limit: float  # the command's deadline, seconds
    command: str
    env: dict[str, str]
    backstop: int  # the execute API's own timeout, seconds
    delimiter: str
    stdin: bytes | None
    stdin_path: str | None
    make_dir: str | None  # the workspace this command's script makes (name under the work dir)

    def result(self, output: str, exit_code: int | None, duration: float) -> ExecResult:
        """The command's result from the execute call's combined output and exit code."""
        return result_from_output(
            command=self.shown,
            output=output,
            delimiter=self.delimiter,
            exit_code=exit_code,
            duration=duration,
        )

    def workspace(self, output: str) -> str | None:
        """The workspace this command made (its absolute path), if it made one."""
        workdir = reported_workdir(output, self.delimiter)
        if self.make_dir is None or workdir is None:
            return None
        return posixpath.join(workdir, self.make_dir)

    def backstop_fired(self, error: BaseException, duration: float) -> ExecResult:
        """The result when the execute API's own timeout ended the command (the toolbox
        killed the script's process group: nothing of the command is left)."""
        return ExecResult(
            exit_code=None,
            stdout="",
            stderr=(
                f"pytest-daytona: timed out after {self.limit:g}s; the execute API's own "
                f"timeout ended the command and its output ({str(error).strip()})\n"
            ),
            timed_out=True,
            duration=duration,
            command=self.shown,
        )


def plan_run(
    command: str | Sequence[str],
    *,
    cwd: str | None,
    env: Mapping[str, str] | None,
    stdin: Stdin | None,
    timeout: float | None,
    default_timeout: float,
    workspace: str | None,
    pending: str | None,
    realize: Callable[[], str],
) -> RunPlan:
    """Plan `command` (see `DaytonaSandbox.run` for the arguments' meaning).

    `workspace` is the workspace's absolute path if known, else `pending` names the one the
    script should make. `realize()` makes the workspace and returns its path; it is called
    only for `stdin` (whose file goes next to the workspace), after the arguments were checked.
    """
    shown = command_to_shell(command)
    validate_env(env or {})
    limit = default_timeout if timeout is None else timeout
    if not 0 < limit < math.inf:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    payload = stdin_bytes(stdin)
    stdin_path = None
    if payload is not None:
        workspace = workspace or realize()
        root = posixpath.dirname(workspace)
        stdin_path = posixpath.join(root, SCRATCH_DIR, f"stdin-{secrets.token_hex(8)}")
    make_dir = pending if workspace is None else None
    base = workspace or make_dir or ""
    delimiter = new_delimiter()
    script = build_script(
        command,
        cwd=posixpath.normpath(posixpath.join(base, cwd)) if cwd is not None else base,
        env=env,
        stdin_path=stdin_path,
        delimiter=delimiter,
        remove_stdin=True,
        timeout=limit,
        make_dir=make_dir,
    )
    call_command, call_env = toolbox_call(script)
    return RunPlan(
        shown=shown,
        limit=limit,
        command=call_command,
        env=call_env,
        backstop=backstop_timeout(limit),
        delimiter=delimiter,
        stdin=payload,
        stdin_path=stdin_path,
        make_dir=make_dir,
    )


def stdin_bytes(stdin: object) -> bytes | None:
    """The bytes `run` sends as stdin; TypeError for what it does not take."""
    if stdin is None:
        return None
    if isinstance(stdin, str):
        return stdin.encode()
    if isinstance(stdin, os.PathLike):
        with open(os.fspath(stdin), "rb") as file:
            return file.read()
    try:
        return bytes(memoryview(stdin))  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            "stdin must be str, bytes (or another bytes-like object) or a path object "
            f"(os.PathLike), not {type(stdin).__name__}"
        ) from None


def upload_payload(data: bytes | str | os.PathLike[str]) -> bytes:
    """The bytes `upload` writes: bytes as they are, text UTF-8 encoded, a path's contents."""
    if isinstance(data, os.PathLike):
        with open(os.fspath(data), "rb") as file:
            return file.read()
    if isinstance(data, str):
        return data.encode()
    return bytes(data)
