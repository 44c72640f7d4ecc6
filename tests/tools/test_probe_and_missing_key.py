"""Issue 10 point 7: ``pytest --daytona-probe`` and the ``missing_key`` setting (fail, skip,
local), against the embedded local server through the real SDK."""

from __future__ import annotations

import socket

import pytest

from pytest_daytona.local import LocalServer
from tests.conftest import INNER_INI
from tests.inner import settle
from tests.pytester_support import RunInner

TESTS = """
def test_sandbox(daytona_sandbox):
    assert daytona_sandbox.run("echo hi").stdout == "hi\\n"


def test_plain():
    assert 1 + 1 == 2
"""
#: What a probe must not run.
FAILING_TEST = "def test_would_fail():\n    assert False\n"
STEP_LINES = [
    "pytest-daytona probe: backend=local *",
    "  client * for http://127.0.0.1:*",
    "  create * sandbox * (pytest-*-probe-*)",
    "  wait started * state started",
    "  work dir * /home/daytona (home /home/daytona; workspace /home/daytona/pytest-workspace)",
    "  shell and OS * shell *sh; Linux *; *",
    "  delete * deleted",
    "probe passed in *s",
]
CREATE = "POST /sandbox"
DELETE = "DELETE /sandbox/{sandboxIdOrName}"


def closed_port_url() -> str:
    """An API URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


# -- the probe ------------------------------------------------------------------------------


@pytest.mark.quick
@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["alone", "xdist"])
def test_probe_makes_one_sandbox_reports_each_step_deletes_it_and_runs_no_test(
    pytester: pytest.Pytester, run_inner: RunInner, server: LocalServer, xdist: tuple[str, ...]
) -> None:
    pytester.makepyfile(FAILING_TEST)
    result = run_inner("--daytona-probe", *xdist)
    assert result.ret == 0
    result.stdout.fnmatch_lines(STEP_LINES)
    assert "test_would_fail" not in output(result) and "failed" not in output(result)
    assert server.token not in output(result)
    routes = server.stats()["by_route"]
    assert (routes.get(CREATE), routes.get(DELETE)) == (1, 1)  # once, also under xdist
    assert settle(server) == {}


def test_probe_against_an_unreachable_url_names_the_step_and_the_fix_not_the_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(FAILING_TEST)
    secret = "probe-secret-key-0123456789"
    monkeypatch.setenv("DAYTONA_API_KEY", secret)
    url = closed_port_url()
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--daytona-probe", "--daytona-api-url", url,
        "--daytona-retry-budget", "0", "--daytona-timeout", "20",
    )  # fmt: skip
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "  client * for " + url,
            "  create * FAILED after *s",
            'probe FAILED at step "create": create sandbox failed: *Connection refused*',
            f"fix: check that {url} is reachable (--daytona-api-url / DAYTONA_API_URL)",
        ]
    )
    assert "wait started" not in output(result) and "test_would_fail" not in output(result)
    assert secret not in output(result)


def test_probe_without_a_key_fails_at_the_client_step_with_the_fix(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", "--daytona-probe")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "  client * FAILED after *s",
            'probe FAILED at step "client": no Daytona API key',
            "fix: set the DAYTONA_API_KEY environment variable*daytona_missing_key*",
        ]
    )


def test_probe_with_missing_key_skip_and_no_key_says_so_and_passes(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", "--daytona-probe",
                                "--daytona-missing-key", "skip")  # fmt: skip
    assert result.ret == 0
    result.stdout.fnmatch_lines(["no Daytona API key and daytona_missing_key = skip: *skipped*"])


def test_probe_with_invalid_settings_exits_4_naming_the_setting(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", "--daytona-probe",
                                "--daytona-missing-key", "maybe")  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*daytona_missing_key = 'maybe' (from --daytona-missing-key): *"
            "fix: pass fail, skip or local"
        ]
    )


# -- missing_key ----------------------------------------------------------------------------


def test_missing_key_fail_is_the_default_and_errors_only_the_sandbox_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*pytest-daytona: no Daytona API key: set the DAYTONA_API_KEY*"])


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["alone", "xdist"])
def test_missing_key_skip_skips_the_sandbox_tests_with_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: tuple[str, ...]
) -> None:
    pytester.makepyfile(TESTS)
    monkeypatch.setenv("PYTEST_DAYTONA_MISSING_KEY", "skip")
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", *xdist)
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["SKIPPED * pytest-daytona: no Daytona API key (*skip)*"])


def test_missing_key_skip_with_a_key_runs_the_sandbox_tests(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(TESTS)
    run_inner("--daytona-missing-key", "skip").assert_outcomes(passed=2)


def test_missing_key_local_runs_the_sandbox_tests_on_the_embedded_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the ini file; the cloud URL the job would use is left aside with the key absent."""
    pytester.makepyfile(TESTS)
    pytester.makeini(f"{INNER_INI}daytona_missing_key = local\n")
    monkeypatch.setenv("DAYTONA_API_URL", closed_port_url())
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["daytona: backend=local api_url=<embedded server> *"])


def test_missing_key_cannot_be_set_by_a_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.daytona(missing_key="skip")
        def test_it(daytona_sandbox):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--daytona-backend", "local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*daytona_missing_key (from @pytest.mark.daytona*): cannot be set*"]
    )
