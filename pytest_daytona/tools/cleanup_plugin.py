"""The plugin module of ``pytest --daytona-cleanup``: its options, and the hook that runs the
cleanup (`cleanup`) instead of the tests. Importing it imports nothing heavy."""

from __future__ import annotations

import pytest

from .cleanup_options import add_options


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Run the cleanup instead of the tests when ``--daytona-cleanup`` is given."""
    if not config.getoption("daytona_cleanup", False):
        return None
    if config.getoption("help", False) or config.getoption("version", False):
        return None  # pytest's own --help/--version first
    from .cleanup import run_cleanup

    return run_cleanup(config)
