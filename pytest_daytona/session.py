"""The sandboxes one pytest process holds, and the run's shared session sandbox.

Every process (the only one, or each xdist worker) leases and releases its own function-scoped
sandboxes, recording each lease in the run directory. The session sandbox is made once per run,
under the run's ``session`` lock, by whichever process needs it first; the others join it from
its record. Only the controller releases it, once, after every worker has finished, together
with whatever leases crashed workers left behind.
"""

from __future__ import annotations

import atexit
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from . import lease, reuse
from .backend import Backend, BackendError
from .coordination import RunDir, ci_labels
from .lease import LeaseRecord, SandboxWarning, Scope
from .sandbox import DaytonaSandbox
from .settings import Settings

if TYPE_CHECKING:
    from _pytest.cacheprovider import Cache
    from daytona import Daytona, Sandbox


@dataclass
class Held:
    """A sandbox this process leased and has not released yet."""

    record: LeaseRecord
    sdk: Sandbox
    settings: Settings


def reuse_cache_key(reuse_key: str) -> str:
    """`config.cache` key remembering the last sandbox of `reuse_key` on this machine."""
    return f"daytona/reuse/{reuse_key}"


class SandboxSession:
    """Per-process owner of the backend and of every lease, so that whatever happens (test
    failure, Ctrl-C, a fixture teardown that never ran) each sandbox is released once."""

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
        self._extra_labels = ci_labels(os.environ)
        self._held: dict[str, Held] = {}
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    @property
    def records(self) -> list[LeaseRecord]:
        """Records of the sandboxes held now."""
        with self._lock:
            return [held.record for held in self._held.values()]

    def _client(self) -> Daytona:
        if self._closed:
            raise BackendError("the pytest-daytona session is closed")
        return self.backend.client()

    def _labels(self, settings: Settings, scope: Scope) -> dict[str, str]:
        labels = lease.build_labels(settings, run_id=self.run_id, worker=self.worker, scope=scope)
        return {**labels, **self._extra_labels}

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

    # -- sandboxes of this process ----------------------------------------------------------

    def acquire(self, settings: Settings) -> DaytonaSandbox:
        """Create a function-scoped sandbox for `settings` and realize its workspace."""
        client = self._client()
        name = lease.new_name(self.run_id, self.worker)
        sdk = lease.acquire(client, settings, self._labels(settings, "function"), name)
        record = self._record(sdk, settings, "function", "")
        with self._lock:
            self._held[sdk.id] = Held(record, sdk, settings)
        self.run_dir.add_lease(record)
        try:
            record.workspace = lease.prepare(sdk, settings)
        except BaseException:
            self._forget(sdk.id)
            raise
        return DaytonaSandbox(sdk, record.workspace, default_timeout=settings.timeout)

    def release(self, sandbox_id: str) -> None:
        """Release (delete) a sandbox this process acquired."""
        held = self._forget(sandbox_id)
        if held is not None:
            lease.release(held.sdk, held.settings, reuse=False)

    def _forget(self, sandbox_id: str) -> Held | None:
        with self._lock:
            held = self._held.pop(sandbox_id, None)
        self.run_dir.remove_lease(sandbox_id)
        return held

    # -- the run's session sandbox ------------------------------------------------------------

    def session_sandbox(self, cache: Cache | None) -> DaytonaSandbox:
        """The run's one session sandbox: join it if another process made it, else make it
        (with reuse: claim the last one of this reuse key, or create one)."""
        settings = self.settings
        with self.run_dir.lock("session", settings.lock_timeout):
            client = self._client()
            record = self.run_dir.read_session()
            if record is not None:
                sdk = lease.resume(client, settings, record.sandbox_id)
                if sdk is not None:
                    return DaytonaSandbox(sdk, record.workspace, default_timeout=settings.timeout)
            cache_key = reuse_cache_key(self.reuse_key)
            sdk = self._new_session_sandbox(client, cache.get(cache_key, None) if cache else None)
            record = self._record(sdk, settings, "session", lease.prepare(sdk, settings))
            self.run_dir.write_session(record)
            if cache is not None and settings.reuse:
                cache.set(cache_key, sdk.id)
        return DaytonaSandbox(sdk, record.workspace, default_timeout=settings.timeout)

    def _new_session_sandbox(self, client: Daytona, cached_id: object) -> Sandbox:
        settings = self.settings
        labels = self._labels(settings, "session")
        if settings.reuse or settings.fresh:
            remembered = cached_id if isinstance(cached_id, str) else None
            found = reuse.find_and_claim(client, settings, self.reuse_key, self.run_id, remembered)
            if found is not None:
                return found
        if settings.reuse:
            labels.update(
                {reuse.REUSE_KEY_LABEL: self.reuse_key, **reuse.claim_labels(self.run_id)}
            )
        return lease.acquire(client, settings, labels, lease.new_name(self.run_id, self.worker))

    def finish_run(self) -> None:
        """Controller only, after all workers ended: release the session sandbox once (stop it
        for reuse, else delete it) and every lease a crashed worker left; drop the run dir."""
        try:
            record = self.run_dir.read_session()
            leftovers = self.run_dir.leftover_leases()
            if record is not None or leftovers:
                client = self._client()
                if record is not None:
                    self._release_session(client, record)
                for left in leftovers:
                    destroy = partial(lease.destroy_by_id, client, self.settings, left.sandbox_id)
                    self._guard(left.sandbox_id, destroy)
        finally:
            self.run_dir.remove()

    def _release_session(self, client: Daytona, record: LeaseRecord) -> None:
        from daytona import DaytonaNotFoundError

        def release() -> None:
            try:
                sdk = client.get(record.sandbox_id)
            except DaytonaNotFoundError:
                return
            if record.reuse:
                reuse.release(sdk, self.settings)
            else:
                lease.destroy(sdk, self.settings)

        self._guard(record.sandbox_id, release)
        self.run_dir.forget_session()

    @staticmethod
    def _guard(sandbox_id: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # one failed release must not strand the others
            warnings.warn(
                SandboxWarning(f"could not release sandbox {sandbox_id}: {exc}"), stacklevel=3
            )

    def release_held(self) -> None:
        """Release every sandbox this process still holds (a teardown that never ran)."""
        for record in self.records:
            self._guard(record.sandbox_id, partial(self.release, record.sandbox_id))

    def close(self) -> None:
        """Release every sandbox this process still holds, then close the backend."""
        if self._closed:
            return
        atexit.unregister(self.close)
        try:
            self.release_held()
        finally:
            self._closed = True
            self.backend.close()
