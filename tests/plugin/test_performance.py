"""Issue 9: the fewest round trips per test, nothing loaded when no test takes a sandbox,
background provisioning and release (counts from the local server, never wall time)."""

from __future__ import annotations

import pytest

from pytest_daytona.local import LocalServer

from .conftest import RunInner
from .inner import settle

ONE_RUN_EACH = """
import pytest

@pytest.mark.parametrize("n", range(3))
def test_one_run(daytona_sandbox, n):
    assert daytona_sandbox.run("pwd").stdout == daytona_sandbox.workspace + "\\n"
"""

CREATE = "POST /sandbox"
EXECUTE = "POST /process/execute"
DELETE = "DELETE /sandbox/{sandboxIdOrName}"
#: Once per run, not per test: the end-of-run sweep lists what carries the run's id.
SWEEP = "GET /sandbox"


def test_a_test_with_one_run_makes_three_requests(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makepyfile(ONE_RUN_EACH)
    run_inner().assert_outcomes(passed=3)
    routes = server.stats()["by_route"]
    assert routes == {CREATE: 3, EXECUTE: 3, DELETE: 3, SWEEP: 1}
    assert settle(server) == {}
