"""The sandbox handle of the async fixtures: `DaytonaSandbox`'s API in async form.

It wraps the same sandbox as a sync handle (`sync`), which got it from the same lease as the
sync fixtures, and plans each command the same way (`run_plan`, the same executor script);
the calls themselves go through `daytona.AsyncDaytona` in the test's event loop, with the
same deadlines, retries and short errors (`async_calls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from ..api.calls import Attempt, Retry
from ..results import ExecResult
from .command_log import CommandLog
from .run_plan import Stdin, upload_payload
from .sandbox import EXEC_HTTP_SLACK, RUN_OPERATION, DaytonaSandbox

if TYPE_CHECKING:
    from daytona import AsyncSandbox, ExecuteResponse

T = TypeVar("T")


class AsyncCallApi(Protocol):
    """Makes one API call with a deadline and retries (`async_calls.call_async`, bound to the
    sandbox and its settings by the fixture)."""

    def __call__(
        self,
        operation: str,
        fn: Callable[[Attempt], Awaitable[T]],
        *,
        timeout: float,
        retry: Retry = "idempotent",
        passthrough: tuple[type[BaseException], ...] = (),
    ) -> Awaitable[T]: ...


class AsyncDaytonaSandbox:
    """A Daytona sandbox leased for an async test: ``await sandbox.run(...)`` and friends.

    The same API as `DaytonaSandbox`, with its I/O methods as coroutines. Relative remote paths
    are relative to :attr:`workspace`. Everything the async SDK offers beyond this is on
    ``await sandbox.sdk()`` (a `daytona.AsyncSandbox` of the running event loop); :attr:`sync`
    is the sync handle of the same sandbox (what the plugin's hooks get).
    """

    def __init__(
        self,
        sync: DaytonaSandbox,
        connect: Callable[[], Awaitable[AsyncSandbox]],
        call: AsyncCallApi,
    ) -> None:
        self._sync = sync
        self._connect = connect
        self._call = call
        self._bound: tuple[asyncio.AbstractEventLoop, asyncio.Future[AsyncSandbox]] | None = None

    def __repr__(self) -> str:
        return f"<AsyncDaytonaSandbox {self.name} id={self.id} workspace={self.workspace}>"

    @property
    def sync(self) -> DaytonaSandbox:
        """The sync handle of this sandbox (for sync code, e.g. hook implementations)."""
        return self._sync

    @property
    def id(self) -> str:
        """The sandbox id."""
        return self._sync.id

    @property
    def name(self) -> str:
        """The sandbox name."""
        return self._sync.name

    @property
    def workspace(self) -> str:
        """Absolute remote path of the working directory commands start in."""
        return self._sync.workspace

    @property
    def command_log(self) -> CommandLog:
        """The last commands run here, by this handle or its sync one (for failure reports)."""
        return self._sync.command_log

    def path(self, remote_path: str) -> str:
        """`remote_path` made absolute against :attr:`workspace`."""
        return self._sync.path(remote_path)

    async def sdk(self) -> AsyncSandbox:
        """The underlying `daytona.AsyncSandbox`, bound to the running event loop."""
        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            # One lookup for all the calls that start at once (e.g. under `asyncio.gather`).
            self._bound = (loop, asyncio.ensure_future(self._connect()))
        bound = self._bound[1]
        try:
            return await asyncio.shield(bound)
        except BaseException:
            if bound.done() and self._bound is not None and self._bound[1] is bound:
                self._bound = None  # failed: the next call tries again
            raise

    async def run(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: Stdin | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> ExecResult:
        """Run `command` in a login shell in the sandbox: `DaytonaSandbox.run`, awaited.

        The same arguments, script, deadline and result; with ``check=True`` a failure
        raises `CommandError`."""
        __tracebackhide__ = True
        from daytona import DaytonaTimeoutError

        plan = self._sync._plan(command, cwd=cwd, env=env, stdin=stdin, timeout=timeout)
        started = time.monotonic()
        removed = False
        try:
            if plan.stdin_path is not None and plan.stdin is not None:
                await self._upload("upload stdin to", plan.stdin, plan.stdin_path)
            response = await self._exec(plan.command, plan.env, plan.backstop)
            removed = True  # the script removed the stdin file itself
            output = response.result or ""
            result = self._sync._answered(plan, output, response.exit_code, started)
        except DaytonaTimeoutError as exc:
            result = plan.backstop_fired(exc, time.monotonic() - started)
        finally:
            if plan.stdin_path is not None and not removed:
                await self._remove_quietly(plan.stdin_path)
        self.command_log.add(result, cwd)
        return result.check() if check else result

    async def _exec(self, command: str, env: dict[str, str], timeout: int) -> ExecuteResponse:
        """The one execute call of a `run` (retried as the sync handle's `_exec` is)."""
        __tracebackhide__ = True
        from daytona import DaytonaProcessExecutionTimeoutError

        sdk = await self.sdk()
        return await self._call(
            RUN_OPERATION,
            lambda _: sdk.process.exec(command, env=env, timeout=timeout),
            timeout=timeout + EXEC_HTTP_SLACK,
            retry="unsent",
            passthrough=(DaytonaProcessExecutionTimeoutError,),
        )

    async def _upload(self, operation: str, payload: bytes, target: str) -> None:
        sdk = await self.sdk()
        await self._call(
            operation,
            lambda a: sdk.fs.upload_file(payload, target, timeout=math.ceil(a.limit)),
            timeout=self._sync.default_timeout,
        )

    async def _remove_quietly(self, remote_path: str) -> None:
        # Best effort: the file lives in the plugin's scratch dir of a sandbox about to go.
        with contextlib.suppress(Exception):
            await (await self.sdk()).fs.delete_file(remote_path)

    async def upload(self, data: bytes | str | os.PathLike[str], remote_path: str) -> str:
        """Write `data` (bytes, text, or the contents of a local file given as a path object)
        to `remote_path`, creating parent directories; returns the absolute remote path."""
        target = self.path(remote_path)
        await self._upload("upload to", upload_payload(data), target)
        return target

    async def download(self, remote_path: str) -> bytes:
        """The contents of remote file `remote_path`."""
        source = self.path(remote_path)
        sdk = await self.sdk()
        data = await self._call(
            "download from",
            lambda a: sdk.fs.download_file(source, math.ceil(a.limit)),
            timeout=self._sync.default_timeout,
        )
        return bytes(data)

    async def read_text(self, remote_path: str, encoding: str = "utf-8") -> str:
        """The contents of remote file `remote_path`, decoded."""
        return (await self.download(remote_path)).decode(encoding)

    async def write_text(self, remote_path: str, text: str, encoding: str = "utf-8") -> str:
        """Write `text` to remote file `remote_path`; returns the absolute remote path."""
        return await self.upload(text.encode(encoding), remote_path)
