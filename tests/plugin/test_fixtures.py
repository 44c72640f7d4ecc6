"""The fixtures and handle, run by pytester against a local server."""

from __future__ import annotations

import json
import urllib.request

import pytest

from pytest_daytona.local import LocalServer
from tests.pytester_support import RunInner


def test_daytona_sandbox_is_fresh_per_test_and_deleted(
    pytester: pytest.Pytester, server: LocalServer, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        seen = []

        def test_one(daytona_sandbox):
            seen.append(daytona_sandbox.id)
            daytona_sandbox.write_text("mark.txt", "one")
            assert daytona_sandbox.run("cat mark.txt").stdout == "one"

        def test_two(daytona_sandbox):
            assert daytona_sandbox.id not in seen
            assert daytona_sandbox.run("ls mark.txt").exit_code != 0
        """
    )
    result = run_inner()
    result.assert_outcomes(passed=2)
    stats = server.stats()
    assert stats["creates"] == 2
    assert stats["live"] == 0


def test_handle_runs_commands_and_moves_files(
    pytester: pytest.Pytester, server: LocalServer, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        r"""
        import posixpath
        import pytest
        from pytest_daytona import CommandError, DaytonaSandbox, ExecResult

        def test_handle(daytona_sandbox, tmp_path):
            sb: DaytonaSandbox = daytona_sandbox
            assert posixpath.isabs(sb.workspace) and sb.workspace.endswith("/pytest-workspace")
            assert sb.id == sb.sdk.id and sb.name == sb.sdk.name
            res = sb.run("echo out; echo err >&2; exit 3")
            assert isinstance(res, ExecResult)
            assert (res.exit_code, res.stdout, res.stderr, res.ok) == (3, "out\n", "err\n", False)
            assert res.duration > 0 and not res.timed_out
            with pytest.raises(CommandError, match="exited with code 3"):
                res.check()
            with pytest.raises(CommandError):
                sb.run("false", check=True)
            assert sb.run("pwd").stdout.strip() == sb.workspace
            sb.run("mkdir -p sub/dir", check=True)
            assert sb.run("pwd", cwd="sub/dir").stdout.strip() == sb.workspace + "/sub/dir"
            assert sb.run("echo $GREET", env={"GREET": "hi there"}).stdout == "hi there\n"
            local = tmp_path / "local.bin"
            local.write_bytes(bytes(range(256)))
            remote = sb.upload(local, "in/local.bin")
            assert remote == sb.workspace + "/in/local.bin"
            assert sb.download("in/local.bin") == bytes(range(256))
            sb.upload("text ✓", "t.txt")
            assert sb.read_text("t.txt") == "text ✓"
            sb.write_text(sb.workspace + "/abs.txt", "absolute")
            assert sb.run(["cat", "abs.txt"]).stdout == "absolute"
        """
    )
    run_inner().assert_outcomes(passed=1)
    assert server.stats()["live"] == 0


def test_arguments_reach_the_command_unchanged(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        r"""
        import pytest

        ARGS = ["it's", 'say "hi"', "$HOME and `id`", "a\nb", "ünï ✓ 日本", "", "  spaced  ", "*"]

        def test_argv(daytona_sandbox):
            res = daytona_sandbox.run(["printf", r"[%s]\0", *ARGS])
            assert res.ok, res
            assert res.stdout.split("\0")[:-1] == [f"[{a}]" for a in ARGS]

        def test_env_values(daytona_sandbox):
            env = {f"V{i}": a for i, a in enumerate(ARGS)}
            script = "; ".join(f'printf "[%s]\\0" "$V{i}"' for i in range(len(ARGS)))
            res = daytona_sandbox.run(script, env=env)
            assert res.stdout.split("\0")[:-1] == [f"[{a}]" for a in ARGS]

        def test_stdin(daytona_sandbox):
            text = "".join(ARGS) + "\n"
            assert daytona_sandbox.run("cat", stdin=text).stdout == text
            assert daytona_sandbox.run("wc -c", stdin=b"\x00\xff\x01").stdout.strip() == "3"
        """
    )
    run_inner().assert_outcomes(passed=3)


def test_stdin_file_is_gone_afterwards_and_timeout_is_reported(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        import posixpath

        def scratch(sb):
            root = posixpath.dirname(sb.workspace)
            return sb.run(["ls", "-A", posixpath.join(root, ".pytest-daytona")]).stdout

        def test_stdin_removed(daytona_sandbox):
            assert daytona_sandbox.run("cat", stdin="data").stdout == "data"
            assert scratch(daytona_sandbox) == ""

        def test_timeout(daytona_sandbox):
            res = daytona_sandbox.run("sleep 30", stdin="unused", timeout=1)
            assert res.timed_out and res.exit_code is None and not res.ok
            assert "timed out" in res.stderr.lower()
            assert scratch(daytona_sandbox) == ""  # removed even though the command was killed
            assert daytona_sandbox.run("echo alive").stdout == "alive\\n"
        """
    )
    run_inner().assert_outcomes(passed=2)


def test_bad_env_key_is_rejected_before_any_request(
    pytester: pytest.Pytester, server: LocalServer, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_bad_key(daytona_sandbox, request):
            server_requests = request.config.getoption("--daytona-api-url")
            with pytest.raises(ValueError, match="1BAD"):
                daytona_sandbox.run("true", env={"1BAD": "x"})
        """
    )
    # Count the executes: the sandbox is created (1 exec-free create) and no execute is sent.
    run_inner().assert_outcomes(passed=1)
    assert server.stats()["by_route"].get("POST /process/execute", 0) == 0


def test_session_sandbox_is_shared_and_deleted_at_the_end(
    pytester: pytest.Pytester, server: LocalServer, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        ids = set()

        def test_a(daytona_session_sandbox):
            ids.add(daytona_session_sandbox.id)
            daytona_session_sandbox.write_text("shared.txt", "from a")

        def test_b(daytona_session_sandbox):
            ids.add(daytona_session_sandbox.id)
            assert daytona_session_sandbox.read_text("shared.txt") == "from a"
            assert len(ids) == 1
        """
    )
    run_inner().assert_outcomes(passed=2)
    assert server.stats()["creates"] == 1
    assert server.stats()["live"] == 0


def test_session_sandbox_with_reuse_is_stopped_then_resumed(
    pytester: pytest.Pytester, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        def test_a(daytona_session_sandbox):
            daytona_session_sandbox.run("echo $RANDOM > note", check=True)
            print("SANDBOX", daytona_session_sandbox.id)
        """
    )
    monkeypatch.setenv("DAYTONA_API_KEY", server.token)
    args = [
        "--daytona-backend",
        "local",
        "--daytona-api-url",
        server.api_url,
        "--daytona-reuse",
        "-s",
    ]
    first = pytester.runpytest(*args)
    first.assert_outcomes(passed=1)
    stats = server.stats()
    assert stats["creates"] == 1 and stats["live"] == 1
    assert list(stats["states"].values()) == ["stopped"]
    second = pytester.runpytest(*args)
    second.assert_outcomes(passed=1)
    stats = server.stats()
    assert stats["creates"] == 1  # resumed, not created
    assert stats["by_route"]["POST /sandbox/{sandboxIdOrName}/start"] == 1
    assert list(stats["states"].values()) == ["stopped"]
    ids = {line.split()[-1] for r in (first, second) for line in r.outlines if "SANDBOX" in line}
    assert len(ids) == 1


@pytest.mark.quick
@pytest.mark.usefixtures("stand_in_registry")  # short image names
def test_factory_applies_overrides_and_releases_everything(
    pytester: pytest.Pytester, server: LocalServer, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.daytona(env={"BASE": "marker"})
        def test_factory(daytona_sandbox_factory):
            one = daytona_sandbox_factory(env={"EXTRA": "1"}, labels={"role": "db"})
            two = daytona_sandbox_factory(cpu=2, image="debian:12")
            assert one.id != two.id
            assert one.run("echo $BASE-$EXTRA").stdout == "marker-1\\n"
            assert one.sdk.labels["role"] == "db"
            assert two.sdk.cpu == 2
        """
    )
    run_inner().assert_outcomes(passed=1)
    assert server.stats()["creates"] == 2
    assert server.stats()["live"] == 0


def test_marker_overrides_for_one_test(
    pytester: pytest.Pytester, server: LocalServer, run_inner: RunInner
) -> None:
    special = {"name": "special", "imageName": "debian:12.9"}  # unknown snapshots are a 400
    request = urllib.request.Request(
        f"{server.api_url}/snapshots",
        data=json.dumps(special).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.daytona(env={"LEVEL": "module", "KEEP": "k"}, labels={"m": "1"})

        @pytest.mark.daytona(env={"LEVEL": "test"}, snapshot="special")
        def test_marked(daytona_sandbox):
            assert daytona_sandbox.run("echo $LEVEL-$KEEP").stdout == "test-k\\n"
            assert daytona_sandbox.sdk.snapshot == "special"
            assert daytona_sandbox.sdk.labels["m"] == "1"
            assert daytona_sandbox.sdk.labels["pytest-daytona-scope"] == "function"

        def test_module_level(daytona_sandbox):
            assert daytona_sandbox.run("echo $LEVEL").stdout == "module\\n"
        """
    )
    run_inner("--daytona-env", "LEVEL=cli").assert_outcomes(passed=2)


def test_failing_test_still_releases_its_sandboxes(
    pytester: pytest.Pytester, server: LocalServer, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        def test_fails(daytona_sandbox, daytona_session_sandbox):
            assert daytona_sandbox.run("false").ok
        """
    )
    run_inner().assert_outcomes(failed=1)
    assert server.stats()["creates"] == 2
    assert server.stats()["live"] == 0


def test_interrupted_run_releases_its_sandboxes(
    pytester: pytest.Pytester, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        def test_interrupt(daytona_sandbox, daytona_session_sandbox):
            raise KeyboardInterrupt

        def test_never_runs(daytona_sandbox):
            pass
        """
    )
    monkeypatch.setenv("DAYTONA_API_KEY", server.token)
    # In a subprocess: a KeyboardInterrupt in-process would reach the outer run (and xdist).
    result = pytester.runpytest_subprocess(
        "--daytona-backend", "local", "--daytona-api-url", server.api_url, "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert server.stats()["creates"] == 2
    assert server.stats()["live"] == 0
