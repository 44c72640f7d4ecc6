"""Failure diagnostics: the sandboxes a test used and the commands it ran in them.

A failed report (set-up, call or teardown) gets a ``daytona`` section; every test that used
a sandbox gets its ids and names as junit XML properties. Both travel with the report, so
they reach the xdist controller too.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from ..handle.command_log import CommandRecord, position

if TYPE_CHECKING:
    from ..handle.sandbox import DaytonaSandbox

SECTION = "daytona"
ID_PROPERTY = "daytona_sandbox_id"
NAME_PROPERTY = "daytona_sandbox_name"


@dataclass(frozen=True)
class Used:
    """A sandbox a fixture handed out: which fixture, at which scope."""

    sandbox: DaytonaSandbox
    fixture: str
    scope: str


#: Sandboxes of function-scoped fixtures, on the test that got them.
USED_KEY = pytest.StashKey[list[Used]]()
#: The command number this test's commands start at (`command_log.position`).
START_KEY = pytest.StashKey[int]()
#: Sandboxes of wider-scoped fixtures, on the config: a test used one if it requests its fixture.
SHARED_KEY = pytest.StashKey[list[Used]]()


def track(request: pytest.FixtureRequest, sandbox: DaytonaSandbox) -> None:
    """Note that the fixture of `request` handed out `sandbox` (the fixtures call this)."""
    used = Used(sandbox, request.fixturename or "?", request.scope)
    if request.scope == "function":
        request.node.stash.setdefault(USED_KEY, []).append(used)
    else:
        request.config.stash.setdefault(SHARED_KEY, []).append(used)


def used_by(item: pytest.Item) -> list[Used]:
    """The sandboxes `item` used, its own first."""
    requested = set(getattr(item, "fixturenames", ()))
    shared = item.config.stash.get(SHARED_KEY, [])
    return [*item.stash.get(USED_KEY, []), *(u for u in shared if u.fixture in requested)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Each run of a test starts its own record: a rerun (pytest-rerunfailures runs the same
    item again) names its own sandboxes and commands, not those of the tries before it."""
    item.stash[START_KEY] = position()
    item.stash[USED_KEY] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    if call.when == "teardown":  # junitxml reads the properties of the teardown report
        for used in used_by(item):
            item.user_properties.append((ID_PROPERTY, used.sandbox.id))
            item.user_properties.append((NAME_PROPERTY, used.sandbox.name))
    report = yield
    if report.failed:
        text = describe(used_by(item), item.stash.get(START_KEY, 0))
        if text:
            report.sections.append((SECTION, text))
    return report


def describe(used: list[Used], start: int) -> str:
    """The ``daytona`` section: each sandbox, then the commands run in it from `start` on."""
    blocks = []
    for u in used:
        sandbox = u.sandbox
        records, dropped = sandbox.command_log.since(start)
        lines = [f"sandbox {sandbox.name} (id {sandbox.id}): {u.fixture}, {u.scope} scope"]
        if dropped:
            lines.append("  (earlier commands of this test were not kept)")
        lines.extend(_command_lines(record) for record in records)
        if not records and not dropped:
            lines.append("  no commands run in this test")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _command_lines(record: CommandRecord) -> str:
    where = f", cwd {record.cwd}" if record.cwd is not None else ""
    command = record.command.replace("\n", "\n    ")
    lines = [f"  $ {command}", f"    {record.outcome} in {record.duration:.2f}s{where}"]
    for stream, tail in (("stdout", record.stdout_tail), ("stderr", record.stderr_tail)):
        lines.extend(f"    {stream} | {line}" for line in tail.splitlines())
    return "\n".join(lines)
