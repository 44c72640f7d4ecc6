"""The fixtures: `daytona_sandbox`, `daytona_session_sandbox`, `daytona_sandbox_factory`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from .config.options import DICT_FIELDS
from .errors import DaytonaPluginError
from .report.diagnostics import track
from .report.outcomes import report_of
from .run.startup import SESSION_KEY, session_for

if TYPE_CHECKING:
    from daytona import Daytona

    from .config.settings import Settings
    from .handle.factory import SandboxFactory
    from .handle.sandbox import DaytonaSandbox
    from .run.session import SandboxSession

__all__ = ["ITEM_SETTINGS_KEY", "SESSION_KEY", "merge_overrides", "sandbox_session"]

#: The merged ``@pytest.mark.daytona`` kwargs of an item and the settings they give.
ITEM_SETTINGS_KEY = pytest.StashKey["tuple[dict[str, Any], Settings]"]()


def sandbox_session(config: pytest.Config) -> SandboxSession:
    """This process's `SandboxSession` (built once collection showed a sandbox is needed)."""
    return session_for(config)


def item_settings(request: pytest.FixtureRequest) -> tuple[dict[str, Any], Settings]:
    node: pytest.Item = request.node
    stashed = node.stash.get(ITEM_SETTINGS_KEY, None)
    if stashed is not None:
        return stashed
    return {}, sandbox_session(request.config).settings


def merge_overrides(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` settings over `base` ones; ``env`` and ``labels`` dicts are merged key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if key in DICT_FIELDS and isinstance(value, Mapping):
            value = {**merged.get(key, {}), **value}
        merged[key] = value
    return merged


@contextlib.contextmanager
def backend_errors_fail_the_test(config: pytest.Config) -> Iterator[None]:
    """A sandbox that cannot be had fails the test that wanted it with one short message
    (operation, sandbox, status, the server's words, the fix), not the run. The SDK's
    traceback is shown only with ``-vv`` or ``--tb=long``."""
    __tracebackhide__ = True
    from daytona import DaytonaError

    try:
        yield
    except (DaytonaPluginError, DaytonaError) as exc:
        if sandbox_session(config).backend.caller.verbose:  # -vv or --tb=long
            raise
        message = getattr(exc, "message", None) if isinstance(exc, DaytonaError) else None
        raise pytest.fail.Exception(f"pytest-daytona: {message or exc}", pytrace=False) from None


@pytest.fixture(scope="session")
def daytona_client(request: pytest.FixtureRequest) -> Daytona:
    """The run's `daytona.Daytona` SDK client, pointed at the backend the sandboxes come from
    (the embedded local server too), for what the fixtures do not wrap: snapshots, volumes,
    listing. It belongs to the plugin: do not close it. Under pytest-xdist each worker has
    its own client, all pointed at the same backend."""
    with backend_errors_fail_the_test(request.config):
        return sandbox_session(request.config).backend.client()


@contextlib.contextmanager
def leased(
    request: pytest.FixtureRequest, settings: Settings, *, ahead: bool = False
) -> Iterator[DaytonaSandbox]:
    """A function-scoped sandbox for the fixture of `request`, released (in the background)
    when the context ends, with the test's outcome for the hooks. `ahead`: one the pool
    made ahead of need may be taken."""
    session = sandbox_session(request.config)
    with backend_errors_fail_the_test(request.config):
        sandbox = session.acquire(settings, ahead=ahead)
    track(request, sandbox)
    try:
        yield sandbox
    finally:
        session.release_later(sandbox.id, report_of(request.node))


@pytest.fixture
def daytona_sandbox(request: pytest.FixtureRequest) -> Iterator[DaytonaSandbox]:
    """A fresh Daytona sandbox for this test, deleted (in the background) when the test ends.

    Settings come from ``@pytest.mark.daytona(...)`` on the test (or its class/module), then
    ``--daytona-*`` options, env vars and ``daytona_*`` ini keys. Commands run in
    ``sandbox.workspace``: ``sandbox.run("make test", check=True)``.
    """
    _, settings = item_settings(request)
    with leased(request, settings, ahead=True) as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def daytona_session_sandbox(request: pytest.FixtureRequest) -> DaytonaSandbox:
    """One Daytona sandbox shared by every test of the run, released at the end of the run.

    Under pytest-xdist all workers share it. With ``--daytona-reuse`` it is stopped instead
    of deleted, and the next run (here or on another machine, same reuse key) resumes it,
    unless its settings changed: then it is replaced. Markers do not apply to it (it is made
    once, from the run-wide settings).
    """
    session = sandbox_session(request.config)
    with backend_errors_fail_the_test(request.config):
        sandbox = session.session_sandbox(getattr(request.config, "cache", None))
    track(request, sandbox)
    return sandbox


@pytest.fixture
def daytona_sandbox_factory(request: pytest.FixtureRequest) -> Iterator[SandboxFactory]:
    """Make more sandboxes in one test: ``make(**overrides)`` takes the same keys as the
    ``daytona`` marker (``env=``, ``snapshot=``, ``cpu=`` ...) on top of the test's settings.
    Every sandbox made is deleted when the test ends. Its type: `pytest_daytona.SandboxFactory`."""
    marker_kwargs, _ = item_settings(request)
    made: list[str] = []
    try:
        yield lambda **overrides: make_one(request, marker_kwargs, overrides, made)[0]
    finally:
        release_made(request, made, report_of(request.node))


@pytest.fixture(scope="session")
def daytona_session_sandbox_factory(request: pytest.FixtureRequest) -> Iterator[SandboxFactory]:
    """Make sandboxes that live for the whole run (of this process: under pytest-xdist each
    worker has its own): ``make(**overrides)`` takes the marker's keys on top of the run-wide
    settings (markers of tests do not apply). Every sandbox made is deleted at the end of the
    run. Its type: `pytest_daytona.SandboxFactory`."""
    made: list[str] = []
    try:
        yield lambda **overrides: make_one(request, {}, overrides, made)[0]
    finally:
        release_made(request, made, None)


def release_made(
    request: pytest.FixtureRequest, made: list[str], report: pytest.TestReport | None
) -> None:
    """Release the sandboxes a factory fixture made, newest first."""
    session = sandbox_session(request.config)
    for sandbox_id in reversed(made):
        session.release_later(sandbox_id, report)


def make_one(
    request: pytest.FixtureRequest,
    marker_kwargs: Mapping[str, Any],
    overrides: Mapping[str, Any],
    made: list[str],
    *,
    realize: bool = False,
) -> tuple[DaytonaSandbox, Settings]:
    """One sandbox of a factory fixture, with `overrides` over `marker_kwargs`, and its
    settings; its id is appended to `made`. `realize`: make its workspace now."""
    from .config.resolve import resolve_settings

    where = request.node.nodeid or "the run"
    settings = resolve_settings(
        request.config,
        merge_overrides(marker_kwargs, overrides),
        marker_origin=f"{request.fixturename} in {where}",
    )
    session = sandbox_session(request.config)
    with backend_errors_fail_the_test(request.config):
        sandbox = session.acquire(settings)
        made.append(sandbox.id)
        if realize:
            _ = sandbox.workspace
    track(request, sandbox)
    return sandbox, settings
