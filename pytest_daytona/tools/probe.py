"""``pytest --daytona-probe``: a pre-flight check that runs no tests.

With the run's settings it connects, creates a sandbox (labelled like any sandbox of a run, so
``--daytona-cleanup`` finds it if the delete fails), waits for it to start, reads its work
dir, runs one command for its shell and OS, and deletes it; one line per step with its time.
Exit 0 when every step passed, 1 naming the failing step and the fix, 4 for invalid settings.
A small pytest plugin module: importing it imports nothing heavy; it runs only in the
process pytest was started as (never in an xdist worker).
"""

from __future__ import annotations

import contextlib
import posixpath
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from _pytest._io import TerminalWriter
    from daytona import Sandbox

    from ..api.calls import Kind
    from ..api.client import Api
    from ..config.settings import Settings

T = TypeVar("T")

#: One command for the shell and OS: the shell's name, kernel, distribution.
SHELL_AND_OS = (
    'echo "$0"; uname -sr; (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null || echo unknown'
)
PROBE_LABEL = "pytest-daytona-probe"
PROBE_HELP = (
    "Run no tests: create a sandbox with the configured settings, report its work dir, shell, "
    "OS and each step's time, delete it; exit 0, or 1 naming the failing step and the fix."
)
_NAME_WIDTH = 13
#: What to do when a step failed in a way the error itself does not explain.
STEP_FIXES = {
    "client": "check DAYTONA_API_KEY and --daytona-api-url / DAYTONA_API_URL",
    "create": "check the snapshot or image settings and the organization's quota",
    "wait started": "look at the sandbox in the Daytona dashboard; raise --daytona-timeout",
    "work dir": "check that the sandbox's toolbox answers (image or snapshot broken?)",
    "shell and OS": "check that the image has a POSIX shell",
    "delete": "delete the sandbox with pytest --daytona-cleanup --daytona-cleanup-older-than 0s "
    "--daytona-cleanup-yes",
}
#: The same on the local backend: no dashboard, no quota; the server's log says more.
_LOCAL_STEP_FIXES = {
    "create": "check the snapshot or image settings; the local server's log says why",
    "wait started": "read the local server's log (the sandbox did not start); raise "
    "--daytona-timeout",
}


def step_fixes(kind: Kind) -> dict[str, str]:
    """`STEP_FIXES` for the backend `kind` (see `calls.Kind`)."""
    if kind == "daytona":
        return STEP_FIXES
    delete = (
        "nothing to do: the embedded server removes its sandboxes when the probe ends"
        if kind == "embedded"
        else "delete the sandbox with pytest --daytona-cleanup --daytona-backend local "
        "--daytona-api-url <its URL> --daytona-cleanup-older-than 0s --daytona-cleanup-yes"
    )
    return {**STEP_FIXES, **_LOCAL_STEP_FIXES, "delete": delete}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("daytona", "Daytona sandboxes").addoption(
        "--daytona-probe", action="store_true", default=False, help=PROBE_HELP
    )


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Run the probe instead of the tests when ``--daytona-probe`` is given."""
    if not config.getoption("daytona_probe", False):
        return None
    if config.getoption("help", False) or config.getoption("version", False):
        return None  # pytest's own --help/--version first
    if getattr(config, "workerinput", None) is not None:
        return None  # an xdist worker: the controller probes, once
    return run_probe(config)


class StepFailed(Exception):
    """A probe step failed; `fix` says what to do."""

    def __init__(self, step: str, message: str, fix: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message
        self.fix = fix


@dataclass
class Reporter:
    """Prints one line per step, never the API key."""

    tw: TerminalWriter
    secret: str | None
    fixes: dict[str, str] = field(default_factory=lambda: STEP_FIXES)

    def line(self, text: str, **markup: bool) -> None:
        if self.secret:
            text = text.replace(self.secret, "<redacted>")
        self.tw.line(text, **markup)

    def step(self, name: str, fn: Callable[[], T], detail: Callable[[T], str]) -> T:
        """Run step `name`, print its time and `detail(result)`; `StepFailed` on failure."""
        started = time.monotonic()
        try:
            result = fn()
        except Exception as exc:
            seconds = time.monotonic() - started
            message, fix = _explain(name, exc, self.fixes)
            self.line(f"  {name:<{_NAME_WIDTH}} FAILED after {seconds:.2f}s", red=True)
            raise StepFailed(name, message, fix) from exc
        seconds = time.monotonic() - started
        self.line(f"  {name:<{_NAME_WIDTH}} {seconds:6.2f}s  {detail(result)}")
        return result


def _explain(step: str, exc: Exception, fixes: dict[str, str]) -> tuple[str, str]:
    """The error's message (without a fix it carries) and the fix."""
    from ..errors import BackendCallError, BackendError

    if isinstance(exc, BackendCallError) and exc.fix:
        return str(exc).removesuffix(f"; fix: {exc.fix}"), exc.fix
    if type(exc) is BackendError and ": " in str(exc):  # e.g. "no Daytona API key: set ..."
        message, _, fix = str(exc).partition(": ")
        return message, fix
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message), fixes[step]


def run_probe(config: pytest.Config) -> int:
    """The ``--daytona-probe`` command; its exit code."""
    from _pytest.config import create_terminal_writer

    from ..config.options import describe_for_header
    from ..config.resolve import resolve_settings
    from ..config.settings import missing_api_key_message
    from ..errors import SettingsError

    try:
        settings = resolve_settings(config)
    except SettingsError as exc:
        create_terminal_writer(config, sys.stderr).line(f"ERROR: {exc}", red=True)
        return int(pytest.ExitCode.USAGE_ERROR)
    key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    out = Reporter(create_terminal_writer(config, sys.stdout), key)
    out.line("pytest-daytona probe: " + describe_for_header(settings).removeprefix("daytona: "))
    if settings.missing_key == "skip" and missing_api_key_message(settings) is not None:
        out.line(
            "no Daytona API key and daytona_missing_key = skip: the tests that take a sandbox "
            "will be skipped; nothing to probe",
            yellow=True,
        )
        return 0
    started = time.monotonic()
    try:
        _probe(config, settings, out)
    except StepFailed as failed:
        out.line(f'probe FAILED at step "{failed.step}": {failed.message}', red=True, bold=True)
        out.line(f"fix: {failed.fix}", red=True)
        return 1
    out.line(f"probe passed in {time.monotonic() - started:.2f}s", green=True, bold=True)
    return 0


def _probe(config: pytest.Config, settings: Settings, out: Reporter) -> None:
    from ..api.backend import Backend
    from ..leases import create_params, lease
    from ..leases.strays import Strays
    from ..run.hook_calls import Hooks

    backend = Backend(settings)
    out.fixes = step_fixes(backend.kind)
    strays: Strays | None = None
    try:
        api = out.step(
            "client",
            backend.api,
            lambda _: "for " + (backend.api_url or "the SDK's default API URL"),
        )
        run_id = uuid.uuid4().hex
        labels = {
            **create_params.build_labels(settings, run_id=run_id, worker="probe", scope="function"),
            PROBE_LABEL: "true",
        }
        strays = Strays(lambda: api, settings)
        hooks = Hooks(config.hook)
        sdk = out.step(
            "create",
            partial(
                lease.acquire,
                api,
                settings,
                labels,
                partial(create_params.new_name, run_id, "probe"),
                strays=strays,
                adjust=partial(hooks.create_params, settings),
            ),
            lease.describe,
        )
        delete = partial(
            out.step, "delete", partial(lease.destroy, api, sdk, settings), lambda _: "deleted"
        )
        try:
            _use(api, sdk, settings, out)
        except BaseException:
            with contextlib.suppress(StepFailed):  # the earlier failure is the one to report
                delete()
            raise
        delete()
    finally:
        if strays is not None:
            strays.finish()
        backend.close()


def _use(api: Api, sdk: Sandbox, settings: Settings, out: Reporter) -> None:
    """The steps between create and delete."""
    from ..handle.sandbox import DaytonaSandbox
    from ..leases import lease

    out.step(
        "wait started",
        partial(lease.ensure_started, api, sdk, settings),
        lambda _: f"state {lease.state_of(sdk)}",
    )

    def work_dir() -> tuple[str, str]:
        home = api.call(
            "read the home dir of", lambda _: sdk.get_user_home_dir(), settings, target=sdk.id
        )
        return home or "?", lease.realize_workspace(api, sdk, settings)

    _home, workspace = out.step(
        "work dir",
        work_dir,
        lambda found: f"{posixpath.dirname(found[1])} (home {found[0]}; workspace {found[1]})",
    )
    handle = DaytonaSandbox(sdk, workspace, default_timeout=settings.timeout)
    out.step(
        "shell and OS",
        lambda: handle.run(SHELL_AND_OS, check=True).stdout.splitlines(),
        _shell_and_os,
    )


def _shell_and_os(lines: list[str]) -> str:
    shell, kernel, distribution = [*lines, "?", "?", "?"][:3]
    return f"shell {shell}; {kernel}; {distribution}"
