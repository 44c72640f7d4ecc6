"""Tests relying on what the hooks in conftest.py did."""

from __future__ import annotations

from pytest_daytona import DaytonaSandbox


def test_the_tool_was_installed_once_for_the_whole_run(
    daytona_session_sandbox: DaytonaSandbox,
) -> None:
    # Under `pytest -n 4` every worker sees one install: the hook ran once per run.
    assert daytona_session_sandbox.run("cat ~/install.log").stdout == "installed\n"


def test_the_installed_tool_works(daytona_session_sandbox: DaytonaSandbox) -> None:
    result = daytona_session_sandbox.run(["sh", "-c", '~/bin/slugify "$1"', "-", "Hello, World!"])
    assert result.stdout == "hello-world\n"


def test_create_params_set_a_variable(daytona_sandbox: DaytonaSandbox) -> None:
    assert daytona_sandbox.run(["printenv", "GREETING"]).stdout == "hello from create params\n"


def test_create_params_added_a_label(daytona_sandbox: DaytonaSandbox) -> None:
    daytona_sandbox.sdk.refresh_data()  # the labels as Daytona has them
    assert daytona_sandbox.sdk.labels["cost-center"] == "examples"
