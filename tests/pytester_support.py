"""Fixtures for pytester runs of the plugin against a local server the outer test can inspect."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_daytona.config.options import FIELD_SPECS
from pytest_daytona.local import LocalServer

#: Every env var the plugin reads.
ENV_VARS = tuple(spec.env_var for spec in FIELD_SPECS.values() if spec.env_var)

RunInner = Callable[..., pytest.RunResult]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs see only the settings a test gives them; no sandbox is made ahead of need
    (exact create counts) unless a test asks, or PYTEST_DAYTONA_TEST_PREWARM says how many."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_DAYTONA_PREWARM", os.environ.get("PYTEST_DAYTONA_TEST_PREWARM", "0"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    """A local server outside the inner run, so the test can read its counters afterwards."""
    with LocalServer(tmp_path / "server-data") as srv:
        yield srv


@pytest.fixture
def run_inner(
    pytester: pytest.Pytester, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> RunInner:
    """Run pytest in `pytester`'s directory against `server` (local backend, given URL)."""

    def run(*args: str) -> pytest.RunResult:
        monkeypatch.setenv("DAYTONA_API_KEY", server.token)
        return pytester.runpytest(
            "--daytona-backend",
            "local",
            "--daytona-api-url",
            server.api_url,
            "-p",
            "no:cacheprovider",
            *args,
        )

    return run
