"""The example runner's own logic, on fake examples, against a real local server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.daytona_examples import run_examples

PASSING = """\
from daytona import Daytona

daytona = Daytona()
sandbox = daytona.create()
print("exec said:", sandbox.process.exec("echo from-the-sandbox").result.strip())
daytona.delete(sandbox)
"""

FAILING = """\
import os

print("cwd is empty:", os.listdir("."))
for line in range(40):
    print("noise", line)
raise SystemExit("the-failure-marker")
"""


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    root = tmp_path / "examples" / "python"
    (root / "good").mkdir(parents=True)
    (root / "bad" / "_async").mkdir(parents=True)
    (root / "good" / "main.py").write_text(PASSING)
    (root / "bad" / "_async" / "main.py").write_text(FAILING)
    return root


def test_table_marks_ok_and_failed_and_exits_nonzero(
    examples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run_examples.main([str(examples), "--tail", "3"], excluded={})
    out = capsys.readouterr().out
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith("| example")
    }
    assert rows == {"bad/_async/main.py": "failed", "good/main.py": "ok"}
    assert status == 1
    assert "1 ok, 1 failed, 0 excluded" in out
    tail = out.split("--- bad/_async/main.py (exit 1), last lines:")[1].splitlines()[1:]
    assert tail == ["    noise 38", "    noise 39", "    the-failure-marker"]


def test_excluding_the_failure_exits_zero(
    examples: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(run_examples.ENV_DIR, str(examples))
    status = run_examples.main([], excluded={"bad/*": "fails on purpose"})
    out = capsys.readouterr().out
    assert status == 0
    assert "| bad/_async/main.py | excluded |" in out
    assert "1 ok, 0 failed, 1 excluded" in out
    assert "excluded: fails on purpose" in out
    assert "last lines" not in out


def test_each_example_gets_a_fresh_empty_cwd_and_only_the_server_env(
    examples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAYTONA_TARGET", "elsewhere")
    env = run_examples.example_env("http://127.0.0.1:1/api", "k")
    assert "DAYTONA_TARGET" not in env
    assert env["DAYTONA_API_URL"] == "http://127.0.0.1:1/api"
    result = run_examples.run_one(examples / "bad/_async/main.py", "bad", env, timeout=60)
    assert result.outcome == "failed"
    assert "cwd is empty: []" in result.output


def test_a_hung_example_is_killed_at_its_timeout(tmp_path: Path) -> None:
    hung = tmp_path / "hung.py"
    hung.write_text("import time\nprint('started', flush=True)\ntime.sleep(600)\n")
    result = run_examples.run_one(hung, "hung.py", {}, timeout=3)
    assert result.outcome == "failed"
    assert result.tail(2) == ["started", "[runner] timed out after 3 s and was killed"]


def test_no_examples_to_run_is_a_failure(tmp_path: Path) -> None:
    assert run_examples.exit_status([]) == 1
    excluded = run_examples.ExampleResult("x.py", "excluded", reason="r")
    assert run_examples.exit_status([excluded]) == 1


def test_from_git_exports_examples_python(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    example = repo / "examples" / "python" / "demo" / "main.py"
    example.parent.mkdir(parents=True)
    example.write_text("print('hi')\n")
    (repo / "README").write_text("not exported\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    dest = tmp_path / "out"
    exported = run_examples.export_from_git(str(repo / ".git"), commit.stdout.strip(), dest)
    assert run_examples.discover(exported) == ["demo/main.py"]
    assert not (dest / "README").exists()


def test_runs_as_a_script(examples: Path) -> None:
    script = Path(run_examples.__file__)
    proc = subprocess.run(
        [sys.executable, str(script), str(examples), "-k", "good", "--isolation", "none"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| good/main.py | ok       |" in proc.stdout
    assert "bad/_async/main.py" not in proc.stdout


def test_an_example_that_exits_zero_fails_its_output_checks(
    examples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = {"good/*": (run_examples.Check(r"^exec said: elsewhere$", True, "exec output"),)}
    status = run_examples.main([str(examples), "-k", "good"], checks=checks)
    out = capsys.readouterr().out
    assert status == 1
    assert "| good/main.py | failed   |" in out
    assert "[runner] check failed, exec output (no /^exec said: elsewhere$/)" in out


def test_a_caught_and_printed_error_is_a_failure() -> None:
    output = "working\nError: Failed to create session: Not Found\ncleaning up\n"
    problems = run_examples.check_output("exec-command/exec_logs_async.py", output, {})
    assert problems == [
        "[runner] check failed, printed an error it caught: "
        "'Error: Failed to create session: Not Found'"
    ]
    assert run_examples.check_output("pty/main.py", "Error: SIGKILL\n", {}) == []


@pytest.mark.quick
def test_checks_ignore_http_trace_lines() -> None:
    output = "Creating snapshot us-1\n[http] POST /api/snapshots 200\n" + "-" * 32 + "\n"
    assert run_examples.check_output("region/main.py", output) == []
    failed = "Creating snapshot us-1\nFailed to create snapshot: Not Found\n" + "-" * 32 + "\n"
    assert run_examples.check_output("region/main.py", failed) == [
        "[runner] check failed, the 'us' snapshot or sandbox printed an error: "
        "'Creating snapshot us-1 / Failed to create snapshot: Not Found'"
    ]
