"""Starting and stopping the embedded server: in a background thread, or in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import filelock
from aiohttp import web

from .app import build_app, stats
from .builds.builder import Builder
from .context import LocalContext
from .control import Control, ErrorStateRule, FaultRule, LatencyRule
from .images import ImageStore
from .images.options import ImageOptions
from .lifecycle import Lifecycle
from .sandboxes.agents import Agents
from .sandboxes.cgroups import CgroupTree
from .sandboxes.options import SandboxOptions
from .sandboxes.overlay import overlay_works
from .sandboxes.runner import IsolationMode, Runner, choose_bwrap
from .state.store import Store

log = logging.getLogger("pytest_daytona.local")

T = TypeVar("T")

NO_ISOLATION_NOTICE = (
    "pytest-daytona local server: {why}, so sandbox commands run as plain local processes "
    "with NO isolation from this machine{fix}. Do not run untrusted code this way: it can "
    "read and change everything this machine's user can, secrets included, and reach any "
    "network. What differs: commands run as this machine's user (not 'daytona') and see "
    "its whole file system, processes and /tmp (TMPDIR is the sandbox's own); the work dir "
    "is a host directory (not /home/daytona); file-API paths are confined to the sandbox's "
    "home and tmp; volumes are not mounted; a sandbox with network_block_all or "
    "network_allow_list cannot be enforced, so its toolbox calls answer 400. Stop and "
    "delete still end every process a sandbox started."
)


class DataDirBusyError(RuntimeError):
    """Another running server uses the data dir (two would corrupt each other's state)."""


class LocalServer:
    """The embedded Daytona-compatible server.

    Use it as a context manager or call :meth:`start` / :meth:`stop`; it serves from a
    background thread. Point the SDK at :attr:`api_url` with :attr:`token` as the API key.
    Without `data_dir` it keeps its sandboxes in a temporary directory removed on stop;
    with one, sandboxes survive restarts on that directory.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        transition_delay: float = 0.0,
        isolation: IsolationMode = "auto",
        minute: float = 60.0,
        reaper_tick: float = 1.0,
        default_exec_timeout: float | None = None,
        default_registry: str | None = None,
        insecure_registries: Sequence[str] | None = None,
        default_image: str | None = None,
        share_host_paths: Sequence[str] | None = None,
        max_processes: int | None = None,
    ) -> None:
        self._ephemeral = data_dir is None
        self.data_dir = (
            Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="pytest-daytona-"))
        )
        self.host = host
        self.port = port
        self.token = token or secrets.token_urlsafe(32)
        self.transition_delay = transition_delay
        self.isolation: IsolationMode = isolation
        self.minute = minute
        self.reaper_tick = reaper_tick
        self.default_exec_timeout = default_exec_timeout
        self.images = ImageOptions.resolve(default_registry, insecure_registries, default_image)
        self.sandbox_options = SandboxOptions.resolve(share_host_paths, max_processes)
        self.api_url = ""
        self._ctx: LocalContext | None = None
        self._runner: web.AppRunner | None = None
        self._sio: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._dir_lock: filelock.BaseFileLock | None = None

    def __repr__(self) -> str:
        return f"LocalServer(api_url={self.api_url!r}, data_dir={str(self.data_dir)!r})"

    @property
    def env(self) -> dict[str, str]:
        """``DAYTONA_API_URL`` and ``DAYTONA_API_KEY`` for a client of this server."""
        return {"DAYTONA_API_URL": self.api_url, "DAYTONA_API_KEY": self.token}

    @property
    def isolated(self) -> bool:
        """Whether sandbox commands run under bubblewrap."""
        return self._ctx is not None and self._ctx.agents.isolated

    # -- async core, shared by the thread API and `serve` ---------------------------------

    async def start_async(self) -> None:
        """Bind, start serving and start the reaper (in the running loop)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        dir_lock = filelock.FileLock(self.data_dir / ".server.lock")
        try:
            dir_lock.acquire(timeout=0)
        except filelock.Timeout:
            raise DataDirBusyError(
                f"the local server data dir {self.data_dir} is in use by another server"
            ) from None
        self._dir_lock = dir_lock
        bwrap = choose_bwrap(self.isolation)
        if bwrap is None:
            if self.isolation == "none":
                why, fix = "isolation 'none' was chosen", ""
            else:
                why, fix = "bubblewrap (bwrap) is not available", " (install bubblewrap to isolate)"
            log.warning(NO_ISOLATION_NOTICE.format(why=why, fix=fix))
        store = Store(self.data_dir)
        runner = Runner(
            bwrap,
            hidden=(self.data_dir.resolve(),),
            etc=self.data_dir / ".etc",
            shared=self.sandbox_options.shared,
        )
        runner.images_supported = bwrap is not None and overlay_works(bwrap)
        log.info(self.images.notice(runner.images_supported))
        image_store = ImageStore(
            self.data_dir / "images",
            insecure_registries=self.images.insecure_registries,
            default_registry=self.images.default_registry,
        )
        builder = Builder(
            image_store,
            self.data_dir / "builds",
            bwrap=bwrap if runner.images_supported else None,
            contexts=lambda hashes: ctx.lifecycle.snapshots.contexts(hashes),
        )
        sio_holder: list[Any] = []

        async def emit(event: str, data: dict[str, Any]) -> None:
            if event == "sandbox.state.updated":
                ctx.follow_state(data["sandbox"]["id"], data["newState"])
            if sio_holder:
                await sio_holder[0].emit(event, data)

        ctx = LocalContext(
            lifecycle=Lifecycle(
                store,
                emit,
                lambda: ctx.toolbox_url(),
                transition_delay=self.transition_delay,
                minute=self.minute,
                halt=lambda sandbox_id: ctx.agents.stop(sandbox_id),
                builder=builder,
                default_image=self.images.default_image,
            ),
            agents=Agents(runner, CgroupTree.make()),
            control=Control(),
            token=self.token,
            default_exec_timeout=self.default_exec_timeout,
            max_processes=self.sandbox_options.max_processes,
        )
        app, sio = build_app(ctx)
        sio_holder.append(sio)
        app_runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await app_runner.setup()
        site = web.TCPSite(app_runner, self.host, self.port)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.api_url = ctx.api_url = f"http://{host}:{self.port}/api"
        ctx.lifecycle.start_reaper(self.reaper_tick)
        self._ctx, self._runner, self._sio = ctx, app_runner, sio

    async def stop_async(self) -> None:
        """Stop serving, settle late completions and pending transitions, close connections."""
        if self._ctx is not None:
            await self._ctx.late.close()
            await self._ctx.lifecycle.close()
            await self._ctx.agents.close()
        if self._sio is not None:
            with contextlib.suppress(Exception):
                await self._sio.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
        self._ctx = self._runner = self._sio = None
        if self._dir_lock is not None:
            self._dir_lock.release()
            self._dir_lock = None
        if self._ephemeral:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- background thread API -------------------------------------------------------------

    def start(self) -> LocalServer:
        """Serve from a daemon thread; returns once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        loop = asyncio.new_event_loop()
        ready: Future[None] = Future()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="pytest-daytona-local", daemon=True)
        self._thread.start()
        try:
            ready.result(timeout=30)
        except BaseException:
            self._thread.join(timeout=5)
            self._thread = self._loop = None
            raise
        return self

    def stop(self) -> None:
        """Stop the background server (idempotent)."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = self._loop = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("server is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def _require_ctx(self) -> LocalContext:
        if self._ctx is None:
            raise RuntimeError("server is not running")
        return self._ctx

    # -- counters and fault injection (also reachable over HTTP under /_local) -------------

    def stats(self) -> dict[str, Any]:
        """Same JSON as ``GET /_local/stats``."""
        ctx = self._require_ctx()

        async def read() -> dict[str, Any]:
            return stats(ctx)

        return self._call(read())

    def inject_fault(
        self,
        route: str,
        status: int,
        count: int = 1,
        *,
        complete_after: float | None = None,
        **extra: Any,
    ) -> None:
        """Make the next `count` calls of `route` (e.g. ``"POST /sandbox"``) answer `status`.

        With `complete_after` each such call is still carried out that many seconds later
        (a gateway timed out, the API behind it did the work). `extra`: other `FaultRule`
        fields (`message`, `retry_after`).
        """
        ctx = self._require_ctx()
        rule = FaultRule(
            route=route, status=status, count=count, complete_after=complete_after, **extra
        )

        async def add() -> None:
            ctx.control.faults.append(rule)

        self._call(add())

    def set_latency(self, route: str, seconds: float) -> None:
        """Delay every call of `route` (``"*"``: of every route without a delay of its own) by
        `seconds`, at most 120 (0 removes the delay)."""
        ctx = self._require_ctx()
        rule = LatencyRule(route=route, seconds=seconds)

        async def apply() -> None:
            ctx.control.set_latency(rule)

        self._call(apply())

    def force_error(
        self, sandbox_id: str, *, recoverable: bool, reason: str = "injected error"
    ) -> None:
        """Push a sandbox into the ``error`` state."""
        ctx = self._require_ctx()
        rule = ErrorStateRule(recoverable=recoverable, reason=reason)

        async def fail() -> None:
            record = ctx.lifecycle.lookup(sandbox_id)
            await ctx.lifecycle.fail(record, reason=rule.reason, recoverable=rule.recoverable)

        self._call(fail())


def serve_forever(server: LocalServer) -> None:
    """Run `server` in the foreground until SIGINT or SIGTERM; print how to reach it first."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.start_async()
        try:
            for key, value in server.env.items():
                print(f"{key}={value}")
            sys.stdout.flush()
            await stop.wait()
        finally:
            await server.stop_async()

    asyncio.run(main())
