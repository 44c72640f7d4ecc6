"""The function-scoped sandboxes this pytest process leases and releases.

Every process (the only one, or each xdist worker) leases its own, made when a test needs
one or ahead of need by the `prewarm` pool, and records each lease in the run directory; a
record is dropped only once its sandbox is confirmed deleted. A test's teardown starts the
delete in the background; the end of the process waits for those deletes and releases
whatever is still held.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from ..config.settings import Settings
from ..errors import BackendError
from ..handle.sandbox import DaytonaSandbox, Workspace
from ..leases import lease
from ..leases.background_deletes import BackgroundDeletes
from ..leases.keep import keep as keep_sandbox
from ..leases.keep import set_policy
from ..leases.lease import LeaseRecord
from ..leases.prewarm import Need, Pool, pool_key
from .process_context import ProcessContext
from .stats import End

if TYPE_CHECKING:
    import pytest
    from daytona import Sandbox


@dataclass
class Held:
    """A sandbox this process leased and has not released yet."""

    record: LeaseRecord
    sdk: Sandbox
    settings: Settings
    handle: DaytonaSandbox | None = None  # once a test got it
    keep: bool = False  # `pytest_daytona_keep` said so: stop it instead of deleting it


class ProcessSandboxes:
    """The function-scoped sandboxes of one process: lease, make ahead, release."""

    def __init__(self, context: ProcessContext) -> None:
        self._context = context
        self._held: dict[str, Held] = {}
        self.pool: Pool | None = None
        self._deletes = BackgroundDeletes(self.release)
        self._lock = threading.Lock()

    @property
    def records(self) -> list[LeaseRecord]:
        """Records of the sandboxes held now."""
        with self._lock:
            return [held.record for held in self._held.values()]

    def live(self) -> list[tuple[Sandbox, Settings]]:
        """The sandboxes held now that a test got."""
        with self._lock:
            return [(h.sdk, h.settings) for h in self._held.values() if h.handle is not None]

    def acquire(self, settings: Settings, *, ahead: bool = False) -> DaytonaSandbox:
        """A function-scoped sandbox for `settings`: with `ahead`, one the pool made ahead
        of need if there is one, else a new one. Its workspace is made by the first
        command's script, or through the API when its path is needed before that."""
        context = self._context
        api = context.api()
        sdk = None
        if ahead and self.pool is not None:
            sdk = self.pool.take(pool_key(settings), settings.timeout + settings.retry_budget)
        if sdk is None:
            sdk = self._create(settings)
        workspace = Workspace(
            settings.workspace, partial(lease.realize_workspace, api, sdk, settings)
        )
        handle = context.handle(api, sdk, workspace, settings)
        set_policy(handle, settings)
        with self._lock:
            if sdk.id in self._held:
                self._held[sdk.id].handle = handle
        try:
            context.hooks.ready(handle, "function", True)
        except BaseException:
            self.release_later(sdk.id)
            raise
        return handle

    def _create(self, settings: Settings, *, retry_budget: float | None = None) -> Sandbox:
        """Create a function-scoped sandbox and record its lease."""
        context = self._context
        api = context.api()
        labels = context.labels(settings, "function")
        made_with = settings
        if retry_budget is not None:
            made_with = settings.model_copy(update={"retry_budget": retry_budget})
        adjust = partial(context.hooks.create_params, settings)
        started = time.monotonic()
        sdk = lease.acquire(
            api, made_with, labels, context.name, strays=context.strays, adjust=adjust
        )
        context.acquired(sdk, "function", "created", started)
        record = context.record(sdk, settings, "function", "")
        with self._lock:
            self._held[sdk.id] = Held(record, sdk, settings)
        context.run_dir.add_lease(record)
        return sdk

    def plan_ahead(self, upcoming: list[Need]) -> None:
        """Tell the pool which sandboxes the next tests take (see `prewarm`)."""
        settings = self._context.settings
        if settings.prewarm <= 0 or self._context.closed:
            return
        if self.pool is None:
            self.pool = Pool(
                # made ahead: a 429 or quota shrinks the pool at once instead of being retried
                partial(self._create, retry_budget=0.0),
                lambda sdk: self.release_later(sdk.id),
                settings.prewarm,
            )
        self.pool.plan(upcoming)

    def release(self, sandbox_id: str, *, final: bool = False) -> None:
        """Delete a sandbox this process acquired. Its record is dropped only once the delete
        is confirmed; a failure is kept for the end-of-run sweep and report. `final`: the
        end of the run, when even an API that stopped answering gets one more try."""
        context = self._context
        with self._lock:
            held = self._held.get(sandbox_id)
        if held is None:
            return

        def delete() -> End:
            api = context.api().final() if final else context.api()
            if held.keep:
                return keep_sandbox(api, held.sdk, held.settings)
            lease.release(api, held.sdk, held.settings, reuse=False)
            return "deleted"

        if not context.attempt(sandbox_id, held.record.name, delete):
            return
        with self._lock:
            self._held.pop(sandbox_id, None)
        context.run_dir.remove_lease(sandbox_id)

    def release_later(self, sandbox_id: str, report: pytest.TestReport | None = None) -> None:
        """Start deleting a sandbox this process acquired, in the background: a teardown does
        not wait for it. `release_held` waits for every such delete. `report`: the test that
        used it ended so (`pytest_daytona_before_release`, `pytest_daytona_keep` are asked;
        an exception of theirs is raised once the delete is under way)."""
        context = self._context
        with self._lock:
            held = self._held.get(sandbox_id)
        error: BaseException | None = None
        if held is not None and held.handle is not None and report is not None:
            context.stats.tested(sandbox_id, report.nodeid)
            try:
                context.hooks.before_release(held.handle, "function", report.outcome)
                held.keep = context.hooks.keep(held.handle, report)
            except Exception as exc:
                error = exc
        with self._lock:
            if sandbox_id in self._held and not context.closed:  # else released already
                self._deletes.submit(sandbox_id)
        if error is not None:
            raise error

    def wait_for_releases(self) -> None:
        """Wait for the background deletes (at most one call's deadline and retry budget);
        one still running then is reported as left behind."""
        settings = self._context.settings
        limit = settings.timeout + settings.retry_budget + 1.0
        for sandbox_id in self._deletes.wait(limit):
            with self._lock:
                held = self._held.get(sandbox_id)
            name = held.record.name if held is not None else ""
            error = BackendError(f"delete still running after {limit:g}s")
            self._context.failed(sandbox_id, name, error)

    def release_held(self) -> None:
        """Wait for the background deletes, then release every sandbox this process still
        holds (a teardown that never ran, a delete that failed, a sandbox made ahead that no
        test took), concurrently, each within its deadline."""
        if self.pool is not None:
            # creates under way end up held
            self.pool.stop(self._context.settings.timeout + 1.0)
        self.wait_for_releases()
        busy = self._deletes.busy()
        ids = [record.sandbox_id for record in self.records if record.sandbox_id not in busy]
        if len(ids) <= 1:
            for sandbox_id in ids:
                self.release(sandbox_id, final=True)
            return
        with ThreadPoolExecutor(min(8, len(ids)), thread_name_prefix="pytest-daytona") as pool:
            list(pool.map(lambda sandbox_id: self.release(sandbox_id, final=True), ids))

    def shut(self) -> None:
        """The end of the process: no more deletes are started, the context refuses the API."""
        with self._lock:
            self._context.mark_closed()
        self._deletes.shutdown()
