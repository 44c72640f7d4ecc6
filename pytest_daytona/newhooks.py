"""pytest-daytona's hooks (registered with ``pytest_addhooks``).

Implement them in a ``conftest.py`` or a plugin, as any pytest hook. They apply to every
Daytona sandbox of the run; under pytest-xdist the session sandbox's hooks run in whichever
process makes or releases it (the controller releases it), so put them in a conftest.py the
controller loads too (the rootdir's, or one in a directory given on the command line).
The plugin's own defaults are ``trylast`` implementations in `pytest_daytona.default_hooks`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import pytest

if TYPE_CHECKING:
    from daytona import CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams

    from .config.settings import Settings
    from .handle.sandbox import DaytonaSandbox

#: ``"function"``: ``daytona_sandbox`` or a ``daytona_sandbox_factory`` sandbox;
#: ``"session"``: ``daytona_session_sandbox``.
HookScope = Literal["function", "session"]


@pytest.hookspec
def pytest_daytona_create_params(
    settings: Settings, params: CreateSandboxFromImageParams | CreateSandboxFromSnapshotParams
) -> None:
    """Adjust what is sent to Daytona to create a sandbox: change `params` in place (its
    ``labels``, ``env_vars``, ``auto_stop_interval``, ``volumes``, ``network_block_all`` ...).

    Called once per sandbox, before its first create request. ``params.name`` is empty: the
    plugin gives each create attempt a fresh unique name, so a name set here is replaced; keep
    the ``pytest-daytona*`` labels too (the plugin finds and cleans up its sandboxes by them).
    `settings` are the resolved settings the sandbox is made with. It runs in the thread that
    creates the sandbox: the main thread, or, for sandboxes made ahead of need (``prewarm``),
    a background thread: keep it a function of its arguments.
    """


@pytest.hookspec
def pytest_daytona_sandbox_ready(sandbox: DaytonaSandbox, scope: HookScope, fresh: bool) -> None:
    """Set up a sandbox before any test sees it (install packages, upload fixtures data ...).

    Runs in the main thread, once per sandbox: for ``daytona_sandbox`` and factory sandboxes
    (`scope` ``"function"``) before the fixture returns it; for the session sandbox once per
    run, in the process that makes it, under the run's ``session`` lock, so xdist workers that
    join it wait for it and do not run it again (the lock's wait is bounded by
    ``lock_timeout``). With ``--daytona-reuse`` a resumed sandbox is not set up again unless it
    never finished being set up with these settings (then `fresh` is False): settings that
    changed give a new sandbox (`fresh` True). If it raises, the test that asked for the
    sandbox errors and the sandbox is released.
    """


@pytest.hookspec
def pytest_daytona_before_release(sandbox: DaytonaSandbox, scope: HookScope, outcome: str) -> None:
    """Runs (main thread) before a sandbox a test used is released: deleted, stopped for
    reuse, or kept (`pytest_daytona_keep`). `outcome`: ``"passed"``, ``"failed"`` or
    ``"skipped"``: the test's (its call, or its set-up when that did not pass), or, for the
    session sandbox, the run's (``"passed"`` when pytest exits 0 or collected no tests, else
    ``"failed"``). An exception is reported after the sandbox is released anyway.
    """


@pytest.hookspec(firstresult=True)
def pytest_daytona_keep(sandbox: DaytonaSandbox, report: pytest.TestReport) -> bool | None:
    """Whether to keep a function-scoped sandbox when its test ends (first non-None answer
    wins). A kept sandbox is not deleted: it is labelled ``pytest-daytona-kept=true``, given
    a TTL from now (the ``ttl`` setting, else a day) and stopped. `report` is the test's call
    report (its set-up report when the call did not run). The default (`default_hooks`)
    answers from the sandbox's ``keep`` setting (``never``, ``failed``, ``always``).
    """
