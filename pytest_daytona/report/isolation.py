"""The embedded server's isolation, said where it is seen: the report header names it, and a
run whose sandboxes are not isolated gets an `IsolationWarning` in pytest's warnings summary
(a log record of the server alone is not shown by pytest)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import IsolationWarning

if TYPE_CHECKING:
    from ..api.backend import Backend, Isolation

#: Whether this run's warning was issued (once, whatever calls `warn_if_not_isolated`).
WARNED_KEY = pytest.StashKey[bool]()


def not_isolated_reason() -> str:
    """Why the embedded server runs sandboxes without bubblewrap on this machine."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    return "bubblewrap is installed but cannot make its namespaces here"


def warning_text() -> str:
    """What a run without isolation is told, plainly."""
    return (
        "pytest-daytona: the local backend's sandboxes are NOT isolated from this machine "
        f"({not_isolated_reason()}): their commands run as plain processes of your user and "
        "can read and change whatever your user can. Do not run untrusted code in them. "
        "Install bubblewrap (apt-get install bubblewrap) to isolate them."
    )


def header_lines(line: str, settings: Any) -> list[str]:
    """The report header: `line` (`describe_for_header`), with the embedded server's isolation
    and, without any, a warning line. `settings`: a `Settings`, or `header_values`."""
    if settings.backend != "local" or settings.api_url is not None:
        return [line]  # Daytona's, or a served server's own
    from ..api.backend import embedded_isolation

    isolation = embedded_isolation()
    lines = [f"{line} isolation={isolation}"]
    if isolation == "none":
        lines.append(
            f"daytona: WARNING: sandboxes are NOT isolated from this machine "
            f"({not_isolated_reason()}); do not run untrusted code in them"
        )
    return lines


def warn_if_not_isolated(config: pytest.Config, backend: Backend) -> Isolation | None:
    """Before the tests run: an `IsolationWarning` (in the warnings summary, once a run) when
    the embedded server runs or will run sandboxes without isolation. Returns the isolation
    (None off the embedded backend)."""
    isolation = backend.isolation()
    if isolation == "none" and not config.stash.get(WARNED_KEY, False):
        config.stash[WARNED_KEY] = True
        config.issue_config_time_warning(IsolationWarning(warning_text()), stacklevel=2)
    return isolation
