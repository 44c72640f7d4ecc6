"""Tests that depend on their image: files baked in, the image's ``ENV`` and ``WORKDIR``, and a
declarative image (`daytona.Image`) built into a snapshot, then a sandbox from it.

`example_base_image` (examples/conftest.py) is ``python:3.12-slim`` on Daytona; on the local
backend it is a small image served from a registry on loopback. The local backend pulls it,
unpacks its layers and runs each sandbox with the image as ``/``: what these tests see is the
image, not the machine the tests run on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from example_snapshots import ensure_snapshot

from pytest_daytona import DaytonaSandbox, SandboxFactory

if TYPE_CHECKING:
    from daytona import Daytona

SNAPSHOT = "pytest-daytona-example-app-image"


@pytest.fixture
def image_sandbox(
    daytona_sandbox_factory: SandboxFactory, example_base_image: str
) -> DaytonaSandbox:
    """A sandbox made from the base image (``image=`` works in the marker too, for a name
    known when the tests are collected)."""
    return daytona_sandbox_factory(image=example_base_image)


def test_the_sandbox_runs_in_its_image(image_sandbox: DaytonaSandbox, tmp_path: Path) -> None:
    """A file of the machine the tests run on is not in the sandbox: its ``/`` is the image."""
    here = tmp_path / "only-on-the-test-machine"
    here.write_text("here\n")

    assert image_sandbox.run(["test", "-e", str(here)]).exit_code == 1
    assert image_sandbox.run(["cat", "/etc/passwd"], check=True).stdout.startswith("root:")


@pytest.fixture(scope="session")
def app_snapshot(daytona_client: Daytona, example_base_image: str) -> str:
    """A snapshot built from a declarative image: a file written by ``RUN``, an ``ENV`` and a
    ``WORKDIR``. Made when missing; on Daytona later runs find it by name."""
    from daytona import Image

    image = (
        Image.base(example_base_image)
        .run_commands("mkdir -p /srv/app", "echo 'mode = test' > /srv/app/app.ini")
        .env({"APP_ENV": "test"})
        .workdir("/srv/app")
    )
    ensure_snapshot(daytona_client, SNAPSHOT, image)
    return SNAPSHOT


def test_a_snapshot_built_from_a_declarative_image(
    daytona_sandbox_factory: SandboxFactory, app_snapshot: str
) -> None:
    sb = daytona_sandbox_factory(snapshot=app_snapshot)

    assert sb.run("cat /srv/app/app.ini").stdout == "mode = test\n"  # written by RUN
    assert sb.run("echo $APP_ENV").stdout == "test\n"  # ENV
    assert sb.sdk.get_work_dir() == "/srv/app"  # WORKDIR
    assert sb.sdk.snapshot == app_snapshot


def test_sandboxes_of_one_image_do_not_share_changes(
    daytona_sandbox_factory: SandboxFactory, app_snapshot: str
) -> None:
    one, two = (daytona_sandbox_factory(snapshot=app_snapshot) for _ in range(2))

    one.run("echo changed > /srv/app/app.ini", check=True)

    assert two.run("cat /srv/app/app.ini").stdout == "mode = test\n"
