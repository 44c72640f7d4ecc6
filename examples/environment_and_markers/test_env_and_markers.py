"""Per-test sandbox settings, environment variables, working directories and extra sandboxes.

- ``@pytest.mark.daytona(...)`` changes the settings of one test's sandbox (env, labels, ...);
- ``run(..., env=...)`` sets variables for one command, over the sandbox's own;
- ``run(..., cwd=...)`` picks the directory, relative to ``sb.workspace`` unless absolute;
- ``daytona_sandbox_factory(**overrides)`` makes more sandboxes, each configured its own way.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_daytona import DaytonaSandbox

SandboxFactory = Callable[..., DaytonaSandbox]

STAGING = {"APP_ENV": "staging", "DATABASE_URL": "postgres://db.internal:5432/app"}


@pytest.mark.daytona(env=STAGING)
def test_marker_env_reaches_every_command(daytona_sandbox: DaytonaSandbox) -> None:
    sb = daytona_sandbox

    assert sb.run('echo "running in $APP_ENV"').stdout == "running in staging\n"
    assert sb.run(["printenv", "DATABASE_URL"]).stdout == "postgres://db.internal:5432/app\n"


@pytest.mark.daytona(env=STAGING)
def test_per_call_env_wins_over_sandbox_env(daytona_sandbox: DaytonaSandbox) -> None:
    sb = daytona_sandbox

    overridden = sb.run(["printenv", "APP_ENV"], env={"APP_ENV": "migration"})
    assert overridden.stdout == "migration\n"
    # Only for that command: the next one sees the sandbox's value again.
    assert sb.run(["printenv", "APP_ENV"]).stdout == "staging\n"


def test_env_values_are_passed_literally(daytona_sandbox: DaytonaSandbox) -> None:
    """Values are not expanded by the shell: `$`, quotes and spaces arrive unchanged."""
    value = 'it\'s $HOME; `date` && "quoted"'

    result = daytona_sandbox.run(["printenv", "MOTD"], env={"MOTD": value})

    assert result.stdout == value + "\n"


def test_marker_settings_apply_to_one_test_only(daytona_sandbox: DaytonaSandbox) -> None:
    """This test has no marker, so the staging variables above are not set here."""
    result = daytona_sandbox.run(["printenv", "APP_ENV"])

    assert result.exit_code == 1
    assert result.stdout == ""


def test_commands_start_in_the_workspace(daytona_sandbox: DaytonaSandbox) -> None:
    sb = daytona_sandbox

    assert sb.workspace.startswith("/")
    assert sb.run("pwd").stdout == sb.workspace + "\n"


def test_relative_cwd_is_resolved_in_the_workspace(daytona_sandbox: DaytonaSandbox) -> None:
    sb = daytona_sandbox
    sb.write_text("services/api/VERSION", "3.1.4\n")  # relative paths: in the workspace too

    here = sb.run("pwd", cwd="services/api")
    version = sb.run(["cat", "VERSION"], cwd="services/api")

    assert here.stdout == f"{sb.workspace}/services/api\n"
    assert version.stdout == "3.1.4\n"


def test_absolute_cwd_is_used_as_is(daytona_sandbox: DaytonaSandbox) -> None:
    assert daytona_sandbox.run("pwd", cwd="/").stdout == "/\n"


def test_missing_cwd_fails_the_command(daytona_sandbox: DaytonaSandbox) -> None:
    result = daytona_sandbox.run(["echo", "never printed"], cwd="no/such/dir")

    assert not result.ok
    assert result.stdout == ""
    assert "no/such/dir" in result.stderr


@pytest.mark.daytona(labels={"team": "payments", "purpose": "examples"})
def test_labels_are_set_on_the_sandbox(daytona_sandbox: DaytonaSandbox) -> None:
    """Labels show up in the Daytona dashboard and API; the SDK object exposes them."""
    labels = daytona_sandbox.sdk.labels

    assert labels["team"] == "payments"
    assert labels["purpose"] == "examples"


def test_factory_sandboxes_are_configured_and_isolated(
    daytona_sandbox_factory: SandboxFactory,
) -> None:
    """Two sandboxes for a primary/replica check: own env, own files, own identity."""
    primary = daytona_sandbox_factory(env={"ROLE": "primary"}, labels={"role": "primary"})
    replica = daytona_sandbox_factory(env={"ROLE": "replica"}, labels={"role": "replica"})

    assert primary.id != replica.id
    assert primary.run('echo "$ROLE"').stdout == "primary\n"
    assert replica.run('echo "$ROLE"').stdout == "replica\n"
    assert primary.sdk.labels["role"] == "primary"
    assert replica.sdk.labels["role"] == "replica"

    primary.write_text("state/leader.lock", "primary\n")
    assert primary.run(["test", "-f", "state/leader.lock"]).exit_code == 0
    assert replica.run(["test", "-e", "state/leader.lock"]).exit_code == 1  # not shared


@pytest.mark.daytona(env={"REGION": "eu-west"})
def test_factory_sandboxes_start_from_the_marker(
    daytona_sandbox: DaytonaSandbox, daytona_sandbox_factory: SandboxFactory
) -> None:
    """Factory sandboxes get the test's marker settings, with the overrides on top."""
    worker = daytona_sandbox_factory(labels={"role": "queue-worker"})

    assert worker.id != daytona_sandbox.id
    assert worker.run(["printenv", "REGION"]).stdout == "eu-west\n"  # from the marker
    assert worker.sdk.labels["role"] == "queue-worker"  # from the override
    assert "role" not in daytona_sandbox.sdk.labels
