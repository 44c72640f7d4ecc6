"""How this process's `SandboxSession` comes to be: only once a sandbox is needed.

A run whose collected tests take no sandbox imports neither the SDK nor pydantic nor filelock
and makes no run directory; nor does one whose sandbox tests are all deselected (``-k``,
``-m``): only the selected tests count. Otherwise the session is built right after collection
and deselection: its settings are validated then (bad ones stop the run before any test, a
usage error), and the SDK client is built in a background thread while the first test sets
up. The xdist controller collects nothing, so it builds the session at configure time: its
workers need the run directory and, for the embedded backend, the server.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .session import SandboxSession
    from .stats import RunStats  # noqa: F401 (in a string)

SESSION_KEY = pytest.StashKey["SandboxSession"]()
#: Where an xdist worker puts its sandbox figures in ``workeroutput``.
WORKER_OUTPUT_KEY = "pytest_daytona_stats"
#: The figures of the xdist workers that finished (controller).
WORKERS_KEY = pytest.StashKey["list[RunStats]"]()
RUN_ID_KEY = pytest.StashKey[str]()
RUN_DIR_KEY = "pytest_daytona_run_dir"
CONNECTION_KEY = "pytest_daytona_connection"
#: The fixtures that take a sandbox; a test needing any of them needs the session.
SANDBOX_FIXTURES = frozenset(
    {
        "daytona_sandbox",
        "daytona_session_sandbox",
        "daytona_sandbox_factory",
        "daytona_session_sandbox_factory",
        "daytona_async_sandbox",
        "daytona_async_sandbox_factory",
        "daytona_client",
    }
)


def workerinput(config: pytest.Config) -> dict[str, Any] | None:
    """What the xdist controller gave this worker, None outside a worker."""
    found: dict[str, Any] | None = getattr(config, "workerinput", None)
    return found


def is_xdist_controller(config: pytest.Config) -> bool:
    """Whether this process hands tests to xdist workers (and runs none itself)."""
    return workerinput(config) is None and getattr(config.option, "dist", "no") != "no"


def unsupported_platform() -> str | None:
    """Why this platform takes no sandbox (Windows: the run's records are keyed by POSIX user
    id and process checks), None where it does (Linux, macOS)."""
    if os.name == "posix":
        return None
    return (
        f"pytest-daytona: tests that take a Daytona sandbox need Linux or macOS, not "
        f"{sys.platform}; the other tests run as usual"
    )


def start_run(config: pytest.Config) -> None:
    """Configure time: fix the run id (xdist's testrun_uid too); the xdist controller builds
    its session now."""
    worker = workerinput(config)
    if worker is not None:
        run_id = str(worker["testrunuid"])
    else:
        run_id = uuid.uuid4().hex
        if config.pluginmanager.hasplugin("xdist") and hasattr(config.option, "testrunuid"):
            # Make xdist use our run id as its testrun_uid, so both name the same run.
            config.option.testrunuid = config.option.testrunuid or run_id
            run_id = config.option.testrunuid
    config.stash[RUN_ID_KEY] = run_id
    if is_xdist_controller(config) and unsupported_platform() is None:
        session_for(config)


def needs_sandboxes(items: Sequence[pytest.Item]) -> bool:
    """Whether any of `items` takes a sandbox fixture (directly or through another fixture)
    or carries a ``daytona`` marker."""
    for item in items:
        if SANDBOX_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            return True
        if item.get_closest_marker("daytona") is not None:
            return True
    return False


def prepare(config: pytest.Config) -> SandboxSession:
    """After a collection that needs sandboxes: the session (settings validated), with its
    SDK client being built in the background unless nothing will run."""
    session = session_for(config)
    if not config.option.collectonly and not session.backend.started:
        threading.Thread(
            target=session.backend.warm_up, name="pytest-daytona-warm-up", daemon=True
        ).start()
    return session


def session_for(config: pytest.Config) -> SandboxSession:
    """This process's session, built the first time it is asked for; bad settings raise
    `pytest.UsageError`."""
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        session = _build(config)
        config.stash[SESSION_KEY] = session
    return session


def _build(config: pytest.Config) -> SandboxSession:
    from ..api.backend import Backend
    from ..config.resolve import resolve_settings
    from ..errors import SettingsError
    from .coordination import RunDir
    from .hook_calls import Hooks
    from .session import SandboxSession

    try:
        settings = resolve_settings(config)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    worker = workerinput(config)
    run_id = config.stash[RUN_ID_KEY]
    reuse_key = settings.reuse_key or default_reuse_key(config.rootpath)
    if worker is not None:  # an xdist worker: join the controller's run
        connection = worker.get(CONNECTION_KEY)
        session = SandboxSession(
            settings,
            RunDir(Path(worker[RUN_DIR_KEY])),
            run_id=run_id,
            worker=str(worker["workerid"]),
            reuse_key=reuse_key,
            backend=Backend(settings, connection=tuple(connection) if connection else None),
        )
        session.run_dir.register()
    else:  # the only process, or the xdist controller
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
    session.hooks = Hooks(config.hook)
    # The SDK's traceback only with -vv or --tb=long; else one short line per failure.
    session.backend.caller.verbose = (
        config.get_verbosity() >= 2 or config.getoption("tbstyle", "auto") == "long"
    )
    return session


def default_reuse_key(rootpath: Path) -> str:
    """The project directory's name, made fit for a label value."""
    import re

    key = re.sub(r"[^A-Za-z0-9._-]", "-", rootpath.name).lstrip("._-")[:63]
    return key or "default"
