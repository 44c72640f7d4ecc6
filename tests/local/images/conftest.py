"""Fixtures of the image tests: an image store on the test registry, a server and a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daytona import Daytona, DaytonaConfig

from pytest_daytona.local import LocalServer
from pytest_daytona.local.images import ImageStore
from tests.conftest import RegistryImages
from tests.local.conftest import close_client


@pytest.fixture
def store(tmp_path: Path, test_images: RegistryImages) -> ImageStore:
    return ImageStore(tmp_path / "images", default_registry=test_images.registry.host)


@pytest.fixture
def server(tmp_path: Path, test_images: RegistryImages) -> Iterator[LocalServer]:
    with test_images.server(tmp_path / "data") as srv:
        yield srv


@pytest.fixture
def client(server: LocalServer) -> Iterator[Daytona]:
    daytona = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    yield daytona
    close_client(daytona)
