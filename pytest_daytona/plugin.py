"""The pytest plugin: options, marker, settings validation, report header, session cleanup."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest

from .async_fixtures import daytona_async_sandbox, daytona_async_sandbox_factory
from .config.options import add_options, describe_for_header, header_values
from .fixtures import (
    ITEM_SETTINGS_KEY,
    daytona_client,
    daytona_sandbox,
    daytona_sandbox_factory,
    daytona_session_sandbox,
    daytona_session_sandbox_factory,
    merge_overrides,
)
from .report import diagnostics
from .run import signals
from .run.startup import (
    CONNECTION_KEY,
    RUN_DIR_KEY,
    SESSION_KEY,
    WORKER_OUTPUT_KEY,
    WORKERS_KEY,
    default_reuse_key,
    needs_sandboxes,
    prepare,
    session_for,
    start_run,
    unsupported_platform,
)

__all__ = [
    "daytona_async_sandbox",
    "daytona_async_sandbox_factory",
    "daytona_client",
    "daytona_sandbox",
    "daytona_sandbox_factory",
    "daytona_session_sandbox",
    "daytona_session_sandbox_factory",
    "default_reuse_key",
]

#: `pytest --daytona-cleanup` and `--daytona-probe` (options, command) live in their own plugin
#: modules.
pytest_plugins = ["pytest_daytona.tools.cleanup_plugin", "pytest_daytona.tools.probe"]

if TYPE_CHECKING:
    from .config.settings import Settings
    from .leases.prewarm import Need, Upcoming  # noqa: F401 (Upcoming: in a string)

SIGNALS_KEY = pytest.StashKey[dict[int, Any]]()
UPCOMING_KEY = pytest.StashKey["Upcoming"]()
MARKER_HELP = (
    "daytona(**settings): settings for this test's Daytona sandboxes, e.g. "
    "daytona(snapshot='my-snap', env={'A': '1'}, cpu=2); same names as the daytona_* ini keys"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """The plugin's hooks (`newhooks`), its defaults for them, and the test outcomes they get."""
    from . import default_hooks, newhooks
    from .report import debugging, outcomes

    pluginmanager.add_hookspecs(newhooks)
    pluginmanager.register(default_hooks, default_hooks.PLUGIN_NAME)
    pluginmanager.register(debugging, debugging.PLUGIN_NAME)
    pluginmanager.register(outcomes, outcomes.PLUGIN_NAME)


def pytest_configure(config: pytest.Config) -> None:
    """Nothing heavy here: the session is built once collection shows a sandbox is needed
    (see `startup`), except in the xdist controller, which collects nothing."""
    config.addinivalue_line("markers", MARKER_HELP)
    config.pluginmanager.register(diagnostics, "daytona-diagnostics")  # already imported
    start_run(config)
    config.stash[SIGNALS_KEY] = signals.install()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: tell each worker where the run's records are and, for the embedded
    server, how to reach the one server all workers share."""
    session = node.config.stash.get(SESSION_KEY, None)
    if session is None:  # a platform that takes no sandbox (`unsupported_platform`)
        return
    node.workerinput[RUN_DIR_KEY] = str(session.run_dir.path)
    if session.backend.embedded:
        node.workerinput[CONNECTION_KEY] = list(session.backend.connection())


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """Once collection is over and every deselection is done (``-k``, ``-m``, ``--lf``, other
    plugins'), and only when a selected test takes a sandbox: validate the settings and the
    ``daytona`` markers of the selected tests (all problems at once) before any test runs,
    start building the SDK client, and start creating the first tests' sandboxes ahead of
    need (``prewarm``). So a run whose sandbox tests are all deselected imports no SDK and
    starts no server, and a bad marker on a deselected test stops nothing. (Not in
    ``pytest_collection_modifyitems``: ``-k``/``-m`` deselect in pytest's own, after this
    plugin's, and ``--lf`` after every other.) Where no sandbox can be taken (Windows), the
    tests that take one are skipped, saying why."""
    result = yield
    if not needs_sandboxes(session.items):
        return result
    reason = unsupported_platform()
    if reason is not None:  # skipped, saying why; the other tests run
        for item in session.items:
            if needs_sandboxes([item]):
                item.add_marker(pytest.mark.skip(reason=reason))
        return result
    _validate(session.config, session.items)
    _start_prewarm(session)
    return result


def _validate(config: pytest.Config, items: list[pytest.Item]) -> None:
    from .config.resolve import resolve_settings
    from .errors import Problem, SettingsError
    from .report.missing_key import skip_sandbox_tests

    skipped = skip_sandbox_tests(config, items)  # ``missing_key = skip`` and no key
    if not skipped:
        session_for(config)  # the run-wide settings first: each marker is checked on them
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
    if not skipped:
        prepare(config)  # the SDK client, in the background: only for a run that will go on


def _start_prewarm(session: pytest.Session) -> None:
    """Start creating the first tests' sandboxes ahead of need (``prewarm``)."""
    sandbox_session = session.config.stash.get(SESSION_KEY, None)
    if sandbox_session is None or session.config.option.collectonly:
        return
    if sandbox_session.settings.prewarm > 0:
        from .leases.prewarm import Upcoming

        upcoming = Upcoming(session.items, partial(_need, sandbox_session.settings))
        session.config.stash[UPCOMING_KEY] = upcoming
        _plan(session.config, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Before a test: tell the pool which sandboxes this test and the next ones take. After
    it: once the run is to stop (``-x``, ``--maxfail``), make nothing more ahead."""
    _plan(item.config, item)
    try:
        return (yield)
    finally:
        if item.session.shouldfail or item.session.shouldstop:
            sandbox_session = item.config.stash.get(SESSION_KEY, None)
            if sandbox_session is not None and sandbox_session.pool is not None:
                sandbox_session.pool.halt()


def _plan(config: pytest.Config, item: pytest.Item | None) -> None:
    upcoming = config.stash.get(UPCOMING_KEY, None)
    sandbox_session = config.stash.get(SESSION_KEY, None)
    if upcoming is None or sandbox_session is None:
        return
    from .leases.prewarm import WINDOW_PER_DEPTH, worker_queue

    limit = WINDOW_PER_DEPTH * sandbox_session.settings.prewarm + 16
    sandbox_session.plan_ahead(upcoming.after(item, worker_queue(config), limit))


def _need(default: Settings, item: pytest.Item) -> Need | None:
    """The sandbox `item` takes through ``daytona_sandbox`` (None: none)."""
    if "daytona_sandbox" not in getattr(item, "fixturenames", ()):
        return None
    from .leases.prewarm import pool_key

    stashed = item.stash.get(ITEM_SETTINGS_KEY, None)
    settings = stashed[1] if stashed is not None else default
    return pool_key(settings), settings


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The backend and, on the embedded one, how sandboxes are isolated (a warning line
    when they are not)."""
    from .report.isolation import header_lines

    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        return header_lines(describe_for_header(session.settings), session.settings)
    from .config.resolve import raw_values

    values = header_values(raw_values(config))
    return header_lines(describe_for_header(values), values)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Before the first test: warn, in pytest's warnings summary, when the embedded server
    runs this run's sandboxes without isolation (xdist: the controller, which runs it)."""
    sandbox_session = session.config.stash.get(SESSION_KEY, None)
    if sandbox_session is None or session.config.option.collectonly:
        return
    if hasattr(session.config, "workerinput"):
        return  # the controller runs the server and warns
    from .report.isolation import warn_if_not_isolated

    warn_if_not_isolated(session.config, sandbox_session.backend)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    _end_of_run(session.config)
    if session.config.stash.get(SESSION_KEY, None) is not None:
        from .report import summary  # only where sandboxes were taken: it loads pydantic

        summary.send_to_controller(session.config)
    sandbox_session = session.config.stash.get(SESSION_KEY, None)
    if sandbox_session is not None and sandbox_session.failures and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a leaked sandbox is a failure


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist controller: keep a finished worker's sandbox figures for the summary."""
    output = getattr(node, "workeroutput", None)
    if output and WORKER_OUTPUT_KEY in output:
        from .report import summary

        summary.receive(node.config, output)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The run's sandbox figures, the kept sandboxes, and those that could not be released
    with how to remove them (see `summary`); nothing in a run that took no sandbox."""
    if config.stash.get(SESSION_KEY, None) is None and WORKERS_KEY not in config.stash:
        return
    from .report import summary

    summary.write(terminalreporter, config)


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
