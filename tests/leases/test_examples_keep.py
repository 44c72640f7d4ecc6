"""``examples/keep_on_failure`` made to fail: the sandboxes it says are kept are, and only those."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from daytona import Daytona, DaytonaConfig

from pytest_daytona.local import LocalServer
from tests.inner import settle
from tests.local.conftest import close_client
from tests.pytester_support import RunInner
from tests.report.test_keep_and_summary import figures

EXAMPLE = Path(__file__).parents[2] / "examples" / "keep_on_failure"
MODULE = "keep_on_failure/test_keep_examples.py"
#: The example's tests whose sandboxes are kept when they fail: by the marker, by the hook.
KEPT = ("test_migration_creates_the_schema", "test_nightly_report_totals")


def test_the_example_keeps_only_the_sandboxes_it_says(
    pytester: pytest.Pytester,
    run_inner: RunInner,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(EXAMPLE, pytester.path / "keep_on_failure")
    assert run_inner("keep_on_failure").ret == 0  # as CI runs it: it passes, nothing kept
    assert settle(server) == {}

    monkeypatch.setenv("KEEP_DEMO_FAIL", "1")
    result = run_inner("keep_on_failure")
    result.assert_outcomes(failed=4)
    line = re.compile(rf"^(\w+) \(pytest-\S+\) for {MODULE}::(\w+)$", re.M)
    kept = dict(line.findall(result.stdout.str()))
    assert sorted(kept.values()) == list(KEPT)  # the summary names them, and only them
    assert settle(server) == dict.fromkeys(kept, "stopped")  # the other two were deleted
    assert figures(result)["kept"] == 2 and figures(result)["deleted"] == 2

    migration = next(i for i, test in kept.items() if test == KEPT[0])
    daytona = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    try:
        for sandbox_id in kept:
            assert daytona.get(sandbox_id).labels["pytest-daytona-kept"] == "true"
        sandbox = daytona.get(migration)
        sandbox.start()  # as the example's README says: the files are as the test left them
        schema = sandbox.process.exec("cat ~/pytest-workspace/db/schema.sql").result
        assert schema.count("CREATE TABLE") == 2
    finally:
        close_client(daytona)

    command = re.search(r"Delete them now with: pytest (.*)$", result.stdout.str(), re.M)
    assert command is not None
    assert run_inner(*command.group(1).split()).ret == 0
    assert settle(server) == {}  # the summary's command deleted them
