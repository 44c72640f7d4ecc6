"""Issue 10 point 1: a failed test's report names its sandboxes and the commands it ran in
them; junit XML gets the sandboxes' ids and names; tracebacks show no plugin or SDK frames."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from pytest_daytona.local import LocalServer
from tests.pytester_support import RunInner

CREATE = "POST /sandbox"

#: Records, for each report the controller gets, its sections (under xdist: after transport).
RECORD_REPORTS = """
import json

def pytest_runtest_logreport(report):
    with open("reports.jsonl", "a") as fh:
        entry = {"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
                 "sections": dict(report.sections)}
        fh.write(json.dumps(entry) + "\\n")
"""

TESTS = """
import json
import pytest

def remember(name, sandbox):
    with open(f"{name}.json", "w") as fh:
        json.dump([sandbox.id, sandbox.name], fh)

def test_passes(daytona_sandbox):
    remember("passes", daytona_sandbox)
    daytona_sandbox.run("echo fine", check=True)

def test_fails_in_call(daytona_sandbox):
    remember("fails_in_call", daytona_sandbox)
    daytona_sandbox.run("mkdir -p sub && echo prepared")
    daytona_sandbox.run("printf 'line1\\\\nline2\\\\n'", cwd="sub")
    daytona_sandbox.run("echo to-stdout; echo oops >&2; exit 3", check=True)

def test_session_first(daytona_session_sandbox):
    remember("session", daytona_session_sandbox)
    daytona_session_sandbox.run("echo from-first")

@pytest.fixture
def checked(daytona_sandbox):
    yield daytona_sandbox
    daytona_sandbox.run("echo cleaning; exit 7", check=True)

def test_fails_in_teardown(checked, daytona_session_sandbox):
    remember("fails_in_teardown", checked)
    daytona_session_sandbox.run("echo from-second")
    checked.run("echo body")
"""


def _reports(pytester: pytest.Pytester) -> dict[tuple[str, str], dict[str, Any]]:
    lines = (pytester.path / "reports.jsonl").read_text().splitlines()
    return {
        (entry["nodeid"].split("::")[-1], entry["when"]): entry for entry in map(json.loads, lines)
    }


def _ids(pytester: pytest.Pytester, name: str) -> list[str]:
    loaded: list[str] = json.loads((pytester.path / f"{name}.json").read_text())
    return loaded


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_failed_reports_carry_the_commands_and_junit_the_sandboxes(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer, xdist: tuple[str, ...]
) -> None:
    pytester.makeconftest(RECORD_REPORTS)
    pytester.makepyfile(TESTS)
    result = run_inner("--junitxml=junit.xml", *xdist)
    result.assert_outcomes(passed=3, failed=1, errors=1)
    reports = _reports(pytester)
    with_section = {key for key, entry in reports.items() if "daytona" in entry["sections"]}
    assert with_section == {("test_fails_in_call", "call"), ("test_fails_in_teardown", "teardown")}

    call_id, call_name = _ids(pytester, "fails_in_call")
    section = reports[("test_fails_in_call", "call")]["sections"]["daytona"]
    assert section.splitlines() == [
        f"sandbox {call_name} (id {call_id}): daytona_sandbox, function scope",
        "  $ mkdir -p sub && echo prepared",
        section.splitlines()[2],
        "    stdout | prepared",
        "  $ printf 'line1\\nline2\\n'",
        section.splitlines()[5],
        "    stdout | line1",
        "    stdout | line2",
        "  $ echo to-stdout; echo oops >&2; exit 3",
        section.splitlines()[9],
        "    stdout | to-stdout",
        "    stderr | oops",
    ]
    assert section.splitlines()[2].startswith("    exit 0 in ")
    assert section.splitlines()[5].startswith("    exit 0 in ") and "s, cwd sub" in section
    assert section.splitlines()[9].startswith("    exit 3 in ")

    # Teardown: the test's own sandbox and the shared one, with only this test's commands.
    down_id, down_name = _ids(pytester, "fails_in_teardown")
    session_id, session_name = _ids(pytester, "session")
    section = reports[("test_fails_in_teardown", "teardown")]["sections"]["daytona"]
    own, shared = section.split("\n\n")
    assert (
        own.splitlines()[0]
        == f"sandbox {down_name} (id {down_id}): daytona_sandbox, function scope"
    )
    assert [line for line in own.splitlines() if line.startswith("  $")] == [
        "  $ echo body",
        "  $ echo cleaning; exit 7",
    ]
    assert shared.splitlines()[0] == (
        f"sandbox {session_name} (id {session_id}): daytona_session_sandbox, session scope"
    )
    assert "from-second" in shared and "from-first" not in shared

    # The terminal shows the section under the failure; the traceback ends in the test file.
    text = result.stdout.str()
    result.stdout.fnmatch_lines(["*- daytona -*", "    stderr | oops"])
    assert "sandbox.py" not in text and "results.py" not in text and "errors.py" not in text

    cases = {
        case.get("name"): case for case in ET.parse(pytester.path / "junit.xml").iter("testcase")
    }
    expected = {
        "test_passes": _ids(pytester, "passes"),
        "test_fails_in_call": [call_id, call_name],
        "test_session_first": [session_id, session_name],
        "test_fails_in_teardown": [down_id, down_name, session_id, session_name],
    }
    for name, values in expected.items():
        properties = [(p.get("name"), p.get("value")) for p in cases[name].iter("property")]
        names = ["daytona_sandbox_id", "daytona_sandbox_name"] * (len(values) // 2)
        assert properties == list(zip(names, values, strict=True)), name


@pytest.mark.quick
def test_a_command_failing_in_set_up_shows_the_section_and_no_plugin_frames(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def prepared(daytona_sandbox):
            daytona_sandbox.run("echo installing")
            daytona_sandbox.run("echo no such package >&2; exit 42", check=True)
            return daytona_sandbox

        def test_uses(prepared):
            pass
        """
    )
    result = run_inner()
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*def prepared(daytona_sandbox):*",
            '>*daytona_sandbox.run("echo no such package >&2; exit 42", check=True)',
            "E*CommandError: command exited with code 42: echo no such package >&2; exit 42",
            "*- daytona -*",
            "sandbox * (id *): daytona_sandbox, function scope",
            "  $ echo installing",
            "*",
            "    stdout | installing",
            "  $ echo no such package >&2; exit 42",
            "    exit 42 in *",
            "    stderr | no such package",
        ]
    )
    assert "pytest_daytona/" not in text and "site-packages" not in text
    assert "PytestAssertRewriteWarning" not in text  # the hooks' module is registered cleanly


def test_a_sandbox_that_cannot_be_made_fails_short_naming_the_ones_made(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    """Set-up: one line, no section (no sandbox was had). In the test body the factory's
    failure is as short, and the section names the sandbox made before."""
    pytester.makepyfile(
        """
        def test_set_up(daytona_sandbox):
            pass

        def test_second_make(daytona_sandbox_factory):
            first = daytona_sandbox_factory()
            first.run("echo made")
            daytona_sandbox_factory(snapshot="no-such-snapshot")
        """
    )
    server.inject_fault(CREATE, 500, count=1, message="boom")
    result = run_inner()
    result.assert_outcomes(errors=1, failed=1)
    text = result.stdout.str()
    assert text.count("- daytona -") == 1
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_set_up*",
            "pytest-daytona: create sandbox failed: HTTP 500: boom*",
            "*FAILURES*",
            "*test_second_make*",
        ]
    )
    assert "daytona/_sync" not in text and "pytest_daytona/" not in text


RERUN_TESTS = """
import json
import pathlib

def test_flaky(daytona_sandbox):
    tries = pathlib.Path("tries.jsonl")
    number = len(tries.read_text().splitlines()) + 1 if tries.exists() else 1
    with tries.open("a") as fh:
        fh.write(json.dumps([daytona_sandbox.id, daytona_sandbox.name]) + "\\n")
    daytona_sandbox.run(f"echo try-{number}")
    assert number == 3
"""


def test_under_reruns_each_try_names_its_own_sandbox_and_commands(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    """pytest-rerunfailures runs the same item again: each try's report (the reruns' and the
    last one's) names that try's sandbox with that try's commands, and no earlier one's."""
    pytester.makeconftest(RECORD_REPORTS)
    pytester.makepyfile(RERUN_TESTS)
    result = run_inner("--reruns", "2")
    assert result.parseoutcomes() == {"passed": 1, "rerun": 2}
    tries = [json.loads(line) for line in (pytester.path / "tries.jsonl").read_text().splitlines()]
    assert len({sandbox_id for sandbox_id, _ in tries}) == 3
    calls = [
        json.loads(line)
        for line in (pytester.path / "reports.jsonl").read_text().splitlines()
        if json.loads(line)["when"] == "call"
    ]
    assert [call["outcome"] for call in calls] == ["rerun", "rerun", "passed"]
    for number, (call, (sandbox_id, name)) in enumerate(zip(calls[:2], tries, strict=False), 1):
        assert call["sections"]["daytona"].splitlines() == [
            f"sandbox {name} (id {sandbox_id}): daytona_sandbox, function scope",
            f"  $ echo try-{number}",
            call["sections"]["daytona"].splitlines()[2],
            f"    stdout | try-{number}",
        ]


def test_under_reruns_the_last_failure_shows_its_own_sandbox(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(RERUN_TESTS.replace("number == 3", "number == 9"))
    result = run_inner("--reruns", "1")
    assert result.parseoutcomes() == {"failed": 1, "rerun": 1}
    (first_id, _), (last_id, last_name) = (
        json.loads(line) for line in (pytester.path / "tries.jsonl").read_text().splitlines()
    )
    text = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*- daytona -*",
            f"sandbox {last_name} (id {last_id}): daytona_sandbox, function scope",
            "  $ echo try-2",
        ]
    )
    assert first_id not in text and "no commands run" not in text
