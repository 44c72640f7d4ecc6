"""The plugin's own implementations of its hooks (`newhooks`), all ``trylast``: a user's
implementation that answers first wins. Registered as ``daytona-default-hooks``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .sandbox import DaytonaSandbox

PLUGIN_NAME = "daytona-default-hooks"


@pytest.hookimpl(trylast=True)
def pytest_daytona_keep(sandbox: DaytonaSandbox, report: pytest.TestReport) -> bool | None:
    """Never keep a sandbox: every one is deleted when its test ends."""
    return False
