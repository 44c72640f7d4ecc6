"""Issue 10 point 8: the error classes in one module and exported from the package, a typed
Protocol for the factory, and every fixture documented in ``pytest --fixtures``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import typing_extensions

import pytest_daytona
from pytest_daytona.config.options import RUN_WIDE
from pytest_daytona.config.settings import Settings
from pytest_daytona.handle.factory import SandboxFactory, SandboxOverrides
from pytest_daytona.handle.sandbox import DaytonaSandbox
from pytest_daytona.run.startup import SANDBOX_FIXTURES as STARTUP_FIXTURES

#: Not errors a test can meet: two are caught inside the plugin (a call's deadline, a probe
#: step's failure, which the probe prints), the other ends the run as Ctrl-C does.
INTERNAL_ERRORS = {
    "pytest_daytona.api.deadlines.DeadlineExceeded",
    "pytest_daytona.tools.probe.StepFailed",
    "pytest_daytona.run.signals.Terminated",
}
REPO = Path(pytest_daytona.__file__).resolve().parent.parent


def _plugin_exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of the plugin, its subpackages included (the
    embedded server aside)."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(pytest_daytona.__path__, "pytest_daytona."):
        if info.name.endswith("__main__") or info.name.startswith("pytest_daytona.local"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


@pytest.mark.quick
def test_every_error_class_is_in_errors_and_exported_from_the_package() -> None:
    public = {
        name: cls
        for name, cls in _plugin_exception_classes().items()
        if name not in INTERNAL_ERRORS
    }
    assert {name.rsplit(".", 1)[0] for name in public} == {"pytest_daytona.errors"}
    assert len(public) >= 9
    for cls in public.values():
        assert getattr(pytest_daytona, cls.__name__) is cls
        assert cls.__name__ in pytest_daytona.__all__
        if not issubclass(cls, Warning):
            assert issubclass(cls, pytest_daytona.DaytonaPluginError), cls
    # Each class has one home (no re-export beside `errors` and the package).
    from pytest_daytona.config import resolve
    from pytest_daytona.handle import executor

    assert "SettingsError" not in resolve.__all__
    assert not hasattr(executor, "CommandError")


def test_importing_the_public_names_loads_neither_sdk_nor_pydantic_nor_filelock() -> None:
    code = (
        "import sys\n"
        "from pytest_daytona import *\n"
        "from pytest_daytona import SandboxFactory, CommandError, SettingsError\n"
        "heavy = ('daytona', 'daytona_api_client', 'pydantic', 'filelock', 'aiohttp')\n"
        "print([name for name in heavy if name in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_factory_protocol_takes_the_marker_settings_and_returns_a_handle() -> None:
    hints = typing.get_type_hints(SandboxFactory.__call__, include_extras=True)
    assert hints["return"] is DaytonaSandbox
    unpack = typing.Unpack if sys.version_info >= (3, 11) else typing_extensions.Unpack
    assert typing.get_origin(hints["overrides"]) is unpack
    assert typing.get_args(hints["overrides"]) == (SandboxOverrides,)
    # Exactly the settings a marker may give (a new per-test setting must be added here).
    assert set(SandboxOverrides.__annotations__) == set(Settings.model_fields) - RUN_WIDE
    assert not SandboxOverrides.__required_keys__


USER_CODE = """
from pytest_daytona import DaytonaSandbox, SandboxFactory


def test_two(daytona_sandbox_factory: SandboxFactory) -> None:
    sandbox: DaytonaSandbox = daytona_sandbox_factory(cpu=2, env={"A": "1"}, timeout=5.5)
    daytona_sandbox_factory(cpus=2)
    daytona_sandbox_factory(cpu="2")
    print(sandbox)


def not_a_factory(n: int) -> str:
    return str(n)


wrong: SandboxFactory = not_a_factory
"""

MYPY_CONFIG = """
[mypy]
strict = True
[mypy-pytest_daytona.*]
ignore_errors = True
[mypy-daytona,daytona.*,daytona_api_client.*,daytona_toolbox_api_client.*,pydantic,pydantic.*]
follow_imports = skip
[mypy-aiohttp.*,filelock.*,socketio.*,engineio.*]
follow_imports = skip
"""


def test_a_type_checker_checks_override_names_and_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mypy (a test dependency) on user code annotated with the Protocol: a wrong setting name
    or value type is an error, a right one is not, and a function of another shape is no
    factory. The SDK and pydantic are skipped (speed); the plugin's own errors are ignored
    here (the project's mypy run checks them)."""
    api = pytest.importorskip("mypy.api")
    (tmp_path / "user.py").write_text(USER_CODE)
    (tmp_path / "mypy.ini").write_text(MYPY_CONFIG)
    monkeypatch.setenv("MYPYPATH", str(REPO))
    config, cache = str(tmp_path / "mypy.ini"), str(tmp_path / "cache")
    stdout, _, status = api.run(
        ["--config-file", config, "--cache-dir", cache, str(tmp_path / "user.py")]
    )
    errors = [line for line in stdout.splitlines() if ": error: " in line]
    lines = sorted(int(line.split(":")[1]) for line in errors)
    assert status == 1
    assert lines == [7, 8, 16], stdout
    assert 'Unexpected keyword argument "cpus"' in stdout
    assert 'Argument "cpu" to "__call__" of "SandboxFactory" has incompatible type' in stdout


def test_pytest_fixtures_documents_every_plugin_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    lines = pytester.runpytest("--fixtures", "-p", "no:cacheprovider").outlines
    documented: dict[str, str] = {}
    in_plugin = False
    for number, line in enumerate(lines):
        if line.startswith("-") and "fixtures defined from" in line:
            in_plugin = "pytest_daytona" in line
        elif in_plugin and line and not line.startswith(" "):
            documented[line.split()[0]] = lines[number + 1].strip()
    assert set(documented) == set(STARTUP_FIXTURES)  # every fixture that takes the backend
    for name, first_line in documented.items():
        assert first_line and "no docstring available" not in first_line, name


CLIENT_TESTS = """
def test_client_sees_the_sandboxes(daytona_client, daytona_sandbox):
    assert daytona_client.get(daytona_sandbox.id).id == daytona_sandbox.id


def test_client_alone_builds_the_backend(daytona_client):
    assert daytona_client.snapshot.get("daytona-local").name == "daytona-local"
"""


def test_daytona_client_is_the_plugins_client_for_the_same_backend(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(CLIENT_TESTS)
    result = pytester.runpytest("--daytona-backend", "local", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    # Only the second test alone: the fixture by itself starts the embedded backend.
    result = pytester.runpytest(
        "--daytona-backend", "local", "-p", "no:cacheprovider", "-k", "alone"
    )
    result.assert_outcomes(passed=1)
