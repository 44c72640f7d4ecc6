"""The pytest plugin: options, marker, settings validation, report header, session cleanup."""

from __future__ import annotations

from typing import Any

import pytest

from .fixtures import (
    ITEM_SETTINGS_KEY,
    SESSION_KEY,
    daytona_sandbox,
    daytona_sandbox_factory,
    daytona_session_sandbox,
    merge_overrides,
)
from .options import add_options
from .session import SandboxSession
from .settings import Problem, SettingsError, describe_for_header, resolve_settings

__all__ = ["daytona_sandbox", "daytona_sandbox_factory", "daytona_session_sandbox"]

MARKER_HELP = (
    "daytona(**settings): settings for this test's Daytona sandboxes, e.g. "
    "daytona(snapshot='my-snap', env={'A': '1'}, cpu=2); same names as the daytona_* ini keys"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    try:
        settings = resolve_settings(config)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    config.stash[SESSION_KEY] = SandboxSession(
        settings,
        run_id=workerinput.get("testrunuid"),
        worker=str(workerinput.get("workerid", "main")),
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Validate every ``daytona`` marker before any test runs; all problems at once."""
    problems: list[Problem] = []
    for item in items:
        markers = list(item.iter_markers("daytona"))
        if not markers:
            continue
        kwargs: dict[str, Any] = {}
        for marker in reversed(markers):  # the closest marker wins
            if marker.args:
                problems.append(
                    Problem(
                        "@pytest.mark.daytona",
                        item.nodeid,
                        f"takes keyword arguments only, got {marker.args!r}",
                        fix="write daytona(snapshot='...') rather than daytona('...')",
                    )
                )
            kwargs = merge_overrides(kwargs, marker.kwargs)
        try:
            settings = resolve_settings(config, kwargs, marker_origin=item.nodeid)
        except SettingsError as exc:
            problems.extend(exc.problems)
            continue
        item.stash[ITEM_SETTINGS_KEY] = (kwargs, settings)
    if problems:
        raise pytest.UsageError(str(SettingsError(problems)))


def pytest_report_header(config: pytest.Config) -> str | None:
    session = config.stash.get(SESSION_KEY, None)
    return describe_for_header(session.settings) if session is not None else None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Release whatever fixtures did not (an interrupted run), stop the local server."""
    sandbox_session = session.config.stash.get(SESSION_KEY, None)
    if sandbox_session is not None:
        sandbox_session.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    sandbox_session = config.stash.get(SESSION_KEY, None)
    if sandbox_session is not None:
        sandbox_session.close()
