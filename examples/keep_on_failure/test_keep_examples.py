"""Keeping a failed test's sandbox to look into after the run.

These tests pass. To see a sandbox kept, make them fail: ``KEEP_DEMO_FAIL=1``. Then

- `test_migration_creates_the_schema` (``keep="failed"`` in its marker) is kept;
- `test_nightly_report_totals` (``@pytest.mark.investigate``, the conftest's hook) is kept;
- `test_login_with_a_token` (``keep="never"``: its sandbox holds a secret) is deleted, even
  with ``--daytona-keep failed`` or ``always`` (a marker wins over the command line);
- `test_plain_failure` (no marker) is deleted, or kept with ``--daytona-keep failed``.

The end of the run lists the kept sandboxes and the command that deletes them.
"""

from __future__ import annotations

import os

import pytest

from pytest_daytona import DaytonaSandbox

#: Set KEEP_DEMO_FAIL=1 to make every test below fail after it has done its work.
DEMO_FAIL = os.environ.get("KEEP_DEMO_FAIL") == "1"

MIGRATION = """
set -e
mkdir -p db
printf 'CREATE TABLE users (id INTEGER, name TEXT);\\n' > db/0001_users.sql
printf 'CREATE TABLE orders (id INTEGER, user_id INTEGER);\\n' > db/0002_orders.sql
cat db/*.sql > db/schema.sql
grep -c '^CREATE TABLE' db/schema.sql
"""


def fail_on_demand(what: str) -> None:
    if DEMO_FAIL:
        pytest.fail(f"KEEP_DEMO_FAIL=1: {what}")


@pytest.mark.daytona(keep="failed")
def test_migration_creates_the_schema(daytona_sandbox: DaytonaSandbox) -> None:
    """Kept when it fails: `db/` in its workspace shows how far the migration got."""
    tables = daytona_sandbox.run(MIGRATION, check=True)

    assert tables.stdout == "2\n"
    fail_on_demand("look at db/schema.sql in the kept sandbox")


@pytest.mark.investigate
def test_nightly_report_totals(daytona_sandbox: DaytonaSandbox) -> None:
    """Kept when it fails, by the conftest's `pytest_daytona_keep` (the marker above)."""
    sb = daytona_sandbox
    sb.write_text("sales.csv", "region,amount\nnorth,120\nsouth,80\nnorth,30\n")

    total = sb.run(["awk", "-F,", "NR > 1 {sum += $2} END {print sum}", "sales.csv"])

    assert total.stdout == "230\n"
    fail_on_demand("look at sales.csv in the kept sandbox")


@pytest.mark.daytona(keep="never", env={"API_TOKEN": "not-a-real-secret"})
def test_login_with_a_token(daytona_sandbox: DaytonaSandbox) -> None:
    """Never kept: whatever the run's ``keep``, a sandbox holding a secret is deleted."""
    login = daytona_sandbox.run('test -n "$API_TOKEN" && echo "token of ${#API_TOKEN} chars"')

    assert login.stdout == "token of 17 chars\n"
    fail_on_demand("this sandbox is deleted all the same")


def test_plain_failure(daytona_sandbox: DaytonaSandbox) -> None:
    """No marker: the run's setting decides (``--daytona-keep``, ini ``daytona_keep``)."""
    assert daytona_sandbox.run(["echo", "ok"]).stdout == "ok\n"
    fail_on_demand("kept only with --daytona-keep failed or always")
