"""Issue 20: the report header names the backend and, on the embedded one, the isolation
(bubblewrap or none); without isolation the run says so where pytest shows it by default, in
the header and in the warnings summary (also with ``-q`` and under xdist), not only in a log
record of the server.

"No isolation" is had for real: a ``bwrap`` first on PATH that fails, as bubblewrap does where
the kernel refuses its namespaces, so the server's own ``auto`` choice falls back.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.local.conftest import require_bwrap

SANDBOX_TEST = """
def test_uses(daytona_sandbox):
    assert daytona_sandbox.run("echo hi").stdout == "hi\\n"
"""
WARNING = (
    "*IsolationWarning: pytest-daytona: the local backend's sandboxes are NOT isolated from "
    "this machine (bubblewrap is installed but cannot make its namespaces here): their "
    "commands run as plain processes of your user and can read and change whatever your "
    "user can. Do not run untrusted code in them. Install bubblewrap (apt-get install "
    "bubblewrap) to isolate them."
)
HEADER_WARNING = (
    "daytona: WARNING: sandboxes are NOT isolated from this machine (bubblewrap is installed "
    "but cannot make its namespaces here); do not run untrusted code in them"
)


@pytest.fixture
def broken_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bubblewrap that cannot isolate: the inner runs (subprocesses) find it first."""
    bin_dir = tmp_path / "broken-bin"
    bin_dir.mkdir()
    fake = bin_dir / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--daytona-backend", "local", *args, timeout=120
    )


@pytest.mark.usefixtures("broken_bwrap")
@pytest.mark.parametrize("args", [(), ("-q",), ("-n", "2")], ids=["plain", "quiet", "xdist"])
def test_without_isolation_the_run_warns_where_it_is_seen(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(SANDBOX_TEST)
    result = _run(pytester, *args)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*warnings summary*", WARNING])
    text = result.stdout.str()
    assert text.count("IsolationWarning: pytest-daytona") == 1
    if args != ("-q",):  # -q hides the header (not the warnings summary)
        result.stdout.fnmatch_lines(
            ["daytona: backend=local api_url=<embedded server> * isolation=none", HEADER_WARNING]
        )


@pytest.mark.usefixtures("broken_bwrap")
def test_a_run_that_takes_no_sandbox_names_the_isolation_but_warns_of_nothing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = _run(pytester)
    result.assert_outcomes(passed=1, warnings=0)
    result.stdout.fnmatch_lines(["daytona: backend=local * isolation=none", HEADER_WARNING])


def test_with_bubblewrap_the_header_says_so_and_nothing_warns(pytester: pytest.Pytester) -> None:
    require_bwrap()
    pytester.makepyfile(SANDBOX_TEST)
    result = _run(pytester)
    result.assert_outcomes(passed=1, warnings=0)
    result.stdout.fnmatch_lines(
        ["daytona: backend=local api_url=<embedded server> * isolation=bubblewrap"]
    )
    assert "NOT isolated" not in result.stdout.str()


@pytest.mark.usefixtures("broken_bwrap")
def test_off_the_embedded_backend_no_isolation_is_claimed(pytester: pytest.Pytester) -> None:
    """Daytona's sandboxes, and those of a server at a given URL, are isolated (or not) by
    that server: the header does not guess."""
    pytester.makepyfile("def test_plain():\n    pass\n")
    for args in ([], ["--daytona-backend", "local", "--daytona-api-url", "http://127.0.0.1:9"]):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
        result.assert_outcomes(passed=1)
        assert "isolation=" not in result.stdout.str() and "NOT isolated" not in result.stdout.str()


def test_the_reason_names_a_missing_bubblewrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_daytona.report.isolation import not_isolated_reason

    monkeypatch.setenv("PATH", str(tmp_path))
    assert not_isolated_reason() == "bubblewrap (bwrap) is not installed"
