"""The pytest plugin: options, marker, settings validation, report header, session cleanup."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from . import signals
from .backend import Backend
from .coordination import RunDir
from .fixtures import (
    ITEM_SETTINGS_KEY,
    SESSION_KEY,
    daytona_sandbox,
    daytona_sandbox_factory,
    daytona_session_sandbox,
    merge_overrides,
)
from .options import add_options
from .resolve import Problem, SettingsError, resolve_settings
from .session import SandboxSession
from .settings import describe_for_header

__all__ = ["daytona_sandbox", "daytona_sandbox_factory", "daytona_session_sandbox"]

#: `pytest --daytona-cleanup` (its options and the command) lives in its own plugin module.
pytest_plugins = ["pytest_daytona.cleanup"]

RUN_DIR_KEY = "pytest_daytona_run_dir"
CONNECTION_KEY = "pytest_daytona_connection"
SIGNALS_KEY = pytest.StashKey[dict[int, Any]]()
MARKER_HELP = (
    "daytona(**settings): settings for this test's Daytona sandboxes, e.g. "
    "daytona(snapshot='my-snap', env={'A': '1'}, cpu=2); same names as the daytona_* ini keys"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    try:
        settings = resolve_settings(config)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    reuse_key = settings.reuse_key or default_reuse_key(config.rootpath)
    if workerinput is not None:  # an xdist worker: join the controller's run
        connection = workerinput.get(CONNECTION_KEY)
        session = SandboxSession(
            settings,
            RunDir(Path(workerinput[RUN_DIR_KEY])),
            run_id=str(workerinput["testrunuid"]),
            worker=str(workerinput["workerid"]),
            reuse_key=reuse_key,
            backend=Backend(settings, connection=tuple(connection) if connection else None),
        )
    else:  # the only process, or the xdist controller
        run_id = uuid.uuid4().hex
        if config.pluginmanager.hasplugin("xdist") and hasattr(config.option, "testrunuid"):
            # Make xdist use our run id as its testrun_uid, so both name the same run.
            config.option.testrunuid = config.option.testrunuid or run_id
            run_id = config.option.testrunuid
        data_dir = None
        cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
        if settings.reuse and cache is not None:
            data_dir = cache.mkdir("daytona-local-server")
        session = SandboxSession(
            settings,
            RunDir.create(run_id),
            run_id=run_id,
            reuse_key=reuse_key,
            backend=Backend(settings, data_dir=data_dir),
        )
    # The SDK's traceback only with -vv or --tb=long; else one short line per failure.
    session.backend.caller.verbose = (
        config.get_verbosity() >= 2 or config.getoption("tbstyle", "auto") == "long"
    )
    if workerinput is not None:
        session.run_dir.register()
    config.stash[SESSION_KEY] = session
    config.stash[SIGNALS_KEY] = signals.install()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: tell each worker where the run's records are and, for the embedded
    server, how to reach the one server all workers share."""
    session = node.config.stash[SESSION_KEY]
    node.workerinput[RUN_DIR_KEY] = str(session.run_dir.path)
    if session.backend.embedded:
        node.workerinput[CONNECTION_KEY] = list(session.backend.connection())


def default_reuse_key(rootpath: Path) -> str:
    """The project directory's name, made fit for a label value."""
    key = re.sub(r"[^A-Za-z0-9._-]", "-", rootpath.name).lstrip("._-")[:63]
    return key or "default"


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
    _end_of_run(session.config)
    sandbox_session = session.config.stash.get(SESSION_KEY, None)
    if sandbox_session is not None and sandbox_session.failures and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a leaked sandbox is a failure


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Name every sandbox that could not be released, and how to remove it."""
    sandbox_session = config.stash.get(SESSION_KEY, None)
    if sandbox_session is None or not sandbox_session.failures:
        return
    failures = list(sandbox_session.failures.values())
    terminalreporter.section("pytest-daytona: sandboxes left behind", sep="=", red=True)
    for failure in failures:
        terminalreporter.line(f"{failure.sandbox_id} ({failure.name}): {failure.reason}")
    terminalreporter.line(
        f"{len(failures)} sandbox{'es' * (len(failures) != 1)} could not be deleted; they "
        "expire with their TTL. Remove them now with: pytest --daytona-cleanup "
        f"--daytona-cleanup-run-id {sandbox_session.run_id} --daytona-cleanup-older-than 0s "
        "--daytona-cleanup-yes"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    _end_of_run(config)  # also for runs that never get to sessionfinish (``--help``)
    previous = config.stash.get(SIGNALS_KEY, None)
    if previous is not None:
        signals.restore(previous)


def _end_of_run(config: pytest.Config) -> None:
    """Release what this process holds; the controller (or the only process) then releases
    the session sandbox, what crashed workers left and any stray of this run, and stops the
    local server. An xdist worker whose controller died finishes the run if it is the last.
    Idempotent: the second call finds nothing left to do."""
    sandbox_session = config.stash.get(SESSION_KEY, None)
    if sandbox_session is None or sandbox_session.closed:
        return
    try:
        with signals.shielded("releasing Daytona sandboxes"):
            if hasattr(config, "workerinput"):
                sandbox_session.leave_run()
            else:
                sandbox_session.release_held()
                sandbox_session.finish_run()
    finally:
        sandbox_session.close()
