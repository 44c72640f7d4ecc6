"""The plugin's own implementations of its hooks (`newhooks`), all ``trylast``: a user's
implementation that answers first wins. Registered as ``daytona-default-hooks``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .handle.sandbox import DaytonaSandbox

PLUGIN_NAME = "daytona-default-hooks"


@pytest.hookimpl(trylast=True)
def pytest_daytona_keep(sandbox: DaytonaSandbox, report: pytest.TestReport) -> bool | None:
    """Answer from the sandbox's ``keep`` setting: ``always``; ``failed`` when `report` (the
    test's call, else its set-up) failed; ``never`` (the default)."""
    from .leases.keep import policy

    setting = policy(sandbox)
    return setting == "always" or (setting == "failed" and report.failed)
