"""Fixtures for every test directory."""

from __future__ import annotations

import pytest

#: pytest-asyncio (a test dependency, for the async fixtures) warns in every run whose ini
#: does not set its loop scope; this project's ini sets it, and so do pytester's inner runs.
INNER_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytest's `pytester`, with an ini file that only sets pytest-asyncio's loop scope (a
    test's own `makeini` replaces it)."""
    pytester.makeini(INNER_INI)
    return pytester
