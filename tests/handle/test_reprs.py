"""Issue 20: a command's duration shows rounded to milliseconds in reprs and messages; the
value itself stays exact."""

from __future__ import annotations

import pytest

from pytest_daytona.errors import CommandError
from pytest_daytona.handle.command_log import CommandLog
from pytest_daytona.results import ExecResult

pytestmark = pytest.mark.quick

EXACT = 0.010182824000366963


def _result(**overrides: object) -> ExecResult:
    fields: dict[str, object] = {
        "exit_code": 0,
        "stdout": "hi\n",
        "stderr": "",
        "timed_out": False,
        "duration": EXACT,
        "command": "echo hi",
    }
    fields.update(overrides)
    return ExecResult(**fields)  # type: ignore[arg-type]


def test_an_exec_results_repr_rounds_the_duration_and_keeps_the_value() -> None:
    result = _result()
    assert repr(result) == (
        "ExecResult(exit_code=0, stdout='hi\\n', stderr='', timed_out=False, duration=0.01, "
        "command='echo hi')"
    )
    assert result.duration == EXACT
    assert repr(_result(duration=12.34567)).count("duration=12.346,") == 1


def test_a_command_records_repr_rounds_the_duration_and_keeps_the_value() -> None:
    record = CommandLog().add(_result(duration=1.23456789), "sub")
    assert "duration=1.235, stdout_tail='hi'" in repr(record)
    assert repr(record).startswith("CommandRecord(number=")
    assert record.duration == 1.23456789


def test_a_timeout_message_rounds_the_duration() -> None:
    result = _result(exit_code=None, timed_out=True, duration=2.0004999)
    with pytest.raises(CommandError, match=r"^command timed out after 2s: echo hi\n"):
        result.check()
