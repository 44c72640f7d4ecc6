"""What a release is made of (issue 20): one version, every import declared, and the sdist and
wheel holding what they should. The build test builds both archives from a copy of this
checkout (without build isolation: setuptools comes from the test extras) and checks them
with `twine check --strict`, as `.ci/run` does; it takes a few seconds, so it is left out of
the quick loop."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import pytest_daytona

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli below 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytest_daytona"
#: The folders the sdist carries besides the package: what tests it from source.
SDIST_DIRS = ("tests", "examples", "bench")
SDIST_FILES = ("CHANGELOG.md", "LICENSE", "README.md", "pyproject.toml", "MANIFEST.in")
#: What a developer's tree holds that no archive may: environments, caches, build output and
#: what a run of the examples leaves behind (examples/hooks saves failed tests' listings).
JUNK = (
    ".venv/lib/python3/site-packages/junk.py",
    "pytest_daytona/__pycache__/plugin.cpython-311.pyc",
    "pytest_daytona/local/stale.pyc",
    "tests/__pycache__/conftest.cpython-311.pyc",
    "tests/.pytest_cache/v/cache/lastfailed",
    "examples/.ruff_cache/0.6.0/123",
    "bench/.mypy_cache/3.11/x.json",
    "examples/hooks/daytona-failures/pytest-0-gw0-0.txt",
    "build/lib/pytest_daytona/stale.py",
    "dist/pytest_daytona-0.0.0.tar.gz",
)
JUNK_PATTERN = re.compile(
    r"(^|/)(\.venv|__pycache__|\.pytest_cache|\.mypy_cache|\.ruff_cache|\.git|build|dist|"
    r"daytona-failures)(/|$)|\.py[cod]$"
)


def _project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, Any] = tomllib.load(f)["project"]
    return project


def _source_files(folder: Path) -> set[str]:
    """The files under `folder` (relative to the checkout) that are the project's own."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not JUNK_PATTERN.search(path.relative_to(ROOT).as_posix())
    }


@pytest.mark.quick
def test_the_version_is_written_once_and_installed_as_written() -> None:
    project = _project()
    assert "version" not in project and "version" in project["dynamic"]
    assert metadata.version("pytest-daytona") == pytest_daytona.__version__, (
        "the installed metadata is stale: reinstall (pip install -e '.[test]')"
    )


def _third_party_imports() -> dict[str, set[str]]:
    """Each top-level module the package imports that is neither the standard library nor the
    package itself, with the files that import it (imports inside functions and under
    TYPE_CHECKING too)."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top != "pytest_daytona":
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def _packages_distributions() -> dict[str, list[str]]:
    """`importlib.metadata.packages_distributions`, plus the top-level names in each
    distribution's file list: before Python 3.11 it reads only ``top_level.txt``, which
    some wheels (daytona's) do not ship."""
    found = {name: list(dists) for name, dists in metadata.packages_distributions().items()}
    for dist in metadata.distributions():
        for file in dist.files or ():
            top = file.parts[0].removesuffix(".py") if file.parts else ""
            if top.isidentifier() and dist.metadata["Name"] not in found.get(top, []):
                found.setdefault(top, []).append(dist.metadata["Name"])
    return found


@pytest.mark.quick
def test_every_third_party_import_is_a_declared_dependency_and_every_dependency_is_used() -> None:
    declared = {canonicalize_name(Requirement(dep).name) for dep in _project()["dependencies"]}
    distributions = _packages_distributions()
    imported: dict[str, set[str]] = {}
    for module, files in _third_party_imports().items():
        assert module in distributions, f"{module} (imported by {sorted(files)}) is not installed"
        for dist in distributions[module]:
            imported.setdefault(canonicalize_name(dist), set()).update(files)
    undeclared = {dist: sorted(files) for dist, files in imported.items() if dist not in declared}
    assert not undeclared, f"imported but not in [project.dependencies]: {undeclared}"
    assert declared <= imported.keys(), (
        f"declared but never imported: {sorted(declared - imported.keys())}"
    )


def _copy_of_the_checkout(dest: Path) -> Path:
    """This checkout's own files in `dest`, with a developer tree's junk planted in it."""
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", ".*_cache", "build", "dist"
    )
    shutil.copytree(ROOT, dest, ignore=ignore)
    for junk in JUNK:
        (dest / junk).parent.mkdir(parents=True, exist_ok=True)
        (dest / junk).write_text("junk\n")
    return dest


def _build(work: Path) -> tuple[Path, Path]:
    """The sdist and the wheel `python -m build` makes of a copy of this checkout (the wheel
    from the sdist)."""
    src = _copy_of_the_checkout(work / "src")
    out = work / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def _check_sdist(sdist: Path) -> None:
    """The package, tests/, examples/, bench/ and the docs; no junk, nothing else."""
    prefix = f"pytest_daytona-{pytest_daytona.__version__}/"
    with tarfile.open(sdist) as tar:
        names = {m.name.removeprefix(prefix) for m in tar.getmembers() if m.isfile()}
    expected = set(SDIST_FILES) | _source_files(PACKAGE)
    for folder in SDIST_DIRS:
        expected |= _source_files(ROOT / folder)
    assert "tests/test_packaging.py" in expected and "pytest_daytona/py.typed" in expected
    assert not expected - names, f"missing from the sdist: {sorted(expected - names)}"
    junk = sorted(name for name in names if JUNK_PATTERN.search(name))
    assert not junk, f"junk in the sdist: {junk}"
    # Nothing else from the checkout (.ci, .gitignore) beyond what setuptools adds itself.
    extra = {n for n in names - expected if not n.startswith("pytest_daytona.egg-info/")}
    assert extra == {"PKG-INFO", "setup.cfg"}


def _check_wheel(wheel: Path) -> None:
    """Only the package (every file of it) and its metadata, which says what pyproject says."""
    dist_info = f"pytest_daytona-{pytest_daytona.__version__}.dist-info/"
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        meta: Message = HeaderParser().parsestr(whl.read(dist_info + "METADATA").decode())
    package = {n for n in names if not n.startswith(dist_info)}
    # Every file of the package, the agent's scripts and py.typed included, and nothing else:
    # no tests, examples, caches or environments.
    assert package == _source_files(PACKAGE)
    assert {"pytest_daytona/py.typed", "pytest_daytona/local/agent/main.py"} <= package
    assert dist_info + "licenses/LICENSE" in names
    assert meta["Version"] == pytest_daytona.__version__
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == ">=3.10"
    classifiers = meta.get_all("Classifier") or []
    assert not [c for c in classifiers if c.startswith("License ::")]
    for wanted in ("Operating System :: POSIX :: Linux", "Intended Audience :: Developers"):
        assert wanted in classifiers
    for minor in range(10, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert meta["Author"] == "pytest-daytona contributors"


def test_the_sdist_and_wheel_hold_what_they_should_and_pass_twine_check(tmp_path: Path) -> None:
    """One test, so that one build serves every check (under xdist, a fixture would build
    once per worker the checks land on)."""
    sdist, wheel = _build(tmp_path)
    _check_sdist(sdist)
    _check_wheel(wheel)
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.quick
def test_the_license_is_the_apache_2_0_text() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text
    assert _project()["license"] == "Apache-2.0"
