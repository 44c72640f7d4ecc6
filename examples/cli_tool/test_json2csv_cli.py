"""Testing a command-line tool (json2csv.py, next to this file) inside a disposable sandbox.

Every test gets a fresh sandbox with the tool and a sample input already uploaded, so tests
can scribble files, run it with odd arguments and break things without affecting each other.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from pytest_daytona import CommandError, DaytonaSandbox, ExecResult

TOOL = Path(__file__).with_name("json2csv.py")
PEOPLE = [
    {"name": "Ada", "role": "engineer", "team": "compilers"},
    {"name": "Grace", "role": "admiral"},
    {"name": "Linus, Jr.", "role": "maintainer", "team": "kernel"},
]


@pytest.fixture
def cli(daytona_sandbox: DaytonaSandbox) -> DaytonaSandbox:
    """A sandbox with the tool in bin/ and a sample input in people.json (both in the workspace)."""
    daytona_sandbox.upload(TOOL, "bin/json2csv.py")  # a local file: pass a Path
    daytona_sandbox.upload(json.dumps(PEOPLE).encode(), "people.json")  # bytes: the content
    return daytona_sandbox


def json2csv(sb: DaytonaSandbox, *args: str, stdin: str | None = None) -> ExecResult:
    """Run the tool with an argv list: every argument reaches it verbatim, no shell involved."""
    return sb.run(["python3", "bin/json2csv.py", *args], stdin=stdin)


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_converts_a_file_and_writes_nothing_to_stderr(cli: DaytonaSandbox) -> None:
    result = json2csv(cli, "people.json")

    assert result.ok, result.stderr
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout.splitlines()[0] == "name,role,team"
    rows = parse_csv(result.stdout)
    assert [row["name"] for row in rows] == ["Ada", "Grace", "Linus, Jr."]
    assert rows[1]["team"] == ""  # missing keys become empty cells


def test_reads_stdin_when_no_file_is_given(cli: DaytonaSandbox) -> None:
    result = json2csv(cli, stdin='[{"id": 1, "sku": "A-1"}, {"id": 2, "sku": "B-2"}]')

    assert result.ok, result.stderr
    assert result.stdout == "id,sku\n1,A-1\n2,B-2\n"


def test_columns_option_selects_and_orders_columns(cli: DaytonaSandbox) -> None:
    result = json2csv(cli, "--columns", "team,name", "--delimiter", ";", "people.json")

    assert result.ok, result.stderr
    assert result.stdout.splitlines() == [
        "team;name",
        "compilers;Ada",
        ";Grace",
        "kernel;Linus, Jr.",
    ]


def test_argv_items_are_not_expanded_by_a_shell(cli: DaytonaSandbox) -> None:
    """A file name with spaces, `$` and quotes reaches the tool as one argument."""
    awkward = "export $HOME 'final' (v2).json"
    cli.write_text(awkward, '[{"ok": true}]')

    result = json2csv(cli, awkward)

    assert result.ok, result.stderr
    assert result.stdout == "ok\nTrue\n"


def test_shell_snippets_can_use_pipes(cli: DaytonaSandbox) -> None:
    """A str command is a shell snippet: pipes and redirections work as in a terminal."""
    result = cli.run("python3 bin/json2csv.py people.json | tail -n +2 | wc -l")

    assert result.ok, result.stderr
    assert result.stdout.strip() == "3"


def test_empty_array_warns_on_stderr_but_succeeds(cli: DaytonaSandbox) -> None:
    result = json2csv(cli, stdin="[]")

    assert result.exit_code == 0
    assert result.stdout == "\n"  # a header with no columns
    assert result.stderr == "json2csv: warning: input has no rows\n"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('[{"name": "Ada",}]', "invalid JSON at line 1 column 17"),
        ('{"name": "Ada"}', "expected a JSON array of objects, got dict"),
        ('[{"name": "Ada"}, ["Grace"]]', "row 1 is list, expected an object"),
    ],
    ids=["trailing-comma", "not-an-array", "row-not-an-object"],
)
def test_bad_input_exits_2_with_a_message_on_stderr(
    cli: DaytonaSandbox, payload: str, message: str
) -> None:
    result = json2csv(cli, stdin=payload)

    assert not result.ok
    assert result.exit_code == 2
    assert result.stdout == ""  # nothing half-written on stdout
    assert result.stderr.startswith(f"json2csv: {message}")
    assert result.stderr.count("\n") == 1  # one line, no traceback


def test_missing_file_exits_1(cli: DaytonaSandbox) -> None:
    result = json2csv(cli, "nope.json")

    assert result.exit_code == 1
    assert "cannot read nope.json: No such file or directory" in result.stderr


def test_unknown_option_is_a_usage_error(cli: DaytonaSandbox) -> None:
    result = json2csv(cli, "--colums", "name")

    assert result.exit_code == 2
    assert "unrecognized arguments: --colums" in result.stderr


def test_check_true_raises_command_error_with_the_details(cli: DaytonaSandbox) -> None:
    with pytest.raises(CommandError) as excinfo:
        cli.run(["python3", "bin/json2csv.py"], stdin="not json", check=True)

    error = excinfo.value
    assert error.result.exit_code == 2
    assert "invalid JSON" in error.result.stderr
    assert "exited with code 2" in str(error)  # the message shows code and output tail
    assert "invalid JSON" in str(error)


def test_check_returns_the_result_so_calls_chain(cli: DaytonaSandbox) -> None:
    header = json2csv(cli, "people.json").check().stdout.splitlines()[0]

    assert header == "name,role,team"


def test_a_tool_stuck_on_stdin_is_cut_off_by_the_timeout(cli: DaytonaSandbox) -> None:
    """Nothing ever closes the pipe, so the tool would wait; `timeout` ends the command."""
    result = cli.run("sleep 5 | python3 bin/json2csv.py", timeout=1)

    assert result.timed_out
    assert result.exit_code is None
    assert not result.ok
    # The sandbox is still usable after a timed-out command.
    assert cli.run("echo still here").stdout == "still here\n"


def test_timeout_with_check_raises(cli: DaytonaSandbox) -> None:
    with pytest.raises(CommandError, match="timed out"):
        cli.run("sleep 5", timeout=1, check=True)
