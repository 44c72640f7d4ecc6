"""The plugin's image settings run the image on the local backend: `--daytona-image`, the
marker's `image`, and `--daytona-snapshot` of a snapshot made from an image (pytester runs
against a bubblewrap server with the test registry on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daytona import CreateSnapshotParams, Daytona, DaytonaConfig

from pytest_daytona.local import LocalServer
from tests.conftest import RegistryImages
from tests.local.conftest import close_client
from tests.pytester_support import RunInner

IN_THE_IMAGE = """
def test_in_image(daytona_sandbox):
    run = daytona_sandbox.run
    assert run("cat /etc/ho-marker").stdout == "from-the-image\\n"
    assert run("echo $HO_IMAGE_ENV").stdout == "from-image\\n"
    assert run("test -e /etc/os-release").exit_code == 1
"""


@pytest.fixture
def server(tmp_path: Path, test_images: RegistryImages) -> Iterator[LocalServer]:
    with test_images.server(tmp_path / "server-data") as srv:
        yield srv


@pytest.mark.quick
def test_the_image_option_runs_the_tests_in_that_image(
    pytester: pytest.Pytester, run_inner: RunInner, test_images: RegistryImages
) -> None:
    pytester.makepyfile(IN_THE_IMAGE)

    result = run_inner("--daytona-image", test_images.busy)

    result.assert_outcomes(passed=1)


def test_the_marker_image_runs_that_test_in_it(
    pytester: pytest.Pytester, run_inner: RunInner, test_images: RegistryImages
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.daytona(image={test_images.app_user!r})
        def test_marked(daytona_sandbox):
            assert daytona_sandbox.run("id -u; echo $HOME").stdout == "1234\\n/home/app\\n"

        def test_unmarked(daytona_sandbox):
            assert daytona_sandbox.run("test -e /etc/os-release").exit_code == 0
        """
    )

    result = run_inner()

    result.assert_outcomes(passed=2)


def test_a_snapshot_made_from_an_image_runs_the_tests_in_it(
    pytester: pytest.Pytester,
    run_inner: RunInner,
    server: LocalServer,
    test_images: RegistryImages,
) -> None:
    daytona = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    try:
        daytona.snapshot.create(CreateSnapshotParams(name="busy-snap", image=test_images.busy))
    finally:
        close_client(daytona)
    pytester.makepyfile(IN_THE_IMAGE)

    result = run_inner("--daytona-snapshot", "busy-snap")

    result.assert_outcomes(passed=1)
    assert server.stats()["creates"] == 1
