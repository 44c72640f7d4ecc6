"""Which failed tests' sandboxes to keep: the ``keep`` setting decides for every test alike;
this hook adds a rule of the team's own (tests marked ``investigate``).

Hooks apply to every Daytona sandbox of the run, whichever directory its test is in, so this
one answers only for the tests it knows about and returns None for the others (None leaves
the answer to the ``keep`` setting).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_daytona import DaytonaSandbox


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "investigate: keep this test's sandbox when it fails (see conftest.py)"
    )


def pytest_daytona_keep(sandbox: DaytonaSandbox, report: pytest.TestReport) -> bool | None:
    """Keep the sandbox of a failed test marked ``@pytest.mark.investigate``.

    `report` is the test's call report (its set-up's when the call did not run): its
    ``keywords`` hold the test's marker names, ``failed`` and ``longrepr`` say how it ended.
    """
    if "investigate" in report.keywords and report.failed:
        return True
    return None
