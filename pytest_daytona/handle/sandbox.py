"""The sandbox handle the fixtures yield, and the one path every command takes (`run`)."""

from __future__ import annotations

import contextlib
import math
import os
import posixpath
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from ..api.calls import Attempt, Retry
from ..results import ExecResult
from .command_log import CommandLog
from .run_plan import RunPlan, Stdin, plan_run, upload_payload

if TYPE_CHECKING:
    from daytona import ExecuteResponse, Sandbox


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
    def default_timeout(self) -> float:
        """Seconds a command or file transfer may take when `run` is given no ``timeout``."""
        return self._default_timeout

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

        plan = self._plan(command, cwd=cwd, env=env, stdin=stdin, timeout=timeout)
        started = time.monotonic()
        removed = False
        try:
            if plan.stdin_path is not None and plan.stdin is not None:
                self._upload_stdin(plan.stdin, plan.stdin_path)
            response = self._exec(plan.command, plan.env, plan.backstop)
            removed = True  # the script removed the stdin file itself
            result = self._answered(plan, response.result or "", response.exit_code, started)
        except DaytonaTimeoutError as exc:
            result = plan.backstop_fired(exc, time.monotonic() - started)
        finally:
            if plan.stdin_path is not None and not removed:
                self._remove_quietly(plan.stdin_path)
        self._log.add(result, cwd)
        return result.check() if check else result

    def _plan(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | None,
        env: Mapping[str, str] | None,
        stdin: Stdin | None,
        timeout: float | None,
    ) -> RunPlan:
        """Plan one `run`: a workspace not made yet is made by its script (no extra call)."""
        return plan_run(
            command,
            cwd=cwd,
            env=env,
            stdin=stdin,
            timeout=timeout,
            default_timeout=self._default_timeout,
            workspace=self._workspace,
            pending=self._pending.name if self._pending is not None else None,
            realize=lambda: self.workspace,
        )

    def _answered(
        self, plan: RunPlan, output: str, exit_code: int | None, started: float
    ) -> ExecResult:
        """The result of an execute call's answer; notes the workspace its script made."""
        made = plan.workspace(output)
        if made is not None and self._workspace is None:
            self._workspace = made
        return plan.result(output, exit_code, time.monotonic() - started)

    def _exec(self, command: str, env: dict[str, str], timeout: int) -> ExecuteResponse:
        """Send one command to the sandbox's execute API (the only place that does).

        Retried only where the answer proves the command did not run (429, 503, a refused
        connection); the execute API's own timeout (408) is passed on as it is."""
        __tracebackhide__ = True
        from daytona import DaytonaProcessExecutionTimeoutError

        return self._call(
            RUN_OPERATION,
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
        payload = upload_payload(data)
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


T = TypeVar("T")
#: The operation name of the execute call (the session counts these calls as commands).
RUN_OPERATION = "run a command in"
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
