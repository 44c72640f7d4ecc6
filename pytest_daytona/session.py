"""The sandboxes one pytest process holds: leasing them, keeping their records, releasing them."""

from __future__ import annotations

import atexit
import threading
import uuid
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import lease
from .backend import Backend, BackendError
from .lease import LeaseRecord, SandboxWarning, Scope
from .sandbox import DaytonaSandbox
from .settings import Settings

if TYPE_CHECKING:
    from daytona import Daytona, Sandbox


@dataclass
class Held:
    """A sandbox this process leased and has not released yet."""

    record: LeaseRecord
    sdk: Sandbox
    settings: Settings


class SandboxSession:
    """Per-process owner of the backend and of every lease, so that whatever happens (test
    failure, Ctrl-C, a fixture teardown that never ran) each sandbox is released once."""

    def __init__(self, settings: Settings, *, run_id: str | None = None, worker: str = "main"):
        self.settings = settings
        self.run_id = run_id or uuid.uuid4().hex
        self.worker = worker
        self.backend = Backend(settings)
        self._held: dict[str, Held] = {}
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    @property
    def records(self) -> list[LeaseRecord]:
        """Records of the sandboxes held now."""
        with self._lock:
            return [held.record for held in self._held.values()]

    def acquire(self, settings: Settings, scope: Scope) -> DaytonaSandbox:
        """Create a sandbox for `settings` and realize its workspace."""
        client = self._client()
        labels = lease.build_labels(settings, run_id=self.run_id, worker=self.worker, scope=scope)
        name = lease.new_name(self.run_id, self.worker)
        return self._hold(lease.acquire(client, settings, labels, name), settings, scope)

    def resume_or_acquire(
        self, settings: Settings, scope: Scope, previous: LeaseRecord | None
    ) -> DaytonaSandbox:
        """Resume the sandbox of `previous` when it still exists and was made with the same
        settings; otherwise destroy it (if made differently) and acquire a new one."""
        if previous is not None:
            client = self._client()
            if previous.signature == settings.signature():
                sdk = lease.resume(client, settings, previous.sandbox_id)
                if sdk is not None:
                    return self._hold(sdk, settings, scope)
            else:
                lease.destroy_by_id(client, settings, previous.sandbox_id)
        return self.acquire(settings, scope)

    def _client(self) -> Daytona:
        if self._closed:
            raise BackendError("the pytest-daytona session is closed")
        return self.backend.client()

    def _hold(self, sdk: Sandbox, settings: Settings, scope: Scope) -> DaytonaSandbox:
        """Track a started sandbox, then realize its workspace (deleting it if that fails)."""
        record = LeaseRecord(
            sandbox_id=sdk.id,
            name=sdk.name,
            workspace="",
            scope=scope,
            reuse=settings.reuse and scope == "session",
            run_id=self.run_id,
            worker=self.worker,
            signature=settings.signature(),
        )
        with self._lock:
            self._held[sdk.id] = Held(record, sdk, settings)
        try:
            record.workspace = lease.prepare(sdk, settings)
        except BaseException:
            with self._lock:
                self._held.pop(sdk.id, None)
            raise
        return DaytonaSandbox(sdk, record.workspace, default_timeout=settings.timeout)

    def record(self, sandbox_id: str) -> LeaseRecord | None:
        """The record of a held sandbox."""
        with self._lock:
            held = self._held.get(sandbox_id)
        return held.record if held is not None else None

    def release(self, sandbox_id: str) -> None:
        """Release a held sandbox: stop it when it is to be reused, else delete it."""
        with self._lock:
            held = self._held.pop(sandbox_id, None)
        if held is not None:
            lease.release(held.sdk, held.settings, reuse=held.record.reuse)

    def close(self) -> None:
        """Release every sandbox still held, then close the backend (idempotent)."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            for record in self.records:
                try:
                    self.release(record.sandbox_id)
                except Exception as exc:  # one failed release must not strand the others
                    warnings.warn(
                        SandboxWarning(f"could not release sandbox {record.sandbox_id}: {exc}"),
                        stacklevel=2,
                    )
        finally:
            self.backend.close()
