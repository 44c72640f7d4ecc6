"""What every example suite shares: the base image of the image examples.

On Daytona it is ``python:3.12-slim``. On the embedded local backend (``--daytona-backend
local``) it is a small image of this machine's own programs, served by a registry on loopback
that this conftest starts (`example_registry.py`): the local backend pulls and runs real OCI
images, but these machines reach no public image registry.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def _backend(config: pytest.Config) -> str:
    """The backend as the plugin reads it: ``--daytona-backend``, then the env, then the ini."""
    given = config.getoption("daytona_backend") or os.environ.get("PYTEST_DAYTONA_BACKEND")
    return str(given or config.getini("daytona_backend") or "daytona").strip().lower()


@pytest.fixture(scope="session")
def example_base_image(pytestconfig: pytest.Config) -> Iterator[str]:
    """The image reference the image examples build on."""
    if _backend(pytestconfig) != "local":
        yield "python:3.12-slim"
        return
    from example_registry import ExampleRegistry

    registry = ExampleRegistry()
    try:
        yield registry.image
    finally:
        registry.close()
