"""What this pytest process's sandboxes of either kind share: who the process is in the run
(run id, xdist worker), the API it reaches Daytona through, and its books (the figures for
the summary, the releases that failed).

`process_sandboxes` (the function-scoped sandboxes this process leases) and `shared_sandbox`
(the run's one session sandbox) both work through a `ProcessContext`; `SandboxSession` is one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..api.backend import Backend
from ..api.client import Api
from ..config.settings import Settings
from ..errors import BackendError
from ..handle.sandbox import DaytonaSandbox, Workspace
from ..leases import create_params
from ..leases.background_deletes import ReleaseFailure
from ..leases.create_params import Scope
from ..leases.lease import LeaseRecord
from ..leases.strays import Strays
from .coordination import RunDir, ci_labels
from .handles import make_handle
from .hook_calls import Hooks
from .stats import End, RunStats

if TYPE_CHECKING:
    from daytona import Sandbox


@dataclass(eq=False, repr=False)
class ProcessContext:
    """This process in the run, its API, and its books."""

    settings: Settings
    run_dir: RunDir
    run_id: str
    worker: str
    reuse_key: str
    backend: Backend
    failures: dict[str, ReleaseFailure] = field(init=False, default_factory=dict)
    stats: RunStats = field(init=False, default_factory=RunStats)  # for the end-of-run summary
    hooks: Hooks = field(init=False, default_factory=Hooks)  # the run's hooks (`startup` sets them)
    strays: Strays = field(init=False)
    _extra_labels: dict[str, str] = field(init=False)
    _closed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.strays = Strays(self.api, self.settings)
        self._extra_labels = ci_labels(os.environ)

    @property
    def closed(self) -> bool:
        """Whether `close` ran (the end of the run is done)."""
        return self._closed

    def mark_closed(self) -> None:
        """From now on `api` refuses: the backend is being closed."""
        self._closed = True

    def api(self) -> Api:
        """The API, while the process is not closed."""
        if self._closed:
            raise BackendError("the pytest-daytona session is closed")
        return self.backend.api()

    def handle(
        self, api: Api, sdk: Sandbox, workspace: str | Workspace, settings: Settings
    ) -> DaytonaSandbox:
        """The handle a test gets on `sdk` (see `handles`)."""
        return make_handle(api, sdk, workspace, settings, self.stats)

    def labels(self, settings: Settings, scope: Scope) -> dict[str, str]:
        """The labels of a new sandbox of `scope`."""
        labels = create_params.build_labels(
            settings, run_id=self.run_id, worker=self.worker, scope=scope
        )
        return {**labels, **self._extra_labels}

    def name(self) -> str:
        """A new sandbox name, unique in the run."""
        return create_params.new_name(self.run_id, self.worker)

    def record(self, sdk: Sandbox, settings: Settings, scope: Scope, workspace: str) -> LeaseRecord:
        """The lease record of `sdk`, made by this process."""
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

    def acquired(self, sdk: Sandbox, scope: Scope, how: str, started: float) -> None:
        """Count a sandbox had since `started` (monotonic) for the summary."""
        seconds = time.monotonic() - started
        self.stats.acquired(
            sdk.id, sdk.name, scope=scope, worker=self.worker, how=how, seconds=seconds
        )

    def attempt(self, sandbox_id: str, name: str, release: Callable[[], object]) -> bool:
        """Run `release`; record its failure for the end-of-run report (or clear an earlier
        one), and its time and how the sandbox ended (what `release` returns, else deleted)
        for the summary. True when it succeeded."""
        started = time.monotonic()
        try:
            ended = release()
        except BackendError as exc:  # BackendCallError included
            self.stats.released_one(sandbox_id, name, "held", time.monotonic() - started)
            self.failed(sandbox_id, name, exc)
            return False
        end: End = ended if ended in ("held", "stopped", "kept") else "deleted"
        self.stats.released_one(sandbox_id, name, end, time.monotonic() - started)
        self.failures.pop(sandbox_id, None)
        return True

    def failed(self, sandbox_id: str, name: str, exc: Exception) -> None:
        """Record that `sandbox_id` could not be released (it may be left behind)."""
        self.failures[sandbox_id] = ReleaseFailure(sandbox_id, name, str(exc))
