"""The sandbox handle the fixtures yield, and the one path every command takes (`run`)."""

from __future__ import annotations

import contextlib
import math
import os
import posixpath
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from .calls import Attempt, Retry
from .command_log import CommandLog
from .executor import (
    ExecResult,
    backstop_timeout,
    build_script,
    command_to_shell,
    new_delimiter,
    reported_workdir,
    result_from_output,
    toolbox_call,
    validate_env,
)

if TYPE_CHECKING:
    from daytona import ExecuteResponse, Sandbox

#: Directory under the sandbox work dir for the plugin's own temporary files (stdin).
SCRATCH_DIR = ".pytest-daytona"

#: What `DaytonaSandbox.run` takes as stdin: text, bytes (any bytes-like object) or a path.
Stdin = str | bytes | bytearray | memoryview | os.PathLike[str] | os.PathLike[bytes]


class DaytonaSandbox:
    """A Daytona sandbox leased for a test: run commands in it and move files in and out.

    Relative remote paths (``cwd``, ``upload``, ``download`` ...) are relative to
    :attr:`workspace`. Everything the SDK offers beyond this is on :attr:`sdk`.
    """

    def __init__(
        self,
        sdk: Sandbox,
        workspace: str | Workspace,
        *,
        default_timeout: float,
        call: CallApi | None = None,
    ) -> None:
        self._sdk = sdk
        self._pending = workspace if isinstance(workspace, Workspace) else None
        self._workspace = workspace if isinstance(workspace, str) else None
        self._default_timeout = default_timeout
        self._call: CallApi = call or _call_directly
        self._log = CommandLog()

    def __repr__(self) -> str:
        shown = self._workspace or f"{self._pending.name if self._pending else ''} (not made yet)"
        return f"<DaytonaSandbox {self.name} id={self.id} workspace={shown}>"

    @property
    def sdk(self) -> Sandbox:
        """The underlying `daytona.Sandbox`, for everything this handle does not wrap."""
        return self._sdk

    @property
    def command_log(self) -> CommandLog:
        """The last commands `run` ran here (for failure reports): iterate for `CommandRecord`s."""
        return self._log

    @property
    def id(self) -> str:
        """The sandbox id."""
        return str(self._sdk.id)

    @property
    def name(self) -> str:
        """The sandbox name."""
        return str(self._sdk.name)

    @property
    def workspace(self) -> str:
        """Absolute remote path of the working directory commands start in."""
        if self._workspace is None:
            assert self._pending is not None
            self._workspace = self._pending.realize()
        return self._workspace

    def path(self, remote_path: str) -> str:
        """`remote_path` made absolute against :attr:`workspace`."""
        return posixpath.normpath(posixpath.join(self.workspace, remote_path))

    def run(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: Stdin | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> ExecResult:
        """Run `command` in a login shell in the sandbox.

        `command` is a shell snippet (str) or an argv sequence (each item quoted). `env`
        (str values) is exported after the login profiles, so it wins over them. `stdin` is
        text (sent UTF-8 encoded), bytes or any bytes-like object, or a local file given as a
        path object (its contents are sent); it is uploaded to a temporary file that is
        removed afterwards. A command still running after `timeout` seconds (fractions
        honoured; default: the ``timeout`` setting) is killed with everything it started and
        its result is marked ``timed_out``, keeping what it printed until then (no
        exception). With ``check=True`` a failure raises `CommandError`. An API failure
        (after retries) raises `pytest_daytona.errors.BackendCallError` with a short message.
        """
        __tracebackhide__ = True
        from daytona import DaytonaTimeoutError

        shown = command_to_shell(command)
        validate_env(env or {})
        limit = self._default_timeout if timeout is None else timeout
        if not 0 < limit < math.inf:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        payload = _stdin_bytes(stdin)
        stdin_path = None
        if payload is not None:
            root = posixpath.dirname(self.workspace)
            stdin_path = posixpath.join(root, SCRATCH_DIR, f"stdin-{secrets.token_hex(8)}")
        # A workspace not made yet is made by this command's script (no extra API call).
        make_dir = self._pending.name if self._workspace is None and self._pending else None
        base = self._workspace or make_dir or ""
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
        started = time.monotonic()
        removed = False
        try:
            if stdin_path is not None and payload is not None:
                self._upload_stdin(payload, stdin_path)
            response = self._exec(*toolbox_call(script), backstop_timeout(limit))
            removed = True  # the script removed the stdin file itself
            workdir = reported_workdir(response.result or "", delimiter)
            if make_dir is not None and workdir is not None and self._workspace is None:
                self._workspace = posixpath.join(workdir, make_dir)
            result = result_from_output(
                command=shown,
                output=response.result or "",
                delimiter=delimiter,
                exit_code=response.exit_code,
                duration=time.monotonic() - started,
            )
        except DaytonaTimeoutError as exc:
            # The backstop fired: the toolbox killed the script's process group, so nothing of
            # the command is left but the stdin file (removed below).
            result = ExecResult(
                exit_code=None,
                stdout="",
                stderr=(
                    f"pytest-daytona: timed out after {limit:g}s; the execute API's own timeout "
                    f"ended the command and its output ({str(exc).strip()})\n"
                ),
                timed_out=True,
                duration=time.monotonic() - started,
                command=shown,
            )
        finally:
            if stdin_path is not None and not removed:
                self._remove_quietly(stdin_path)
        self._log.add(result, cwd)
        return result.check() if check else result

    def _exec(self, command: str, env: dict[str, str], timeout: int) -> ExecuteResponse:
        """Send one command to the sandbox's execute API (the only place that does).

        Retried only where the answer proves the command did not run (429, 503, a refused
        connection); the execute API's own timeout (408) is passed on as it is."""
        __tracebackhide__ = True
        from daytona import DaytonaProcessExecutionTimeoutError

        return self._call(
            "run a command in",
            lambda _: self._sdk.process.exec(command, env=env, timeout=timeout),
            timeout=timeout + EXEC_HTTP_SLACK,
            retry="unsent",
            passthrough=(DaytonaProcessExecutionTimeoutError,),
        )

    def _upload_stdin(self, payload: bytes, remote_path: str) -> None:
        self._call(
            "upload stdin to",
            lambda a: self._sdk.fs.upload_file(payload, remote_path, timeout=math.ceil(a.limit)),
            timeout=self._default_timeout,
        )

    def _remove_quietly(self, remote_path: str) -> None:
        # Best effort: the file lives in the plugin's scratch dir of a sandbox about to go.
        with contextlib.suppress(Exception):
            self._sdk.fs.delete_file(remote_path)

    def upload(self, data: bytes | str | os.PathLike[str], remote_path: str) -> str:
        """Write `data` (bytes, text, or the contents of a local file given as a path object)
        to `remote_path`, creating parent directories; returns the absolute remote path."""
        if isinstance(data, os.PathLike):
            payload = Path(data).read_bytes()
        elif isinstance(data, str):
            payload = data.encode()
        else:
            payload = bytes(data)
        target = self.path(remote_path)
        self._call(
            "upload to",
            lambda a: self._sdk.fs.upload_file(payload, target, timeout=math.ceil(a.limit)),
            timeout=self._default_timeout,
        )
        return target

    def download(self, remote_path: str) -> bytes:
        """The contents of remote file `remote_path`."""
        source = self.path(remote_path)
        data = self._call(
            "download from",
            lambda a: self._sdk.fs.download_file(source, math.ceil(a.limit)),
            timeout=self._default_timeout,
        )
        return bytes(data)

    def read_text(self, remote_path: str, encoding: str = "utf-8") -> str:
        """The contents of remote file `remote_path`, decoded."""
        return self.download(remote_path).decode(encoding)

    def write_text(self, remote_path: str, text: str, encoding: str = "utf-8") -> str:
        """Write `text` to remote file `remote_path`; returns the absolute remote path."""
        return self.upload(text.encode(encoding), remote_path)


@dataclass(frozen=True)
class Workspace:
    """A workspace directory not made yet: `name` under the sandbox's work dir. The first
    command makes it; `realize` makes it through the API when a path is needed before."""

    name: str
    realize: Callable[[], str]


def _stdin_bytes(stdin: object) -> bytes | None:
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


T = TypeVar("T")
#: Seconds the execute call may take beyond the execute API's own (backstop) timeout before
#: the plugin stops waiting for an answer.
EXEC_HTTP_SLACK = 1.0


class CallApi(Protocol):
    """Makes one API call with a deadline and retries (`calls.Caller.call`, bound to the
    sandbox and its settings by the session)."""

    def __call__(
        self,
        operation: str,
        fn: Callable[[Attempt], T],
        *,
        timeout: float,
        retry: Retry = "idempotent",
        passthrough: tuple[type[BaseException], ...] = (),
    ) -> T: ...


def _call_directly(
    operation: str,
    fn: Callable[[Attempt], T],
    *,
    timeout: float,
    retry: Retry = "idempotent",
    passthrough: tuple[type[BaseException], ...] = (),
) -> T:
    """A handle made outside a session calls the SDK as it is, once."""
    return fn(Attempt(1, timeout))
