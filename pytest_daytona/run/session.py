"""`SandboxSession`: the one object through which a pytest process uses sandboxes, so that
whatever happens (test failure, Ctrl-C, SIGTERM, a fixture teardown that never ran) each
sandbox it had is released.

It owns the parts and their lifetime; each job lives in its own module:

- `process_context`: who this process is in the run, its API and its books (a
  `SandboxSession` is a `ProcessContext`);
- `process_sandboxes`: the function-scoped sandboxes this process leases and releases;
- `shared_sandbox`: the run's one session sandbox, shared across xdist workers;
- `handles`: the handle a test gets on a sandbox;
- `run_end`: the end of the run (session sandbox, leases of dead workers, strays).

The name is kept because the plugin, the tests and the benchmarks know it. Here "session"
means this process's share of the test run (one per process, kept in the pytest config's
stash; the pytest hooks call it ``sandbox_session``). It is not pytest's `Session`, nor the
session sandbox (`SharedSandbox`), nor session scope, nor the run dir's ``session`` lock.
"""

from __future__ import annotations

import atexit
import os
from typing import TYPE_CHECKING

from ..api.backend import Backend
from ..api.client import Api
from ..config.settings import Settings
from ..errors import CoordinationError
from ..handle.sandbox import DaytonaSandbox, Workspace
from ..leases.lease import LeaseRecord
from ..leases.prewarm import Need, Pool
from . import run_end
from .coordination import RunDir
from .process_context import ProcessContext
from .process_sandboxes import ProcessSandboxes
from .shared_sandbox import SharedSandbox

if TYPE_CHECKING:
    import pytest
    from _pytest.cacheprovider import Cache
    from daytona import Sandbox


class SandboxSession(ProcessContext):
    """Per-process owner of the backend and of every sandbox the process uses: its own
    function-scoped ones (`sandboxes`) and the run's session sandbox (`shared`)."""

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
        super().__init__(settings, run_dir, run_id, worker, reuse_key, backend or Backend(settings))
        self.run_outcome = "failed"  # the session sandbox's `before_release` outcome
        self.sandboxes = ProcessSandboxes(self)
        self.shared = SharedSandbox(self)
        atexit.register(self.close)

    @property
    def records(self) -> list[LeaseRecord]:
        """Records of the sandboxes held now."""
        return self.sandboxes.records

    @property
    def pool(self) -> Pool | None:
        """The pool of sandboxes made ahead of need, once there is one."""
        return self.sandboxes.pool

    def live(self) -> list[tuple[Sandbox, Settings]]:
        """The sandboxes tests of this process have now (theirs, and the session sandbox)."""
        found = self.sandboxes.live()
        if self.shared.sdk is not None:
            found.append((self.shared.sdk, self.settings))
        return found

    def _handle(
        self, api: Api, sdk: Sandbox, workspace: str | Workspace, settings: Settings
    ) -> DaytonaSandbox:
        return self.handle(api, sdk, workspace, settings)

    # -- sandboxes of this process (`process_sandboxes`) -------------------------------------

    def acquire(self, settings: Settings, *, ahead: bool = False) -> DaytonaSandbox:
        """A function-scoped sandbox for `settings` (`ProcessSandboxes.acquire`)."""
        return self.sandboxes.acquire(settings, ahead=ahead)

    def plan_ahead(self, upcoming: list[Need]) -> None:
        """Tell the pool which sandboxes the next tests take (see `prewarm`)."""
        self.sandboxes.plan_ahead(upcoming)

    def release(self, sandbox_id: str, *, final: bool = False) -> None:
        """Delete a sandbox this process acquired (`ProcessSandboxes.release`)."""
        self.sandboxes.release(sandbox_id, final=final)

    def release_later(self, sandbox_id: str, report: pytest.TestReport | None = None) -> None:
        """Start deleting a sandbox in the background (`ProcessSandboxes.release_later`)."""
        self.sandboxes.release_later(sandbox_id, report)

    def wait_for_releases(self) -> None:
        """Wait for the background deletes (`ProcessSandboxes.wait_for_releases`)."""
        self.sandboxes.wait_for_releases()

    def release_held(self) -> None:
        """Release every sandbox this process still holds (`ProcessSandboxes.release_held`)."""
        self.sandboxes.release_held()

    # -- the run's session sandbox (`shared_sandbox`) ----------------------------------------

    def session_sandbox(self, cache: Cache | None) -> DaytonaSandbox:
        """The run's one session sandbox: join it if another process made it, else make it
        (with reuse: claim the last one of this reuse key, or create one)."""
        return self.shared.get(cache)

    # -- the end of the run and of this process ----------------------------------------------

    def finish_run(self) -> None:
        """After all workers ended (controller, or the last worker of a dead controller):
        release the session sandbox once (stop it for reuse, else delete it), every lease
        a worker left, then anything else labelled with this run's id; drop the run dir."""
        run_end.finish_run(
            self.run_dir,
            self.settings,
            self.run_id,
            self.strays,
            api=self.api,
            started=lambda: self.backend.started,
            release_session=self._end_session,
            attempt=self.attempt,
            failed=self.failed,
        )

    def _end_session(self, api: Api, record: LeaseRecord) -> None:
        self.shared.end(api, record, self.run_outcome)

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
        if self.closed:
            return
        atexit.unregister(self.close)
        try:
            self.release_held()
        finally:
            self.sandboxes.shut()
            self.backend.close()
