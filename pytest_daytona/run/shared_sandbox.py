"""The run's one session sandbox (``daytona_session_sandbox``), shared by every xdist worker.

It is made once per run, under the run directory's ``session`` lock, by whichever process
needs it first; the others join it from its record. With reuse it is the last one of this
reuse key (claimed, resumed), else a new one. Only the controller releases it, once, after
every worker has finished (`run_end.finish_run` calls `SharedSandbox.end`); if the
controller itself died, the last worker out does that instead.
"""

from __future__ import annotations

import contextlib
import time
from functools import partial
from typing import TYPE_CHECKING

from ..api.client import Api
from ..errors import BackendError
from ..handle.sandbox import DaytonaSandbox
from ..leases import lease, reuse
from ..leases.lease import LeaseRecord
from .process_context import ProcessContext
from .stats import End

if TYPE_CHECKING:
    from _pytest.cacheprovider import Cache
    from daytona import Sandbox


def reuse_cache_key(reuse_key: str) -> str:
    """`config.cache` key remembering the last sandbox of `reuse_key` on this machine."""
    return f"daytona/reuse/{reuse_key}"


class SharedSandbox:
    """This process's way to the run's session sandbox: join or make it, and at the end of the
    run release it."""

    def __init__(self, context: ProcessContext) -> None:
        self._context = context
        self.sdk: Sandbox | None = None  # when this process made or joined it

    def get(self, cache: Cache | None) -> DaytonaSandbox:
        """The run's one session sandbox: join it if another process made it, else make it
        (with reuse: claim the last one of this reuse key, or create one)."""
        context = self._context
        settings = context.settings
        api = context.api()  # the SDK import and client are built before waiting for the lock
        with context.run_dir.lock("session", settings.lock_timeout):
            record = context.run_dir.read_session()
            started = time.monotonic()
            if record is not None:
                sdk = lease.resume(api, settings, record.sandbox_id)
                if sdk is not None:
                    self.sdk = sdk
                    context.acquired(sdk, "session", "reused", started)
                    return context.handle(api, sdk, record.workspace, settings)
            cache_key = reuse_cache_key(context.reuse_key)
            cached = cache.get(cache_key, None) if cache else None
            sdk, fresh = self._new(api, cached)
            self.sdk = sdk
            context.acquired(sdk, "session", "created" if fresh else "resumed", started)
            record = context.record(sdk, settings, "session", "")
            context.run_dir.write_session(record)  # recorded before anything else can fail
            try:
                record.workspace = lease.realize_workspace(api, sdk, settings)
            except BaseException:
                if not record.reuse:
                    self.release(api, record)
                raise
            context.run_dir.write_session(record)
            handle = context.handle(api, sdk, record.workspace, settings)
            try:
                context.hooks.session_ready(api, handle, settings, fresh)
            except BaseException:  # no worker may join a sandbox not set up
                self.release(api, record)
                raise
            if cache is not None and settings.reuse:
                cache.set(cache_key, sdk.id)
        return handle

    def _new(self, api: Api, cached_id: object) -> tuple[Sandbox, bool]:
        """The session sandbox, and whether it is new (else a reused one resumed)."""
        context = self._context
        settings = context.settings
        reuse_key, run_id = context.reuse_key, context.run_id
        labels = context.labels(settings, "session")
        if settings.reuse or settings.fresh:
            remembered = cached_id if isinstance(cached_id, str) else None
            found = reuse.find_and_claim(api, settings, reuse_key, run_id, remembered)
            if found is not None:
                return found, False
        if settings.reuse:
            labels.update({reuse.REUSE_KEY_LABEL: reuse_key, **reuse.claim_labels(run_id)})
        adjust = partial(context.hooks.create_params, settings)
        made = lease.acquire(
            api,
            settings,
            labels,
            context.name,
            strays=context.strays,
            scope="session",
            adjust=adjust,
        )
        return made, True

    def end(self, api: Api, record: LeaseRecord, outcome: str) -> None:
        """`pytest_daytona_before_release` with the run's `outcome`, then `release`."""
        context = self._context
        sdk = self.sdk
        if sdk is None or sdk.id != record.sandbox_id:  # made by a worker: look it up
            with contextlib.suppress(BackendError):  # `release` reports it
                sdk = self.sdk = lease.get(api, context.settings, record.sandbox_id)
        if sdk is not None and sdk.id == record.sandbox_id:
            handle = context.handle(api, sdk, record.workspace, context.settings)
            context.hooks.before_release_quietly(handle, "session", outcome)
        self.release(api, record)

    def release(self, api: Api, record: LeaseRecord) -> None:
        """Stop the session sandbox of `record` for reuse, else delete it; forget its record."""
        context = self._context
        settings = context.settings

        def release() -> End:
            sdk = self.sdk
            if sdk is None or sdk.id != record.sandbox_id:  # made by a worker: look it up
                sdk = lease.get(api, settings, record.sandbox_id)
            if sdk is None:
                return "held"  # gone already
            if record.reuse:
                reuse.release(api, sdk, settings)
                return "stopped"
            lease.destroy(api, sdk, settings)
            return "deleted"

        context.attempt(record.sandbox_id, record.name, release)
        context.run_dir.forget_session()
