"""While pytest's debugger is open (``--pdb``, ``breakpoint()``), Daytona does not auto-stop
the sandboxes this process uses: their auto-stop interval is 0 until the debugger leaves,
then what it was. A plugin module (``daytona-debugging``)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import BackendError, SandboxWarning
from ..run.startup import SESSION_KEY

if TYPE_CHECKING:
    from daytona import Sandbox

    from ..config.settings import Settings
    from ..run.session import SandboxSession

PLUGIN_NAME = "daytona-debugging"
#: The sandboxes whose auto-stop is off, with the interval to give back.
PAUSED_KEY = pytest.StashKey[list[tuple["Sandbox", "Settings", int]]]()


def pytest_enter_pdb(config: pytest.Config, pdb: Any) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or session.closed:
        return
    from ..leases import (  # here: a run that takes no sandbox never loads it (nor pydantic)
        create_params,
    )

    paused = config.stash.setdefault(PAUSED_KEY, [])
    known = {sdk.id for sdk, _, _ in paused}
    for sdk, settings in session.live():
        before = sdk.auto_stop_interval
        if sdk.id in known or before == 0:
            continue
        if _set(session, sdk, settings, 0):
            paused.append((sdk, settings, int(before or create_params.default_auto_stop(settings))))


def pytest_leave_pdb(config: pytest.Config, pdb: Any) -> None:
    session = config.stash.get(SESSION_KEY, None)
    paused = config.stash.get(PAUSED_KEY, [])
    config.stash[PAUSED_KEY] = []
    if session is None or session.closed:
        return
    for sdk, settings, minutes in paused:
        _set(session, sdk, settings, minutes)


def _set(session: SandboxSession, sdk: Sandbox, settings: Settings, minutes: int) -> bool:
    """Set `sdk`'s auto-stop interval; a failure is a warning (the debugger goes on)."""
    from ..leases import lease

    try:
        session.backend.api().call(
            "set the auto-stop interval of",
            lambda a: sdk.set_autostop_interval(minutes, request_timeout=a.limit),
            settings,
            target=lease.describe(sdk),
        )
    except BackendError as exc:
        warnings.warn(SandboxWarning(str(exc)), stacklevel=2)
        return False
    return True
