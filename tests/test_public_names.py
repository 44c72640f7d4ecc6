"""The names users write against, pinned: moving the plugin's files must not break them
(issue 17). A name added or removed here is an API change and goes in the CHANGELOG."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from importlib import metadata

import pytest

import pytest_daytona
import pytest_daytona.local
from pytest_daytona import newhooks

#: The quick development loop (`pytest -m quick`, README: Development) runs all of these.
pytestmark = pytest.mark.quick

PACKAGE_NAMES = {
    "AsyncDaytonaSandbox",
    "AsyncSandboxFactory",
    "BackendCallError",
    "BackendError",
    "BackendUnreachableError",
    "CommandError",
    "CoordinationError",
    "DaytonaPluginError",
    "DaytonaSandbox",
    "ExecResult",
    "IsolationWarning",
    "LeaseError",
    "SandboxFactory",
    "SandboxOverrides",
    "SandboxWarning",
    "SettingsError",
    "__version__",
}
LOCAL_NAMES = {"DataDirBusyError", "LocalServer", "serve_forever"}
HOOKS = {
    "pytest_daytona_create_params",
    "pytest_daytona_sandbox_ready",
    "pytest_daytona_before_release",
    "pytest_daytona_keep",
}
FIXTURES = {
    "daytona_client",
    "daytona_sandbox",
    "daytona_session_sandbox",
    "daytona_sandbox_factory",
    "daytona_session_sandbox_factory",
    "daytona_async_sandbox",
    "daytona_async_sandbox_factory",
}


@pytest.mark.parametrize(
    ("module", "names"), [(pytest_daytona, PACKAGE_NAMES), (pytest_daytona.local, LOCAL_NAMES)]
)
def test_the_exported_names_are_exactly_these_and_each_resolves(
    module: object, names: set[str]
) -> None:
    assert set(module.__all__) == names  # type: ignore[attr-defined]
    for name in names:
        assert getattr(module, name) is not None, name
    # The classes are the ones their documented modules define (no stale copies).
    assert pytest_daytona.CommandError.__module__ == "pytest_daytona.errors"
    assert pytest_daytona.ExecResult.__module__ == "pytest_daytona.results"


def test_the_entry_points_load_the_plugin_and_the_command() -> None:
    (plugin,) = [ep for ep in metadata.entry_points(group="pytest11") if ep.name == "daytona"]
    assert plugin.value == "pytest_daytona.plugin"
    module = plugin.load()
    assert {name for name in FIXTURES if callable(getattr(module, name, None))} == FIXTURES
    (command,) = [
        ep for ep in metadata.entry_points(group="console_scripts") if ep.name == "pytest-daytona"
    ]
    assert callable(command.load())
    out = subprocess.run(
        [sys.executable, "-m", "pytest_daytona", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "serve" in out.stdout


def test_the_hook_specs_are_these() -> None:
    specs = {name for name, _ in inspect.getmembers(newhooks) if name.startswith("pytest_daytona_")}
    assert specs == HOOKS
    for name in HOOKS:
        assert hasattr(getattr(newhooks, name), "pytest_spec"), name


def test_the_plugin_registers_these_fixtures_and_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    fixtures = pytester.runpytest("--fixtures", "-p", "no:cacheprovider").stdout.str()
    for name in FIXTURES:
        assert f"\n{name} " in fixtures or f"\n{name}\n" in fixtures, name
    markers = pytester.runpytest("--markers", "-p", "no:cacheprovider").stdout.str()
    assert "@pytest.mark.daytona(" in markers


def test_every_module_of_the_package_imports() -> None:
    """Each module by its dotted name: a file moved without its importers fails here first
    (the agent's scripts are programs run inside a sandbox, not modules)."""
    import pkgutil

    names = [
        info.name for info in pkgutil.walk_packages(pytest_daytona.__path__, "pytest_daytona.")
    ]
    assert len(names) > 40
    for name in names:
        if name.endswith("__main__") or name.startswith("pytest_daytona.local.agent.scripts."):
            continue
        importlib.import_module(name)
