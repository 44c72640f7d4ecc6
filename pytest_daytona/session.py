"""The sandboxes one pytest process holds, and the run's shared session sandbox.

Every process (the only one, or each xdist worker) leases and releases its own function-scoped
sandboxes, recording each lease in the run directory; a record is dropped only once its
sandbox is confirmed deleted. The session sandbox is made once per run, under the run's
``session`` lock, by whichever process needs it first; the others join it from its record.
Only the controller releases it, once, after every worker has finished, together with
whatever leases crashed workers left behind and anything else labelled with this run's id
(`finish_run`, in `run_end`). If the controller itself died, the last worker out does that
instead.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from . import lease, reuse, run_end
from .backend import Backend
from .coordination import RunDir, ci_labels
from .errors import BackendError, CoordinationError
from .handles import make_handle
from .hook_calls import Hooks
from .keep import keep as keep_sandbox
from .keep import set_policy
from .lease import Api, LeaseRecord, Scope
from .prewarm import Need, Pool, pool_key
from .releases import BackgroundDeletes, ReleaseFailure
from .sandbox import DaytonaSandbox, Workspace
from .settings import Settings
from .stats import End, RunStats
from .strays import Strays

if TYPE_CHECKING:
    import pytest
    from _pytest.cacheprovider import Cache
    from daytona import Sandbox


@dataclass
class Held:
    """A sandbox this process leased and has not released yet."""

    record: LeaseRecord
    sdk: Sandbox
    settings: Settings
    handle: DaytonaSandbox | None = None  # once a test got it
    keep: bool = False  # `pytest_daytona_keep` said so: stop it instead of deleting it


def reuse_cache_key(reuse_key: str) -> str:
    """`config.cache` key remembering the last sandbox of `reuse_key` on this machine."""
    return f"daytona/reuse/{reuse_key}"


class SandboxSession:
    """Per-process owner of the backend and of every lease, so that whatever happens (test
    failure, Ctrl-C, SIGTERM, a fixture teardown that never ran) each sandbox is released."""

    def __init__(
        self,
        settings: Settings,
        run_dir: RunDir,
        *,
        run_id: str,
        worker: str = "main",
        reuse_key: str = "default",
        backend: Backend | None = None,
    ) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.run_id = run_id
        self.worker = worker
        self.reuse_key = reuse_key
        self.backend = backend or Backend(settings)
        self.strays = Strays(self._api, settings)
        self.failures: dict[str, ReleaseFailure] = {}
        self.stats = RunStats()  # for the end-of-run summary
        self.hooks = Hooks()  # the run's hooks (`startup` sets them)
        self.run_outcome = "failed"  # the session sandbox's `before_release` outcome
        self._extra_labels = ci_labels(os.environ)
        self._held: dict[str, Held] = {}
        self.pool: Pool | None = None
        self._deletes = BackgroundDeletes(self.release)
        self._session_sdk: Sandbox | None = None  # when this process made or joined it
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    @property
    def closed(self) -> bool:
        """Whether `close` ran (the end of the run is done)."""
        return self._closed

    @property
    def records(self) -> list[LeaseRecord]:
        """Records of the sandboxes held now."""
        with self._lock:
            return [held.record for held in self._held.values()]

    def live(self) -> list[tuple[Sandbox, Settings]]:
        """The sandboxes tests of this process have now (theirs, and the session sandbox)."""
        with self._lock:
            found = [(h.sdk, h.settings) for h in self._held.values() if h.handle is not None]
        if self._session_sdk is not None:
            found.append((self._session_sdk, self.settings))
        return found

    def _api(self) -> Api:
        if self._closed:
            raise BackendError("the pytest-daytona session is closed")
        return self.backend.api()

    def _labels(self, settings: Settings, scope: Scope) -> dict[str, str]:
        labels = lease.build_labels(settings, run_id=self.run_id, worker=self.worker, scope=scope)
        return {**labels, **self._extra_labels}

    def _name(self) -> str:
        return lease.new_name(self.run_id, self.worker)

    def _record(
        self, sdk: Sandbox, settings: Settings, scope: Scope, workspace: str
    ) -> LeaseRecord:
        return LeaseRecord(
            sandbox_id=sdk.id,
            name=sdk.name,
            workspace=workspace,
            scope=scope,
            reuse=settings.reuse and scope == "session",
            run_id=self.run_id,
            worker=self.worker,
            signature=settings.signature(),
        )

    def _handle(
        self, api: Api, sdk: Sandbox, workspace: str | Workspace, settings: Settings
    ) -> DaytonaSandbox:
        return make_handle(api, sdk, workspace, settings, self.stats)

    # -- sandboxes of this process ----------------------------------------------------------

    def acquire(self, settings: Settings, *, ahead: bool = False) -> DaytonaSandbox:
        """A function-scoped sandbox for `settings`: with `ahead`, one the pool made ahead
        of need if there is one, else a new one. Its workspace is made by the first
        command's script, or through the API when its path is needed before that."""
        api = self._api()
        sdk = None
        if ahead and self.pool is not None:
            sdk = self.pool.take(pool_key(settings), settings.timeout + settings.retry_budget)
        if sdk is None:
            sdk = self._create(settings)
        workspace = Workspace(
            settings.workspace, partial(lease.realize_workspace, api, sdk, settings)
        )
        handle = self._handle(api, sdk, workspace, settings)
        set_policy(handle, settings)
        with self._lock:
            if sdk.id in self._held:
                self._held[sdk.id].handle = handle
        try:
            self.hooks.ready(handle, "function", True)
        except BaseException:
            self.release_later(sdk.id)
            raise
        return handle

    def _create(self, settings: Settings, *, retry_budget: float | None = None) -> Sandbox:
        """Create a function-scoped sandbox and record its lease."""
        api = self._api()
        labels = self._labels(settings, "function")
        made_with = settings
        if retry_budget is not None:
            made_with = settings.model_copy(update={"retry_budget": retry_budget})
        adjust = partial(self.hooks.create_params, settings)
        started = time.monotonic()
        sdk = lease.acquire(api, made_with, labels, self._name, strays=self.strays, adjust=adjust)
        self._acquired(sdk, "function", "created", started)
        record = self._record(sdk, settings, "function", "")
        with self._lock:
            self._held[sdk.id] = Held(record, sdk, settings)
        self.run_dir.add_lease(record)
        return sdk

    def plan_ahead(self, upcoming: list[Need]) -> None:
        """Tell the pool which sandboxes the next tests take (see `prewarm`)."""
        if self.settings.prewarm <= 0 or self._closed:
            return
        if self.pool is None:
            self.pool = Pool(
                # made ahead: a 429 or quota shrinks the pool at once instead of being retried
                partial(self._create, retry_budget=0.0),
                lambda sdk: self.release_later(sdk.id),
                self.settings.prewarm,
            )
        self.pool.plan(upcoming)

    def release(self, sandbox_id: str, *, final: bool = False) -> None:
        """Delete a sandbox this process acquired. Its record is dropped only once the delete
        is confirmed; a failure is kept for the end-of-run sweep and report. `final`: the
        end of the run, when even an API that stopped answering gets one more try."""
        with self._lock:
            held = self._held.get(sandbox_id)
        if held is None:
            return

        def delete() -> End:
            api = self._api().final() if final else self._api()
            if held.keep:
                return keep_sandbox(api, held.sdk, held.settings)
            lease.release(api, held.sdk, held.settings, reuse=False)
            return "deleted"

        if not self._attempt(sandbox_id, held.record.name, delete):
            return
        with self._lock:
            self._held.pop(sandbox_id, None)
        self.run_dir.remove_lease(sandbox_id)

    def release_later(self, sandbox_id: str, report: pytest.TestReport | None = None) -> None:
        """Start deleting a sandbox this process acquired, in the background: a teardown does
        not wait for it. `release_held` waits for every such delete. `report`: the test that
        used it ended so (`pytest_daytona_before_release`, `pytest_daytona_keep` are asked;
        an exception of theirs is raised once the delete is under way)."""
        with self._lock:
            held = self._held.get(sandbox_id)
        error: BaseException | None = None
        if held is not None and held.handle is not None and report is not None:
            self.stats.tested(sandbox_id, report.nodeid)
            try:
                self.hooks.before_release(held.handle, "function", report.outcome)
                held.keep = self.hooks.keep(held.handle, report)
            except Exception as exc:
                error = exc
        with self._lock:
            if sandbox_id in self._held and not self._closed:  # else released already
                self._deletes.submit(sandbox_id)
        if error is not None:
            raise error

    def wait_for_releases(self) -> None:
        """Wait for the background deletes (at most one call's deadline and retry budget);
        one still running then is reported as left behind."""
        limit = self.settings.timeout + self.settings.retry_budget + 1.0
        for sandbox_id in self._deletes.wait(limit):
            with self._lock:
                held = self._held.get(sandbox_id)
            name = held.record.name if held is not None else ""
            self._failed(sandbox_id, name, BackendError(f"delete still running after {limit:g}s"))

    def release_held(self) -> None:
        """Wait for the background deletes, then release every sandbox this process still
        holds (a teardown that never ran, a delete that failed, a sandbox made ahead that no
        test took), concurrently, each within its deadline."""
        if self.pool is not None:
            self.pool.stop(self.settings.timeout + 1.0)  # creates under way end up held
        self.wait_for_releases()
        busy = self._deletes.busy()
        ids = [record.sandbox_id for record in self.records if record.sandbox_id not in busy]
        if len(ids) <= 1:
            for sandbox_id in ids:
                self.release(sandbox_id, final=True)
            return
        with ThreadPoolExecutor(min(8, len(ids)), thread_name_prefix="pytest-daytona") as pool:
            list(pool.map(lambda sandbox_id: self.release(sandbox_id, final=True), ids))

    # -- the run's session sandbox ------------------------------------------------------------

    def session_sandbox(self, cache: Cache | None) -> DaytonaSandbox:
        """The run's one session sandbox: join it if another process made it, else make it
        (with reuse: claim the last one of this reuse key, or create one)."""
        settings = self.settings
        api = self._api()  # the SDK import and client are built before waiting for the lock
        with self.run_dir.lock("session", settings.lock_timeout):
            record = self.run_dir.read_session()
            started = time.monotonic()
            if record is not None:
                sdk = lease.resume(api, settings, record.sandbox_id)
                if sdk is not None:
                    self._session_sdk = sdk
                    self._acquired(sdk, "session", "reused", started)
                    return self._handle(api, sdk, record.workspace, settings)
            cache_key = reuse_cache_key(self.reuse_key)
            cached = cache.get(cache_key, None) if cache else None
            sdk, fresh = self._new_session_sandbox(api, cached)
            self._session_sdk = sdk
            self._acquired(sdk, "session", "created" if fresh else "resumed", started)
            record = self._record(sdk, settings, "session", "")
            self.run_dir.write_session(record)  # recorded before anything else can fail
            try:
                record.workspace = lease.realize_workspace(api, sdk, settings)
            except BaseException:
                if not record.reuse:
                    self._release_session(api, record)
                raise
            self.run_dir.write_session(record)
            handle = self._handle(api, sdk, record.workspace, settings)
            try:
                self.hooks.session_ready(api, handle, settings, fresh)
            except BaseException:  # no worker may join a sandbox not set up
                self._release_session(api, record)
                raise
            if cache is not None and settings.reuse:
                cache.set(cache_key, sdk.id)
        return handle

    def _acquired(self, sdk: Sandbox, scope: Scope, how: str, started: float) -> None:
        seconds = time.monotonic() - started
        self.stats.acquired(
            sdk.id, sdk.name, scope=scope, worker=self.worker, how=how, seconds=seconds
        )

    def _new_session_sandbox(self, api: Api, cached_id: object) -> tuple[Sandbox, bool]:
        """The session sandbox, and whether it is new (else a reused one resumed)."""
        settings = self.settings
        labels = self._labels(settings, "session")
        if settings.reuse or settings.fresh:
            remembered = cached_id if isinstance(cached_id, str) else None
            found = reuse.find_and_claim(api, settings, self.reuse_key, self.run_id, remembered)
            if found is not None:
                return found, False
        if settings.reuse:
            labels.update(
                {reuse.REUSE_KEY_LABEL: self.reuse_key, **reuse.claim_labels(self.run_id)}
            )
        adjust = partial(self.hooks.create_params, settings)
        made = lease.acquire(
            api, settings, labels, self._name, strays=self.strays, scope="session", adjust=adjust
        )
        return made, True

    # -- the end of the run ---------------------------------------------------------------------

    def finish_run(self) -> None:
        """After all workers ended (controller, or the last worker of a dead controller):
        release the session sandbox once (stop it for reuse, else delete it), every lease
        a worker left, then anything else labelled with this run's id; drop the run dir."""
        run_end.finish_run(
            self.run_dir,
            self.settings,
            self.run_id,
            self.strays,
            api=self._api,
            started=lambda: self.backend.started,
            release_session=self._end_session,
            attempt=self._attempt,
            failed=self._failed,
        )

    def _end_session(self, api: Api, record: LeaseRecord) -> None:
        """`pytest_daytona_before_release` with the run's outcome, then `_release_session`."""
        sdk = self._session_sdk
        if sdk is None or sdk.id != record.sandbox_id:  # made by a worker: look it up
            with contextlib.suppress(BackendError):  # `_release_session` reports it
                sdk = self._session_sdk = lease.get(api, self.settings, record.sandbox_id)
        if sdk is not None and sdk.id == record.sandbox_id:
            handle = self._handle(api, sdk, record.workspace, self.settings)
            self.hooks.before_release_quietly(handle, "session", self.run_outcome)
        self._release_session(api, record)

    def _release_session(self, api: Api, record: LeaseRecord) -> None:
        settings = self.settings

        def release() -> End:
            sdk = self._session_sdk
            if sdk is None or sdk.id != record.sandbox_id:  # made by a worker: look it up
                sdk = lease.get(api, settings, record.sandbox_id)
            if sdk is None:
                return "held"  # gone already
            if record.reuse:
                reuse.release(api, sdk, settings)
                return "stopped"
            lease.destroy(api, sdk, settings)
            return "deleted"

        self._attempt(record.sandbox_id, record.name, release)
        self.run_dir.forget_session()

    def _attempt(self, sandbox_id: str, name: str, release: Callable[[], object]) -> bool:
        """Run `release`; record its failure for the end-of-run report (or clear an earlier
        one), and its time and how the sandbox ended (what `release` returns, else deleted)
        for the summary. True when it succeeded."""
        started = time.monotonic()
        try:
            ended = release()
        except BackendError as exc:  # BackendCallError included
            self.stats.released_one(sandbox_id, name, "held", time.monotonic() - started)
            self._failed(sandbox_id, name, exc)
            return False
        end: End = ended if ended in ("held", "stopped", "kept") else "deleted"
        self.stats.released_one(sandbox_id, name, end, time.monotonic() - started)
        self.failures.pop(sandbox_id, None)
        return True

    def _failed(self, sandbox_id: str, name: str, exc: Exception) -> None:
        self.failures[sandbox_id] = ReleaseFailure(sandbox_id, name, str(exc))

    def controller_gone(self) -> bool:
        """In an xdist worker: whether the controller that started the run has died."""
        from .coordination import pid_alive

        owner = self.run_dir.owner_pid()
        return owner is not None and owner != os.getpid() and not pid_alive(owner)

    def leave_run(self) -> None:
        """An xdist worker's end: release what it holds; if the controller died, the last
        worker out finishes the run in its place."""
        self.strays.finish()
        self.release_held()
        if not self.run_dir.path.exists():
            return
        try:
            with self.run_dir.lock("finish", self.settings.lock_timeout):
                self.run_dir.unregister()
                if self.controller_gone() and not self.run_dir.live_processes():
                    self.finish_run()
        except (CoordinationError, OSError):
            pass

    def close(self) -> None:
        """Release every sandbox this process still holds, then close the backend."""
        if self._closed:
            return
        atexit.unregister(self.close)
        try:
            self.release_held()
        finally:
            with self._lock:
                self._closed = True
            self._deletes.shutdown()
            self.backend.close()
