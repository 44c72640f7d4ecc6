"""Settings at start-up: usage errors (exit 4) with every problem listed, header, key handling."""

from __future__ import annotations

import json

import pytest

from pytest_daytona.local import LocalServer
from tests.conftest import INNER_INI
from tests.pytester_support import RunInner

SECRET = "dtn_secret_value_never_shown_123"

# (CLI args, ini lines, env vars, text expected in the error) - each config is invalid.
INVALID: list[tuple[list[str], str, dict[str, str], list[str]]] = [
    (["--daytona-image", "debian:12", "--daytona-snapshot", "s"], "", {}, ["not both"]),
    (["--daytona-api-url", "not a url"], "", {}, ["daytona_api_url", "--daytona-api-url"]),
    ([], "", {"DAYTONA_API_URL": "ftp://x"}, ["daytona_api_url", "env DAYTONA_API_URL"]),
    (["--daytona-timeout", "0"], "", {}, ["daytona_timeout", "--daytona-timeout"]),
    ([], "daytona_timeout = 86401", {}, ["daytona_timeout", "ini daytona_timeout"]),
    (["--daytona-timeout", "soon"], "", {}, ["daytona_timeout", "must be a number"]),
    (["--daytona-cpu", "0"], "", {}, ["daytona_cpu", "greater than 0"]),
    ([], "daytona_memory = -1", {}, ["daytona_memory", "ini daytona_memory"]),
    (["--daytona-disk", "lots"], "", {}, ["daytona_disk", "whole number"]),
    (["--daytona-gpu", "-2"], "", {}, ["daytona_gpu"]),
    (["--daytona-auto-stop-interval", "-1"], "", {}, ["daytona_auto_stop_interval"]),
    ([], "daytona_auto_archive_interval = -5", {}, ["daytona_auto_archive_interval"]),
    (["--daytona-auto-delete-interval", "-2"], "", {}, ["daytona_auto_delete_interval"]),
    (["--daytona-env", "1BAD=x"], "", {}, ["daytona_env", "1BAD"]),
    (["--daytona-env", "NOEQUALS"], "", {}, ["daytona_env"]),
    (["--daytona-workspace", "../up"], "", {}, ["daytona_workspace"]),
    ([], "daytona_reuse = maybe", {}, ["daytona_reuse"]),
    ([], "", {"PYTEST_DAYTONA_REUSE": "perhaps"}, ["daytona_reuse", "PYTEST_DAYTONA_REUSE"]),
    (["--daytona-label", "=empty-key"], "", {}, ["daytona_labels"]),
    (["--daytona-image", ""], "", {}, ["daytona_image"]),
]


@pytest.mark.parametrize(("args", "ini", "env", "expected"), INVALID)
def test_invalid_configuration_is_a_usage_error_with_no_request(
    pytester: pytest.Pytester,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    ini: str,
    env: dict[str, str],
    expected: list[str],
) -> None:
    pytester.makeini(f"{INNER_INI}{ini}\n")
    pytester.makepyfile("def test_x(daytona_sandbox): pass")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAYTONA_API_KEY", server.token)
    result = pytester.runpytest("--daytona-backend", "local", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    for fragment in expected:
        assert fragment in text
    assert server.stats()["requests"] == 0


def test_every_problem_is_listed_at_once(
    pytester: pytest.Pytester, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini(f"{INNER_INI}daytona_memory = -1\n")
    pytester.makepyfile("def test_x(daytona_sandbox): pass")
    monkeypatch.setenv("DAYTONA_API_URL", "nope")
    monkeypatch.setenv("DAYTONA_API_KEY", SECRET)
    result = pytester.runpytest("--daytona-cpu", "0", "--daytona-timeout", "-3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "4 invalid pytest-daytona settings" in text
    for setting, source in [
        ("daytona_api_url", "env DAYTONA_API_URL"),
        ("daytona_cpu", "--daytona-cpu"),
        ("daytona_memory", "ini daytona_memory"),
        ("daytona_timeout", "--daytona-timeout"),
    ]:
        assert any(setting in line and source in line for line in text.splitlines()), setting
    assert SECRET not in result.stdout.str() + text


def test_bad_markers_are_usage_errors_listed_together(
    pytester: pytest.Pytester, server: LocalServer, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.daytona(cpus=2)
        def test_typo(daytona_sandbox): pass

        @pytest.mark.daytona(memory=0, env={"A-B": "x"})
        def test_values(daytona_sandbox): pass

        @pytest.mark.daytona("snap")
        def test_positional(daytona_sandbox): pass

        @pytest.mark.daytona(api_key="k")
        def test_run_wide(daytona_sandbox): pass
        """
    )
    result = run_inner()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "cpus" in text and "test_typo" in text
    assert "daytona_memory" in text and "A-B" in text and "test_values" in text
    assert "keyword arguments only" in text and "test_positional" in text
    assert "api_key" in text and "test_run_wide" in text
    assert server.stats()["requests"] == 0


def test_missing_api_key_fails_only_tests_that_need_a_sandbox(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_plain():
            assert True

        def test_needs_sandbox(daytona_sandbox):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*DAYTONA_API_KEY*--daytona-backend local*"])


@pytest.mark.quick
def test_report_header_names_backend_and_never_the_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_x(): pass")
    monkeypatch.setenv("DAYTONA_API_KEY", SECRET)
    result = pytester.runpytest(
        "--daytona-api-url", "https://example.invalid/api", "--daytona-target", "eu",
        "--daytona-snapshot", "snap-1", "--daytona-reuse",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "daytona: backend=daytona api_url=https://example.invalid/api target=eu"
            " snapshot=snap-1 reuse=on"
        ]
    )
    assert SECRET not in result.stdout.str()


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    text = result.stdout.str()
    for name in ("daytona_sandbox", "daytona_session_sandbox", "daytona_sandbox_factory"):
        assert name in text
    assert "A fresh Daytona sandbox for this test" in text
    assert "One Daytona sandbox shared by every test of the run" in text


def test_embedded_server_is_started_in_process_and_stopped(pytester: pytest.Pytester) -> None:
    """--daytona-backend local alone: the plugin runs its own server and stops it at the end."""
    pytester.makeconftest(
        """
        import json
        import pytest
        from pytest_daytona.fixtures import SESSION_KEY

        @pytest.hookimpl(tryfirst=True)
        def pytest_sessionfinish(session):
            backend = session.config.stash[SESSION_KEY].backend
            stop_server = backend.close

            def record_then_close():  # the last moment the server still runs
                with open("stats.json", "w") as fh:
                    json.dump({"url": backend.api_url, **backend.server.stats()}, fh)
                stop_server()

            backend.close = record_then_close
        """
    )
    pytester.makepyfile(
        """
        def test_a(daytona_sandbox, daytona_session_sandbox):
            assert daytona_sandbox.run("echo local").stdout == "local\\n"
        """
    )
    result = pytester.runpytest("--daytona-backend", "local", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    stats = json.loads((pytester.path / "stats.json").read_text())
    assert stats["url"].startswith("http://127.0.0.1:")
    assert stats["creates"] == 2 and stats["live"] == 0


def test_a_run_without_sandboxes_never_imports_the_sdk(pytester: pytest.Pytester) -> None:
    """Nor the server: the header's look at bubblewrap loads only the standard library's."""
    pytester.makepyfile(
        """
        import sys

        def test_no_sdk():
            assert "daytona_api_client" not in sys.modules
            assert "pytest_daytona.local.server" not in sys.modules
            assert "pytest_daytona.local.app" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess("--daytona-backend", "local", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("args", [["--help"], ["--collect-only", "-q"], ["-q"]])
def test_no_run_directory_is_left_behind(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    tmp = pytester.path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == 0
    assert [p for p in tmp.rglob("*") if p.is_file() or p.parent != tmp] == []
