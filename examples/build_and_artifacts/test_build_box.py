"""A session-scoped sandbox as a build box: ship sources in, build, pull artifacts out.

One sandbox serves the whole run (`daytona_session_sandbox`), so its files outlive a test:
`release_build` builds the project once and several tests inspect the result, in any order.
Tests that change things work in a directory of their own, so they never step on each other,
also when pytest-xdist runs them in parallel against the same shared sandbox.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile

import pytest

from pytest_daytona import DaytonaSandbox

VERSION = "1.2.0"
SOURCES = {
    "greetlib/__init__.py": (
        f'"""A tiny package to build."""\n\nfrom .core import greet\n\n__version__ = "{VERSION}"\n'
    ),
    "greetlib/core.py": 'def greet(name: str) -> str:\n    return f"Hello, {name}!"\n',
    "greetlib/__main__.py": (
        "import sys\n\nfrom .core import greet\n\nprint(greet(' '.join(sys.argv[1:]) or 'world'))\n"
    ),
    # The project's build script: byte-compile, smoke-test, package, checksum.
    "build.sh": """\
set -eu
version=$(python3 -c 'import greetlib; print(greetlib.__version__)')
rm -rf dist && mkdir dist
python3 -m compileall -q greetlib
python3 -m greetlib build box > dist/smoke.txt
tar czf "dist/greetlib-$version.tar.gz" greetlib
(cd dist && sha256sum "greetlib-$version.tar.gz" > SHA256SUMS)
echo "built dist/greetlib-$version.tar.gz"
""",
}


def write_project(sb: DaytonaSandbox, root: str, files: dict[str, str]) -> None:
    """Write `files` (relative path -> text) under `root` in the sandbox."""
    for path, text in files.items():
        sb.write_text(f"{root}/{path}", text)


def fresh_dir(sb: DaytonaSandbox, path: str) -> str:
    """Empty directory `path` (left over from an earlier run when the sandbox is reused)."""
    sb.run(["rm", "-rf", path], check=True)
    sb.run(["mkdir", "-p", path], check=True)
    return path


@pytest.fixture(scope="session")
def release_build(daytona_session_sandbox: DaytonaSandbox) -> str:
    """Build the project once per run; returns the project directory (relative to workspace).

    Each xdist worker has its own session fixtures, so each builds in its own directory.
    """
    sb = daytona_session_sandbox
    root = fresh_dir(sb, f"release-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
    write_project(sb, root, SOURCES)
    result = sb.run("sh build.sh > build.log 2>&1", cwd=root)
    assert result.ok, sb.read_text(f"{root}/build.log")
    return root


@pytest.fixture
def scratch(daytona_session_sandbox: DaytonaSandbox, request: pytest.FixtureRequest) -> str:
    """A directory in the shared sandbox for this test alone, named after the test."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
    return fresh_dir(daytona_session_sandbox, f"scratch/{name}")


def test_release_tarball_holds_sources_and_bytecode(
    daytona_session_sandbox: DaytonaSandbox, release_build: str
) -> None:
    data = daytona_session_sandbox.download(f"{release_build}/dist/greetlib-{VERSION}.tar.gz")

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
        member = tar.extractfile("greetlib/core.py")
        assert member is not None
        core = member.read().decode()
    assert {"greetlib/__init__.py", "greetlib/core.py", "greetlib/__main__.py"} <= set(names)
    assert any(re.fullmatch(r"greetlib/__pycache__/core\..+\.pyc", n) for n in names), names
    assert core == SOURCES["greetlib/core.py"]


def test_checksum_file_matches_the_downloaded_artifact(
    daytona_session_sandbox: DaytonaSandbox, release_build: str
) -> None:
    dist = f"{release_build}/dist"
    tarball = daytona_session_sandbox.download(f"{dist}/greetlib-{VERSION}.tar.gz")
    sums = daytona_session_sandbox.read_text(f"{dist}/SHA256SUMS")

    digest, filename = sums.split()
    assert filename == f"greetlib-{VERSION}.tar.gz"
    assert digest == hashlib.sha256(tarball).hexdigest()


def test_build_log_and_smoke_output_are_kept(
    daytona_session_sandbox: DaytonaSandbox, release_build: str
) -> None:
    sb = daytona_session_sandbox
    assert sb.read_text(f"{release_build}/build.log") == (f"built dist/greetlib-{VERSION}.tar.gz\n")
    assert sb.read_text(f"{release_build}/dist/smoke.txt") == "Hello, build box!\n"


def test_built_package_runs_in_the_build_tree(
    daytona_session_sandbox: DaytonaSandbox, release_build: str
) -> None:
    result = daytona_session_sandbox.run(
        ["python3", "-m", "greetlib", "Daytona"], cwd=release_build, check=True
    )

    assert result.stdout == "Hello, Daytona!\n"


def test_source_tree_uploaded_as_one_tarball_builds(
    daytona_session_sandbox: DaytonaSandbox, scratch: str
) -> None:
    """Pack a tree locally, upload it in one call, unpack and build it remotely."""
    sources = {
        **SOURCES,
        "greetlib/__init__.py": SOURCES["greetlib/__init__.py"].replace(VERSION, "2.0.0rc1"),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, text in sources.items():
            content = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    sb = daytona_session_sandbox
    sb.upload(buffer.getvalue(), f"{scratch}/src.tar.gz")

    sb.run(["tar", "xzf", "src.tar.gz"], cwd=scratch, check=True)
    result = sb.run(["sh", "build.sh"], cwd=scratch, check=True)

    assert result.stdout == "built dist/greetlib-2.0.0rc1.tar.gz\n"
    listing = sb.run(["ls", "dist"], cwd=scratch, check=True).stdout.split()
    assert sorted(listing) == ["SHA256SUMS", "greetlib-2.0.0rc1.tar.gz", "smoke.txt"]


def test_syntax_error_fails_the_build_without_an_artifact(
    daytona_session_sandbox: DaytonaSandbox, scratch: str
) -> None:
    sb = daytona_session_sandbox
    broken = {**SOURCES, "greetlib/core.py": "def greet(name:\n    return name\n"}
    write_project(sb, scratch, broken)

    result = sb.run(["sh", "build.sh"], cwd=scratch)

    assert result.exit_code != 0
    assert "SyntaxError" in result.stderr  # from the first step that imports the module
    assert "built dist" not in result.stdout
    assert sb.run("ls dist/*.tar.gz", cwd=scratch).exit_code != 0
