"""``pytest --daytona-cleanup`` against a local server holding sandboxes made with the real SDK."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daytona import CreateSandboxFromSnapshotParams, Daytona, DaytonaConfig

from pytest_daytona.config.settings import Settings
from pytest_daytona.leases import create_params, reuse
from pytest_daytona.local import LocalServer
from pytest_daytona.run.coordination import OWNER_FILE, RunDir, ci_labels
from pytest_daytona.tools import cleanup
from tests.inner import settle
from tests.pytester_support import RunInner

#: Registers the command in the inner run (harmless once plugin.py registers the module too).
PLUGIN = ("-p", "pytest_daytona.tools.cleanup")
RUN_A, RUN_B, RUN_C, RUN_D = (uuid.uuid4().hex for _ in range(4))
#: A test the inner run must not run: the command runs no tests.
NEVER_RUN = "def test_must_not_run():\n    open('test-ran', 'w').close()\n"


def make_settings(server: LocalServer, **values: Any) -> Settings:
    return Settings.model_validate(
        {"backend": "local", "api_url": server.api_url, "api_key": server.token, **values}
    )


@pytest.fixture(autouse=True)
def run_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run directories in a private parent, so no other run on this machine is touched."""
    parent = tmp_path / "runs"
    monkeypatch.setattr(cleanup, "RUN_DIR_PARENT", parent)
    return parent


@pytest.fixture
def fleet(server: LocalServer, pytester: pytest.Pytester) -> Iterator[dict[str, str]]:
    """Five sandboxes by name -> id: two plain plugin ones (``plain``; ``ci`` with CI labels),
    ``foreign`` (not the plugin's), ``reused`` (stopped, unclaimed) and ``claimed`` (in use)."""
    pytester.makepyfile(NEVER_RUN)
    plain, reusing = make_settings(server), make_settings(server, reuse=True)
    labels = {
        "plain": create_params.build_labels(plain, run_id=RUN_A, worker="main", scope="function"),
        "ci": {
            **create_params.build_labels(plain, run_id=RUN_B, worker="gw1", scope="session"),
            **ci_labels({"GITHUB_RUN_ID": "4242", "GITHUB_JOB": "tests", "CI": "true"}),
        },
        "foreign": {"team": "infra"},
        "reused": {
            **create_params.build_labels(reusing, run_id=RUN_C, worker="main", scope="session"),
            reuse.REUSE_KEY_LABEL: "proj",
        },
        "claimed": {
            **create_params.build_labels(reusing, run_id=RUN_D, worker="main", scope="session"),
            reuse.REUSE_KEY_LABEL: "other",
            **reuse.claim_labels(RUN_D),
        },
    }
    client = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    ids = {}
    for name, given in labels.items():
        sandbox = client.create(CreateSandboxFromSnapshotParams(name=name, labels=given))
        if name == "reused":
            sandbox.stop()
        ids[name] = sandbox.id
    yield ids


def remaining(server: LocalServer, ids: dict[str, str]) -> set[str]:
    """Names of the fleet's sandboxes still there."""
    states = settle(server)
    return {name for name, sandbox_id in ids.items() if sandbox_id in states}


def deletes(server: LocalServer) -> int:
    return int(server.stats()["by_route"].get("DELETE /sandbox/{sandboxIdOrName}", 0))


def run_cleanup(run_inner: RunInner, *args: str) -> pytest.RunResult:
    return run_inner(*PLUGIN, "--daytona-cleanup", *args)


def assert_no_tests(result: pytest.RunResult, path: Path) -> None:
    """No session started, no test ran, no test summary."""
    output = result.stdout.str()
    assert "test session starts" not in output, output
    assert not re.search(r"\b(collected|passed|no tests ran)\b", output), output
    assert not (path / "test-ran").exists()


def test_dry_run_lists_and_deletes_nothing(
    run_inner: RunInner,
    server: LocalServer,
    fleet: dict[str, str],
    pytester: pytest.Pytester,
) -> None:
    result = run_cleanup(run_inner, "--daytona-cleanup-older-than", "0s")
    assert result.ret == 0, result.stdout.str()
    assert deletes(server) == 0
    assert remaining(server, fleet) == set(fleet)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*ID*NAME*STATE*AGE*RUN-ID*SCOPE*REUSE-KEY*WORKER",
            f"{fleet['plain']}*plain*started*s*{RUN_A}*function*-*main",
            "skipped 1 sandbox claimed by a run that is still running",
            "skipped 1 reused sandbox (add --daytona-cleanup-reused*",
            "would delete 2 sandboxes; add --daytona-cleanup-yes to delete them",
        ]
    )
    assert output.splitlines()[-1].startswith("would delete 2 sandboxes")
    assert f"{fleet['ci']}" in output and RUN_B in output
    for other in ("foreign", "reused", "claimed"):
        assert fleet[other] not in output
    assert server.token not in output + result.stderr.str()
    assert_no_tests(result, pytester.path)


def test_yes_deletes_exactly_the_plugins_unreused_unclaimed_sandboxes(
    run_inner: RunInner,
    server: LocalServer,
    fleet: dict[str, str],
    pytester: pytest.Pytester,
) -> None:
    result = run_cleanup(run_inner, "--daytona-cleanup-older-than", "0s", "--daytona-cleanup-yes")
    assert result.ret == 0, result.stdout.str()
    lines = result.stdout.lines
    assert f"deleted {fleet['plain']} (plain)" in lines  # in the API's list order
    assert f"deleted {fleet['ci']} (ci)" in lines
    assert lines[-1] == "deleted 2 sandboxes"
    assert deletes(server) == 2
    assert remaining(server, fleet) == {"foreign", "reused", "claimed"}
    assert_no_tests(result, pytester.path)


def test_the_default_age_spares_new_sandboxes(
    run_inner: RunInner, server: LocalServer, fleet: dict[str, str]
) -> None:
    result = run_cleanup(run_inner, "--daytona-cleanup-yes")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["spared 4 sandboxes younger than 1h (pass --daytona-cleanup-older-than*", "no sandbox*"]
    )
    assert deletes(server) == 0
    assert remaining(server, fleet) == set(fleet)


@pytest.mark.parametrize(
    ("args", "deleted"),
    [
        (["--daytona-cleanup-run-id", RUN_A], {"plain"}),
        (["--daytona-cleanup-ci-job", "4242"], {"ci"}),  # GitHub's run id
        (["--daytona-cleanup-ci-job", "tests"], {"ci"}),  # GitHub's job name
        (["--daytona-cleanup-ci-job", "999"], set()),
        (["--daytona-cleanup-reuse-key", "proj"], set()),  # reused: spared without the flag
        (["--daytona-cleanup-reuse-key", "proj", "--daytona-cleanup-reused"], {"reused"}),
        (["--daytona-cleanup-reused"], {"plain", "ci", "reused"}),  # never the claimed one
    ],
)
def test_filters_and_reused(
    run_inner: RunInner,
    server: LocalServer,
    fleet: dict[str, str],
    args: list[str],
    deleted: set[str],
) -> None:
    result = run_cleanup(
        run_inner, "--daytona-cleanup-older-than", "0s", "--daytona-cleanup-yes", *args
    )
    assert result.ret == 0, result.stdout.str()
    assert remaining(server, fleet) == set(fleet) - deleted
    assert deletes(server) == len(deleted)


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_live_runs_are_spared_and_dead_run_dirs_removed(
    run_inner: RunInner, server: LocalServer, fleet: dict[str, str], run_parent: Path
) -> None:
    live = RunDir.create(RUN_A, run_parent)  # owned by this (live) process
    dead = [RunDir.create(f"dead-{n}", run_parent) for n in range(2)]
    for run_dir in dead:
        (run_dir.path / OWNER_FILE).write_text(f"{dead_pid()} host\n")

    listed = run_cleanup(run_inner, "--daytona-cleanup-older-than", "0s")
    assert listed.ret == 0, listed.stdout.str()
    listed.stdout.fnmatch_lines(
        [
            "skipped 1 sandbox of runs still alive on this machine",
            f"would remove 2 run directories of dead runs under {run_parent}",
            "would delete 1 sandbox; add --daytona-cleanup-yes*",
        ]
    )
    assert all(run_dir.path.is_dir() for run_dir in dead)

    result = run_cleanup(run_inner, "--daytona-cleanup-older-than", "0s", "--daytona-cleanup-yes")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"removed 2 run directories of dead runs under {run_parent}"])
    assert remaining(server, fleet) == {"plain", "foreign", "reused", "claimed"}
    assert live.path.is_dir()
    assert not any(run_dir.path.exists() for run_dir in dead)


def test_failed_deletes_exit_1(
    run_inner: RunInner,
    server: LocalServer,
    fleet: dict[str, str],
    pytester: pytest.Pytester,
) -> None:
    server.inject_fault("DELETE /sandbox/{sandboxIdOrName}", 500, count=50)
    result = run_cleanup(
        run_inner,
        *("--daytona-cleanup-older-than", "0s", "--daytona-cleanup-yes"),
        *("--daytona-retry-budget", "0"),
    )
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            f"FAILED {fleet['plain']} (plain): delete sandbox*failed: HTTP 500: injected fault*",
            "could not delete 2 of 2 sandboxes*",
        ]
    )
    assert remaining(server, fleet) == set(fleet)
    assert_no_tests(result, pytester.path)


@pytest.mark.quick
def test_a_sandbox_already_gone_counts_as_deleted(
    run_inner: RunInner, server: LocalServer, fleet: dict[str, str]
) -> None:
    server.inject_fault("DELETE /sandbox/{sandboxIdOrName}", 404, count=2)
    result = run_cleanup(run_inner, "--daytona-cleanup-older-than", "0s", "--daytona-cleanup-yes")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["deleted 2 sandboxes"])


@pytest.mark.parametrize("value", ["1x", "soon", "-1h", "", "5"])
def test_a_bad_age_is_a_usage_error(run_inner: RunInner, value: str) -> None:
    result = run_cleanup(run_inner, f"--daytona-cleanup-older-than={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    alone = ": a number alone could mean seconds or minutes" if value == "5" else ""
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --daytona-cleanup-older-than = {value!r} (from the command line): must be "
            f"a duration with a unit (s, m, h, d or w){alone}; fix: pass a duration (30s, 15m, "
            "2h, 1d, 1w or 1h30m), or 0s for any age"
        ]
    )


def test_invalid_settings_exit_4_without_the_key(run_inner: RunInner, server: LocalServer) -> None:
    result = run_cleanup(run_inner, "--daytona-timeout", "soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*daytona_timeout = 'soon' (from --daytona-timeout)*"])
    assert server.token not in result.stdout.str() + result.stderr.str()


def test_an_embedded_server_has_nothing_to_clean(
    pytester: pytest.Pytester, server: LocalServer
) -> None:
    pytester.makepyfile(NEVER_RUN)
    result = pytester.runpytest(
        *PLUGIN, "-p", "no:cacheprovider", "--daytona-backend", "local", "--daytona-cleanup"
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*nothing to clean*--daytona-api-url*"])
    assert server.stats()["requests"] == 0
    assert_no_tests(result, pytester.path)


def test_no_api_key_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider", "--daytona-cleanup")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: no Daytona API key: set the DAYTONA_API_KEY*"])
