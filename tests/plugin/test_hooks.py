"""The plugin's hooks (`pytest_daytona.newhooks`), against the local server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from daytona import Daytona, DaytonaConfig

from pytest_daytona.local import LocalServer
from tests.inner import settle
from tests.local.conftest import close_client
from tests.pytester_support import RunInner

EXAMPLES = Path(__file__).parents[2] / "examples"

#: A plugin that records every hook call as one JSON line in ``calls.jsonl`` (appended, so
#: xdist workers and the controller write to the same file).
RECORDER = """
import json
import os
import threading

import pytest

def record(hook, **fields):
    who = os.environ.get("PYTEST_XDIST_WORKER", "main")
    fields.update(who=who, pid=os.getpid(), thread=threading.current_thread().name)
    with open(os.path.join(os.environ["HOOK_LOG_DIR"], "calls.jsonl"), "a") as fh:
        fh.write(json.dumps({"hook": hook, **fields}) + "\\n")


def pytest_daytona_create_params(settings, params):
    labels = params.labels.get("pytest-daytona-scope")
    record("create_params", settings=type(settings).__name__, scope=labels, name=params.name)
    params.labels["team"] = "hooks"
    params.env_vars["FROM_HOOK"] = "yes"


def pytest_daytona_sandbox_ready(sandbox, scope, fresh):
    sandbox.run("echo ready >> ~/ready-count", check=True)
    record("sandbox_ready", id=sandbox.id, scope=scope, fresh=fresh)


def pytest_daytona_before_release(sandbox, scope, outcome):
    record("before_release", id=sandbox.id, scope=scope, outcome=outcome)


def pytest_daytona_keep(sandbox, report):
    record("keep", id=sandbox.id, when=report.when, outcome=report.outcome)
    return None  # the default answers
"""

TESTS = """
import json
import os

import pytest


def seen(name, sandbox):
    with open(os.path.join(os.environ["HOOK_LOG_DIR"], "seen.jsonl"), "a") as fh:
        fh.write(json.dumps({"test": name, "id": sandbox.id}) + "\\n")


def test_passes(daytona_sandbox):
    seen("passes", daytona_sandbox)
    assert daytona_sandbox.run("cat ~/ready-count").stdout == "ready\\n"  # set up before
    assert daytona_sandbox.run("echo $FROM_HOOK").stdout == "yes\\n"
    daytona_sandbox.sdk.refresh_data()  # the labels as the server has them
    assert daytona_sandbox.sdk.labels["team"] == "hooks"


def test_fails(daytona_sandbox):
    seen("fails", daytona_sandbox)
    assert False


def test_skips(daytona_sandbox):
    seen("skips", daytona_sandbox)
    pytest.skip("on purpose")


def test_session(daytona_session_sandbox):
    seen("session", daytona_session_sandbox)
    assert daytona_session_sandbox.run("cat ~/ready-count").stdout == "ready\\n"
"""

#: Each worker checks the session sandbox was set up exactly once, and a sandbox of its own.
XDIST_TESTS = """
def test_session_once(daytona_session_sandbox):
    assert daytona_session_sandbox.run("cat ~/ready-count").stdout == "ready\\n"


def test_function(daytona_sandbox):
    assert daytona_sandbox.run("cat ~/ready-count").stdout == "ready\\n"
"""


def calls(path: Path, hook: str | None = None) -> list[dict[str, Any]]:
    """The recorded hook calls (of `hook`)."""
    log = path / "calls.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    found = [json.loads(line) for line in lines]
    return [c for c in found if hook is None or c["hook"] == hook]


@pytest.fixture
def log_dir(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the recorder writes; the recorder is importable as ``recorder`` (``-p``)."""
    pytester.makepyfile(recorder=RECORDER)
    pytester.syspathinsert()
    monkeypatch.setenv("HOOK_LOG_DIR", str(pytester.path))
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))  # for subprocess runs
    return pytester.path


def test_each_hook_gets_its_arguments(
    pytester: pytest.Pytester, run_inner: RunInner, log_dir: Path
) -> None:
    pytester.makepyfile(test_inner=TESTS)
    result = run_inner("-p", "recorder")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    seen = {s["test"]: s["id"] for s in map(json.loads, (log_dir / "seen.jsonl").open())}

    made = calls(log_dir, "create_params")
    assert sorted(c["scope"] for c in made) == ["function"] * 3 + ["session"]
    assert {(c["settings"], c["name"], c["thread"]) for c in made} == {
        ("Settings", "", "MainThread")
    }
    ready = calls(log_dir, "sandbox_ready")
    assert sorted((c["id"], c["scope"], c["fresh"]) for c in ready) == sorted(
        [(seen[t], "function", True) for t in ("passes", "fails", "skips")]
        + [(seen["session"], "session", True)]
    )
    released = {c["id"]: (c["scope"], c["outcome"]) for c in calls(log_dir, "before_release")}
    assert released == {
        seen["passes"]: ("function", "passed"),
        seen["fails"]: ("function", "failed"),
        seen["skips"]: ("function", "skipped"),
        seen["session"]: ("session", "failed"),  # the run's outcome: a test failed
    }
    kept = {c["id"]: (c["when"], c["outcome"]) for c in calls(log_dir, "keep")}
    assert kept == {
        seen["passes"]: ("call", "passed"),
        seen["fails"]: ("call", "failed"),
        seen["skips"]: ("call", "skipped"),
    }
    hooks = [c["hook"] for c in calls(log_dir)]  # ready before any release, per sandbox
    assert hooks.index("before_release") > hooks.index("sandbox_ready")


def test_sandboxes_made_ahead_get_the_hooks(
    pytester: pytest.Pytester, run_inner: RunInner, log_dir: Path
) -> None:
    check = (
        "    assert daytona_sandbox.run('echo $FROM_HOOK; cat ~/ready-count').stdout"
        " == 'yes\\nready\\n'\n"
    )
    pytester.makepyfile(
        test_inner="".join(f"def test_{n}(daytona_sandbox):\n{check}\n" for n in "abc")
    )
    run_inner("-p", "recorder", "--daytona-prewarm", "2").assert_outcomes(passed=3)
    made = calls(log_dir, "create_params")
    assert len(made) == 3
    assert any(c["thread"].startswith("pytest-daytona-prewarm") for c in made)
    ready = calls(log_dir, "sandbox_ready")
    assert [(c["thread"], c["fresh"]) for c in ready] == [("MainThread", True)] * 3


def test_session_sandbox_set_up_once_per_run_under_n4(
    pytester: pytest.Pytester, server: LocalServer, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", server.token)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the inner controller: "main"
    pytester.makepyfile(test_inner=XDIST_TESTS)
    result = pytester.runpytest_subprocess(
        *("-p", "recorder", "-n", "4", "--dist", "each", "-p", "no:cacheprovider"),
        *("--daytona-backend", "local", "--daytona-api-url", server.api_url),
    )
    result.assert_outcomes(passed=8)  # every test on every one of the 4 workers
    ready = calls(log_dir, "sandbox_ready")
    assert sorted(c["scope"] for c in ready) == ["function"] * 4 + ["session"]
    assert len({c["who"] for c in ready if c["scope"] == "function"}) == 4
    ends = calls(log_dir, "before_release")
    assert [(c["who"], c["outcome"]) for c in ends if c["scope"] == "session"] == [
        ("main", "passed")  # released once, by the controller, with the run's outcome
    ]
    assert server.stats()["creates"] == 5


def test_reused_session_sandbox_set_up_only_when_needed(
    pytester: pytest.Pytester, run_inner: RunInner, log_dir: Path
) -> None:
    pytester.makepyfile(
        test_inner="def test_session(daytona_session_sandbox):\n"
        "    daytona_session_sandbox.run('true', check=True)\n"
    )
    reuse = ("--daytona-reuse",)
    run_inner(*reuse).assert_outcomes(passed=1)  # made without a ready hook
    run_inner("-p", "recorder", *reuse).assert_outcomes(passed=1)
    resumed = [(c["scope"], c["fresh"]) for c in calls(log_dir, "sandbox_ready")]
    assert resumed == [("session", False)]  # resumed, never set up: set up now
    ids = {c["id"] for c in calls(log_dir, "sandbox_ready")}
    run_inner("-p", "recorder", *reuse).assert_outcomes(passed=1)
    assert len(calls(log_dir, "sandbox_ready")) == 1  # resumed with the same settings: not again
    assert {c["id"] for c in calls(log_dir, "before_release")} == ids  # the same sandbox
    changed = ("--daytona-labels", "flavour=other")
    run_inner("-p", "recorder", *reuse, *changed).assert_outcomes(passed=1)
    ready = calls(log_dir, "sandbox_ready")
    assert [(c["scope"], c["fresh"]) for c in ready] == [("session", False), ("session", True)]
    assert ready[1]["id"] not in ids  # settings changed: a new sandbox, set up


@pytest.mark.quick
def test_a_kept_sandbox_is_stopped_and_labelled_not_deleted(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makeconftest("def pytest_daytona_keep(sandbox, report):\n    return report.failed\n")
    pytester.makepyfile(
        test_inner="""
        def test_passes(daytona_sandbox):
            daytona_sandbox.run("true", check=True)

        def test_fails(daytona_sandbox):
            open("failed-id", "w").write(daytona_sandbox.id)
            assert False
        """
    )
    run_inner().assert_outcomes(passed=1, failed=1)
    left = settle(server)
    failed_id = (pytester.path / "failed-id").read_text()
    assert left == {failed_id: "stopped"}  # the passing test's sandbox was deleted
    daytona = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    try:
        assert daytona.get(failed_id).labels["pytest-daytona-kept"] == "true"
    finally:
        close_client(daytona)


def test_a_failing_ready_hook_errors_the_test_and_releases_the_sandbox(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer
) -> None:
    pytester.makeconftest(
        "def pytest_daytona_sandbox_ready(sandbox, scope, fresh):\n"
        "    raise RuntimeError('set-up broke')\n"
    )
    pytester.makepyfile(
        test_inner="def test_a(daytona_sandbox):\n    pass\n\n"
        "def test_b(daytona_session_sandbox):\n    pass\n"
    )
    result = run_inner()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*RuntimeError: set-up broke*"])
    assert settle(server) == {}
    assert server.stats()["creates"] == 2


def test_the_hooks_example_runs_under_xdist(
    pytester: pytest.Pytester, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(EXAMPLES / "hooks", pytester.path / "hooks")
    monkeypatch.setenv("DAYTONA_API_KEY", server.token)
    result = pytester.runpytest_subprocess(
        *("hooks", "-n", "2", "-p", "no:cacheprovider"),
        *("--daytona-backend", "local", "--daytona-api-url", server.api_url),
    )
    result.assert_outcomes(passed=4)
    assert settle(server) == {}
