"""Fixtures for every test directory."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import pytest

from pytest_daytona.local import LocalServer
from pytest_daytona.local.images.options import ENV_DEFAULT_REGISTRY
from tests.local.images.registry import Layer, Registry, build_image, python_root

#: pytest-asyncio (a test dependency, for the async fixtures) warns in every run whose ini
#: does not set its loop scope; this project's ini sets it, and so do pytester's inner runs.
INNER_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


#: xdist workers per CPU for ``-n auto``. Half of this suite's time is spent waiting (inner
#: pytest runs starting, deadlines, sandboxes starting and stopping): on 2 cores, 4 workers
#: finish the suite in ~0.8 of the time 2 take (bench/README.md, "The project's own tests").
WORKERS_PER_CPU = 2


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: `WORKERS_PER_CPU` workers per CPU this process may use."""
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return WORKERS_PER_CPU * (len(usable) if usable else os.cpu_count() or 1)


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytest's `pytester`, with an ini file that only sets pytest-asyncio's loop scope (a
    test's own `makeini` replaces it)."""
    pytester.makeini(INNER_INI)
    return pytester


# -- images: a real registry on loopback, shared by the tests of one process ------------------

#: Public image names tests use as stand-ins (the local server resolves short names against
#: the test registry, which holds a small busybox image under each of them).
STAND_IN_NAMES = (
    "library/debian:12.9",
    "library/debian:12",
    "library/debian:12-slim",
    "library/alpine:3.20",
    "library/python:3.12-slim",
)


@dataclass(frozen=True)
class RegistryImages:
    """The test registry and what it holds."""

    registry: Registry
    busy: str  # busybox, a marker file, Env, WorkingDir, a whiteout, two extra layers
    app_user: str  # busybox with User app (1234) and no WorkingDir
    work: Path

    def server(self, data_dir: Path, **options: Any) -> LocalServer:
        """A local server (not started yet) that runs images under bubblewrap, with short
        names resolving against this registry."""
        return LocalServer(
            data_dir, isolation="bwrap", default_registry=self.registry.host, **options
        )


#: What the image tests run: Debian's docker-registry, skopeo, umoci and busybox-static.
IMAGE_TOOLS = ("docker-registry", "skopeo", "umoci", "busybox")


@pytest.fixture(scope="session")
def test_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryImages]:
    """A `docker-registry` on a loopback port with the test images pushed to it. Without the
    tools: a failure under CI (whose .ci/run installs them), a skip elsewhere (the quick
    start's machine may have only Python)."""
    missing = [tool for tool in IMAGE_TOOLS if shutil.which(tool) is None]
    if missing:
        message = f"image tests need {', '.join(missing)}: apt-get install " + " ".join(
            "busybox-static" if tool == "busybox" else tool for tool in missing
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("registry")
    registry = Registry(root).start()
    try:
        work = root / "build"
        work.mkdir()
        busy = build_image(
            registry,
            "busy:1",
            work,
            layers=[
                Layer({"etc/ho-marker": b"from-the-image\n", "etc/gone": b"soon gone\n"}),
                Layer({"etc/gone": None, "work/data.txt": b"data\n"}),
            ],
            env={"HO_IMAGE_ENV": "from-image", "PATH": "/bin"},
            workdir="/work",
        )
        app_user = build_image(registry, "app-user:1", work, user="app", env={"PATH": "/bin"})
        for name in STAND_IN_NAMES:
            subprocess.run(
                [
                    "skopeo",
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                    f"docker://{busy}",
                    f"docker://{registry.host}/{name}",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
        yield RegistryImages(registry, busy, app_user, work)
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def python_image(test_images: RegistryImages, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An image of Debian's Python 3.11 userland (from Debian's packages) plus busybox, in
    the test registry (built once per test process; the packages are downloaded once per run)."""
    shared = tmp_path_factory.getbasetemp().parent / "python-root"
    with filelock.FileLock(str(shared) + ".lock"):
        rootfs = python_root(shared)
    return build_image(
        test_images.registry,
        "python:3.11",
        test_images.work,
        base=rootfs,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
    )


@pytest.fixture(scope="session")
def stand_in_registry(test_images: RegistryImages) -> Iterator[str]:
    """Short image names (``debian:12.9``) resolve against the test registry in every local
    server this process starts (the plugin's too), through the server's environment option."""
    old = os.environ.get(ENV_DEFAULT_REGISTRY)
    os.environ[ENV_DEFAULT_REGISTRY] = test_images.registry.host
    yield test_images.registry.host
    if old is None:
        os.environ.pop(ENV_DEFAULT_REGISTRY, None)
    else:
        os.environ[ENV_DEFAULT_REGISTRY] = old
