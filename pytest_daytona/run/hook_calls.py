"""Calling the plugin's hooks (`newhooks`) from the lease code; a no-op without pytest."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from ..errors import SandboxWarning

if TYPE_CHECKING:
    import pytest
    from pluggy import HookRelay

    from ..api.client import Api
    from ..config.settings import Settings
    from ..handle.sandbox import DaytonaSandbox
    from ..leases.create_params import CreateParams
    from ..newhooks import HookScope

#: Label value of a reusable sandbox whose `pytest_daytona_sandbox_ready` finished: the
#: signature of the settings it was set up with.
READY_LABEL = "pytest-daytona-ready"


class Hooks:
    """The hooks of one pytest run (`relay`: ``config.hook``); None: calls do nothing."""

    def __init__(self, relay: HookRelay | None = None) -> None:
        self._relay = relay

    def create_params(self, settings: Settings, params: CreateParams) -> None:
        """`pytest_daytona_create_params` (may run in a prewarm thread)."""
        if self._relay is not None:
            self._relay.pytest_daytona_create_params(settings=settings, params=params)

    @property
    def has_ready(self) -> bool:
        """Whether anything implements `pytest_daytona_sandbox_ready`."""
        return self._relay is not None and bool(
            self._relay.pytest_daytona_sandbox_ready.get_hookimpls()
        )

    def ready(self, sandbox: DaytonaSandbox, scope: HookScope, fresh: bool) -> None:
        """`pytest_daytona_sandbox_ready`."""
        if self._relay is not None:
            self._relay.pytest_daytona_sandbox_ready(sandbox=sandbox, scope=scope, fresh=fresh)

    def before_release(self, sandbox: DaytonaSandbox, scope: HookScope, outcome: str) -> None:
        """`pytest_daytona_before_release`."""
        if self._relay is not None:
            self._relay.pytest_daytona_before_release(sandbox=sandbox, scope=scope, outcome=outcome)

    def before_release_quietly(
        self, sandbox: DaytonaSandbox, scope: HookScope, outcome: str
    ) -> None:
        """`before_release` at the end of the run: an exception becomes a warning."""
        try:
            self.before_release(sandbox, scope, outcome)
        except Exception as exc:
            warnings.warn(SandboxWarning(f"pytest_daytona_before_release: {exc!r}"), stacklevel=2)

    def session_ready(
        self, api: Api, sandbox: DaytonaSandbox, settings: Settings, fresh: bool
    ) -> None:
        """`ready` for the session sandbox this process made (`fresh`) or resumed: a resumed
        one only if it was not set up with these settings yet. A reusable one is labelled
        set up afterwards, so the next run that resumes it does not set it up again."""
        from ..leases import reuse

        labels = sandbox.sdk.labels or {}
        signature = settings.signature()
        if not self.has_ready or (not fresh and labels.get(READY_LABEL) == signature):
            return
        self.ready(sandbox, "session", fresh)
        if settings.reuse:
            reuse.set_labels(api, sandbox.sdk, settings, {**labels, READY_LABEL: signature})

    def keep(self, sandbox: DaytonaSandbox, report: pytest.TestReport) -> bool:
        """`pytest_daytona_keep`: whether to keep `sandbox` rather than delete it."""
        if self._relay is None:
            return False
        return bool(self._relay.pytest_daytona_keep(sandbox=sandbox, report=report))
