"""pytest-daytona's hooks: set the shared sandbox up once per run (not once per xdist worker),
add to what every sandbox is created with, save what a failed test left, keep its sandbox.

Hooks apply to every Daytona sandbox of the run: put them in the conftest.py at the root of
your tests (or in a plugin). See the README's "Hooks" section.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from daytona import CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams

    from pytest_daytona import DaytonaSandbox
    from pytest_daytona.config.settings import Settings

#: A tool the tests need, "installed" without network access: a shell script.
SLUGIFY = """#!/bin/sh
# slugify WORDS...: lower-case, non-alphanumerics become single dashes
printf '%s\\n' "$*" | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9\\n' '-' | sed 's/^-//; s/-$//'
"""


def pytest_daytona_create_params(
    settings: Settings, params: CreateSandboxFromImageParams | CreateSandboxFromSnapshotParams
) -> None:
    """Every sandbox gets a cost-center label and a variable (unless a marker set them)."""
    params.labels = {"cost-center": "examples", **(params.labels or {})}
    params.env_vars = {"GREETING": "hello from create params", **(params.env_vars or {})}


def pytest_daytona_sandbox_ready(sandbox: DaytonaSandbox, scope: str, fresh: bool) -> None:
    """Install the tool in the session sandbox, once per run (and not again when
    ``--daytona-reuse`` resumes it); function-scoped sandboxes need nothing."""
    if scope != "session":
        return
    sandbox.write_text("slugify", SLUGIFY)
    sandbox.run(
        "install -D -m 755 slugify ~/bin/slugify && echo installed >> ~/install.log", check=True
    )


def pytest_daytona_before_release(sandbox: DaytonaSandbox, scope: str, outcome: str) -> None:
    """Save the listing of a failed test's workspace next to the tests."""
    if outcome != "failed":
        return
    out = Path(__file__).parent / "daytona-failures"
    out.mkdir(exist_ok=True)
    (out / f"{sandbox.name}.txt").write_text(sandbox.run("ls -la").stdout)


def pytest_daytona_keep(sandbox: DaytonaSandbox, report: pytest.TestReport) -> bool | None:
    """With KEEP_FAILED_SANDBOXES=1, keep a failed test's sandbox (stopped, labelled
    ``pytest-daytona-kept=true``) to look into; None leaves the answer to the default."""
    if os.environ.get("KEEP_FAILED_SANDBOXES") == "1" and report.failed:
        return True
    return None
