"""The login-shell wrapper, run for real with /bin/sh (dash here) and bash."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_daytona.errors import TAIL_LINES, CommandError
from pytest_daytona.handle.executor import (
    MAX_SCRIPT,
    SCRIPT_ENV,
    backstop_timeout,
    build_script,
    command_to_shell,
    marker,
    new_delimiter,
    parse_output,
    reported_workdir,
    result_from_output,
    shell_quote,
    split_output,
    toolbox_call,
    validate_env,
    validate_env_keys,
)
from pytest_daytona.results import ExecResult
from tests.inner import default_signals

#: The quick development loop (`pytest -m quick`, README: Development) runs all of these.
pytestmark = pytest.mark.quick

TRICKY_ARGS = [
    "",
    " ",
    "two words",
    "it's",
    'say "hi"',
    "$HOME",
    "${HOME}",
    "`id`",
    "$(id)",
    "back\\slash",
    "line1\nline2",
    "trailing newline\n",
    "\ttab",
    "*",
    "-n",
    "--",
    "; && | # ! ~ = & > <",
    "'",
    '"',
    "\\",
    "ümlaut ✓ 日本語",
]

SHELLS = [
    pytest.param("/bin/sh", id="sh"),
    pytest.param(
        "bash", id="bash", marks=pytest.mark.skipif(not shutil.which("bash"), reason="no bash")
    ),
]
#: The deadline every `Box.run` has unless a test gives one (the handle always gives one).
DEFAULT_TIMEOUT = 30.0


@dataclass
class Box:
    """A fake sandbox: a shell, an empty HOME and TMPDIR, combined output like the API's.

    `bin` comes first in PATH: its ``sh`` is `shell` (bash in its POSIX mode as where /bin/sh
    is bash). The script runs in `shell` itself, as `toolbox_call` runs it in bash.
    """

    shell: str
    home: Path
    tmp: Path
    bin: Path
    path: str = "/usr/bin:/bin"

    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}:{self.path}", "HOME": str(self.home), "TMPDIR": str(self.tmp)}

    def run_argv(
        self,
        argv: Sequence[str],
        delimiter: str,
        command: str,
        extra_env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        proc = subprocess.run(
            argv,
            input=b"LEAKED STDIN\n",  # must never reach the command
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.home,
            env={**self.env(), **(extra_env or {})},
            timeout=60,
            check=False,
            start_new_session=True,  # like the toolbox: the command's own process group
            preexec_fn=default_signals,  # and SIGINT not ignored (as the agent starts them)
        )
        return result_from_output(
            command=command,
            output=proc.stdout.decode(),
            delimiter=delimiter,
            exit_code=proc.returncode,
            duration=0.0,
        )

    def run(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin_path: str | None = None,
        remove_stdin: bool = False,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> ExecResult:
        delimiter = new_delimiter()
        script = build_script(
            command,
            cwd=cwd,
            env=env,
            stdin_path=stdin_path,
            delimiter=delimiter,
            remove_stdin=remove_stdin,
            timeout=timeout,
        )
        return self.run_argv([self.shell, "-c", script], delimiter, command_to_shell(command))

    def profile(self, name: str, text: str) -> None:
        (self.home / name).write_text(text)


def require_tool(name: str) -> None:
    """Fail under CI (whose .ci/run installs it), skip elsewhere, without `name`."""
    if shutil.which(name) is None:
        message = f"{name} is not installed: apt-get install {name}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def make_box(shell: str, tmp_path: Path) -> Box:
    home, tmp, bin_dir = tmp_path / "home", tmp_path / "tmp", tmp_path / "bin"
    for directory in (home, tmp, bin_dir):
        directory.mkdir()
    (bin_dir / "sh").symlink_to(shutil.which(shell) or shell)
    return Box(shell, home, tmp, bin_dir)


@pytest.fixture(params=SHELLS)
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Box:
    return make_box(str(request.param), tmp_path)


@pytest.fixture
def timed_box(box: Box) -> Box:
    """`box`, for the tests of deadlines: bash times them with ``read -t``, sh with ``sleep``."""
    return box


def test_argv_items_reach_the_command_unchanged(box: Box) -> None:
    result = box.run(["printf", "%s\\0", *TRICKY_ARGS])
    assert result.ok, result.stderr
    assert result.stdout.split("\0")[:-1] == TRICKY_ARGS
    assert result.stderr == ""


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_code_is_preserved(timed_box: Box, code: int) -> None:
    snippet = timed_box.run(f"echo before; exit {code}")
    argv = timed_box.run(["sh", "-c", f"exit {code}"])
    assert (snippet.exit_code, argv.exit_code) == (code, code)
    assert snippet.stdout == "before\n"
    assert snippet.ok is (code == 0)


def test_killed_command_reports_signal_status(box: Box) -> None:
    assert box.run(["sh", "-c", "kill -9 $$"]).exit_code == 137


def test_stderr_comes_back_apart_from_stdout(timed_box: Box) -> None:
    result = timed_box.run("echo out1; echo err1 >&2; echo out2; printf 'err2 no newline' >&2")
    assert result.stdout == "out1\nout2\n"
    assert result.stderr == "err1\nerr2 no newline"


@pytest.mark.parametrize(
    ("snippet", "stdout"),
    [("printf 'no newline'", "no newline"), ("true", ""), ("printf '\\n\\n'", "\n\n")],
)
def test_stdout_is_exact_whatever_its_ending(box: Box, snippet: str, stdout: str) -> None:
    result = box.run(snippet)
    assert (result.stdout, result.stderr, result.exit_code) == (stdout, "", 0)


def test_snippet_can_use_shell_features(box: Box) -> None:
    snippet = """
greet() { printf 'hello %s\\n' "$1"; }
NAME=world
greet "$NAME" | tr a-z A-Z && echo "chained: $((2 + 3))"
cat <<EOF
heredoc $NAME
EOF
false || echo "or-branch"
"""
    result = box.run(snippet)
    assert result.stdout == "HELLO WORLD\nchained: 5\nheredoc world\nor-branch\n"
    assert result.ok


def test_snippet_syntax_error_is_a_failed_command_not_a_broken_wrapper(box: Box) -> None:
    result = box.run("if true; then echo never")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "syntax error" in result.stderr.lower()


def test_caller_env_wins_over_profile_and_profile_env_is_seen(box: Box) -> None:
    box.profile(".profile", "export FOO=from-profile\nexport BAR=profile-only\n")
    result = box.run('printf "%s|%s" "$FOO" "$BAR"', env={"FOO": "from-caller"})
    assert result.stdout == "from-caller|profile-only"


def test_env_values_with_special_characters_arrive_unchanged(box: Box) -> None:
    env = {f"V{i}": value for i, value in enumerate(TRICKY_ARGS)}
    snippet = " ".join(f'"$V{i}"' for i in range(len(env)))
    result = box.run(f"printf '%s\\0' {snippet}", env=env)
    assert result.stdout.split("\0")[:-1] == TRICKY_ARGS


def test_bash_profile_is_preferred_to_bashrc(box: Box) -> None:
    box.profile(".bashrc", "export WHICH=bashrc\n")
    assert box.run('printf %s "$WHICH"').stdout == "bashrc"
    box.profile(".bash_profile", "export WHICH=bash_profile\n")
    assert box.run('printf %s "$WHICH"').stdout == "bash_profile"


def test_zprofile_and_nvm_are_sourced(box: Box) -> None:
    box.profile(".zprofile", "export Z=zprofile\n")
    (box.home / ".nvm").mkdir()
    (box.home / ".nvm" / "nvm.sh").write_text("nvm_fn() { echo nvm-loaded; }\n")
    result = box.run('printf "%s " "$Z"; nvm_fn')
    assert result.stdout == "zprofile nvm-loaded\n"


def test_profile_output_is_silenced(box: Box) -> None:
    box.profile(".profile", "echo profile-stdout\necho profile-stderr >&2\n")
    result = box.run("echo mine")
    assert (result.stdout, result.stderr) == ("mine\n", "")


@pytest.mark.parametrize(
    "profile",
    [
        "set -e\nfalse\nexport LATE=1\n",
        "set -eu\necho $UNDEFINED_VARIABLE\n",
        "set -x\nset -v\n",
        "set -o noclobber\nset -f\n",
        "trap 'echo profile-exit-trap' EXIT\n",
        "exit 3\n",
        "a=(bash only array syntax)\n",
    ],
    ids=["set-e", "set-u", "xtrace", "noclobber-noglob", "exit-trap", "exit", "bash-syntax"],
)
def test_a_broken_profile_does_not_spoil_the_result(box: Box, profile: str) -> None:
    box.profile(".profile", profile)
    box.profile("file.txt", "")
    snippet = (
        'false; echo "still here [$UNSET_VAR]"; echo * ; echo x > file.txt; echo err >&2; exit 5'
    )
    result = box.run(snippet, env={"MINE": "1"})
    assert result.exit_code == 5
    assert result.stdout == "still here []\nfile.txt\n"
    # A profile that ended the shell is named; the command then ran without profiles.
    stderr = result.stderr.replace(
        f"pytest-daytona: sourcing {box.home}/.profile ended the shell", "NOTE"
    )
    assert stderr in ("err\n", *(f"NOTE (status {n}); {RERUN}err\n" for n in (1, 2, 3)))


RERUN = "running the command without login profiles\n"


def test_a_profile_that_ends_the_shell_is_named_and_the_command_still_runs(timed_box: Box) -> None:
    timed_box.profile(".profile", "export SEEN=1\nexit 3\n")
    result = timed_box.run('echo "[$SEEN]"')
    assert result.stdout == "[]\n"  # it ran without the profile
    assert result.stderr == (
        f"pytest-daytona: sourcing {timed_box.home}/.profile ended the shell (status 3); {RERUN}"
    )
    assert result.exit_code == 0


def test_cwd_is_honoured_after_profiles(box: Box) -> None:
    target = box.home / "dir with 'quotes' and spaces"
    target.mkdir()
    box.profile(".profile", "cd /\n")
    assert box.run("pwd", cwd=str(target)).stdout == f"{target}\n"
    assert box.run("pwd").stdout == f"{box.home}\n"  # a profile's cd is undone


def test_missing_cwd_fails_the_command_with_a_message(box: Box) -> None:
    result = box.run("echo never", cwd="/no/such/dir")
    assert result.exit_code not in (0, None)
    assert result.stdout == ""
    assert "/no/such/dir" in result.stderr


def run_making(
    box: Box, make_dir: str, cwd: str, command: str = "pwd"
) -> tuple[ExecResult, str | None]:
    """`command` by a script that makes `make_dir` first; its result and reported workdir."""
    delimiter = new_delimiter()
    script = build_script(
        command, cwd=cwd, delimiter=delimiter, timeout=DEFAULT_TIMEOUT, make_dir=make_dir
    )
    result = box.run_argv([box.shell, "-c", script], delimiter, command)
    proc = subprocess.run(
        [box.shell, "-c", script], capture_output=True, cwd=box.home, env=box.env(), check=False
    )
    return result, reported_workdir(proc.stdout.decode(), delimiter)


def test_make_dir_is_made_from_the_start_dir_and_the_start_dir_reported(box: Box) -> None:
    box.profile(".profile", "cd /\n")
    result, workdir = run_making(box, "ws", "ws/../ws")
    assert result.ok, result.stderr
    assert result.stdout == f"{box.home}/ws\n"
    assert (box.home / "ws").stat().st_mode & 0o777 == 0o755
    assert workdir == str(box.home)


def test_a_make_dir_that_fails_reports_nothing_and_fails_the_command(box: Box) -> None:
    (box.home / "ws").write_text("a file, not a directory")
    result, workdir = run_making(box, "ws", "ws", "echo never")
    assert result.exit_code not in (0, None)
    assert result.stdout == ""
    assert "ws" in result.stderr
    assert workdir is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [(" workdir=/home/x y", "/home/x y"), (" workdir=relative", None), ("", None)],
)
def test_reported_workdir_is_read_from_the_delimiter_line(line: str, expected: str | None) -> None:
    delimiter = "pytest-daytona-0123456789abcdef"
    combined = f"out\n{delimiter}{line}\nerr\n"
    assert reported_workdir(combined, delimiter) == expected
    assert parse_output(combined, delimiter)[:2] == ("out", "err\n")


def test_stdin_comes_from_the_file(timed_box: Box) -> None:
    stdin = timed_box.tmp / "stdin.txt"
    stdin.write_text("line1\nüñí\n")
    result = timed_box.run(["cat"], stdin_path=str(stdin))
    assert result.stdout == "line1\nüñí\n"
    assert stdin.exists()


def test_missing_stdin_file_fails_the_command_with_a_message(box: Box) -> None:
    result = box.run("echo never", stdin_path=str(box.tmp / "gone"))
    assert result.exit_code not in (0, None)
    assert result.stdout == ""
    assert "gone" in result.stderr
    assert "ended the shell" not in result.stderr  # not mistaken for a broken profile


def test_without_stdin_the_command_reads_dev_null(box: Box) -> None:
    result = box.run("cat; echo eof")
    assert result.stdout == "eof\n"  # the caller's stdin (LEAKED STDIN) is not read


def test_no_file_is_left_and_stdin_is_removed_on_request(timed_box: Box) -> None:
    stdin = timed_box.tmp / "stdin.txt"
    stdin.write_text("x")
    result = timed_box.run("cat >/dev/null; echo err >&2", stdin_path=str(stdin), remove_stdin=True)
    assert result.stderr == "err\n"
    assert list(timed_box.tmp.iterdir()) == []
    assert list(timed_box.home.iterdir()) == []


def test_an_unusable_tmpdir_does_not_matter(timed_box: Box) -> None:
    timed_box.tmp = timed_box.home / "no-such-dir"
    result = timed_box.run("echo out; echo err >&2")
    assert (result.stdout, result.stderr) == ("out\n", "err\n")
    assert [p.name for p in timed_box.home.iterdir()] == []


def test_stderr_keeps_its_trailing_newlines_and_odd_bytes(box: Box) -> None:
    result = box.run("printf 'a\\n\\n\\n' >&2; printf '\\t%s\\n' '*' >&2")
    assert result.stderr == "a\n\n\n\t*\n"


NOTE = "pytest-daytona: timed out after {}s; the command was killed\n"


@pytest.mark.parametrize("limit", [0.2, 1.2, 0.0001])
def test_a_deadline_that_is_not_whole_seconds_is_honoured(timed_box: Box, limit: float) -> None:
    result = timed_box.run(f"sleep {limit + 0.6}; echo late", timeout=limit)
    assert (result.timed_out, result.exit_code, result.ok) == (True, None, False)
    assert result.stdout == ""  # never "late"
    assert result.stderr == NOTE.format(max(limit, 0.001))


def test_a_timed_out_command_keeps_its_partial_output(timed_box: Box) -> None:
    result = timed_box.run("printf 'before\\npartial'; echo err >&2; sleep 5", timeout=0.5)
    assert result.timed_out
    assert result.stdout == "before\npartial"
    assert result.stderr == "err\n" + NOTE.format(0.5)


def test_children_that_ignore_term_are_killed_and_temp_files_removed(timed_box: Box) -> None:
    stdin = timed_box.tmp / "stdin.txt"
    stdin.write_text("in\n")
    survivor = "trap '' TERM; sleep 9; echo survivor"
    # `subprocess.run` returns only once every holder of the output pipe is gone. The sleeps
    # are long (the run ends as soon as they are killed): the grace before the KILL counts
    # scans of /proc, which a loaded machine makes slow (3 s was once not enough).
    result = timed_box.run(
        f"sh -c {shell_quote(survivor)} & (sleep 9; echo late) & cat; wait",
        stdin_path=str(stdin),
        remove_stdin=True,
        timeout=0.5,
    )
    assert result.timed_out
    assert (result.stdout, result.stderr) == ("in\n", NOTE.format(0.5))  # no survivor, no late
    assert list(timed_box.tmp.iterdir()) == []
    assert list(timed_box.home.iterdir()) == []


@pytest.mark.parametrize("code", [124, 137, 143])
def test_a_command_exiting_with_a_kill_status_did_not_time_out(timed_box: Box, code: int) -> None:
    result = timed_box.run(f"echo out; exit {code}", timeout=5)
    assert (result.exit_code, result.timed_out, result.stdout) == (code, False, "out\n")
    killed = timed_box.run(["sh", "-c", "kill -TERM $$"], timeout=5)
    assert (killed.exit_code, killed.timed_out) == (143, False)


def test_a_profile_that_ends_the_shell_reruns_within_the_deadline(timed_box: Box) -> None:
    timed_box.profile(".profile", "exit 3\n")
    assert timed_box.run("echo rerun").stdout == "rerun\n"
    result = timed_box.run("echo rerun; sleep 5; echo late", timeout=0.5)
    assert (result.timed_out, result.stdout) == (True, "rerun\n")
    assert result.stderr.endswith(f"{RERUN}{NOTE.format(0.5)}")


@pytest.mark.parametrize("limit", [5.0, None])
def test_the_command_gets_sigint(box: Box, limit: float | None) -> None:
    # GNU `timeout` restores SIGINT, which an async command of sh would otherwise ignore.
    assert box.run(["sh", "-c", "kill -INT $$"], timeout=limit).exit_code == 130


def test_without_a_deadline_nothing_is_killed(box: Box) -> None:
    result = box.run("sleep 0.3; echo late; echo err >&2; exit 124", timeout=None)
    assert (result.stdout, result.stderr, result.exit_code) == ("late\n", "err\n", 124)


@pytest.mark.parametrize("limit", [0, -1, math.inf, math.nan])
def test_build_script_refuses_a_deadline_that_is_not_positive(limit: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        build_script("true", delimiter=new_delimiter(), timeout=limit)


def test_backstop_comes_after_the_deadline_and_grace() -> None:
    assert [backstop_timeout(t) for t in (0.2, 1, 1.5, 30)] == [4, 4, 5, 33]


def test_killing_the_process_group_ends_everything(box: Box) -> None:
    """What the toolbox does when its own timeout fires: the wrapper, its timer and the
    command's processes (background ones too) are all in the group it kills."""
    mark = f"pdg{new_delimiter()[-8:]}"  # within the 15 characters of a comm
    script = build_script(
        f"cp /bin/sleep ./{mark}; ./{mark} 30 & ./{mark} 31; wait",
        delimiter=new_delimiter(),
        timeout=30,
    )
    proc = subprocess.Popen(
        [box.shell, "-c", script], cwd=box.home, env=box.env(), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert _wait_until(lambda: len(_running(mark)) == 2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait_until(lambda: _running(mark) == [])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _running(name: str) -> list[str]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            if f"({name})" in text and ") Z " not in text:
                found.append(text)
    return found


def _wait_until(check: Callable[[], bool], limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_delimiter_never_appears_in_the_script() -> None:
    delimiter = new_delimiter()
    script = build_script("echo hi", delimiter=delimiter)
    assert delimiter not in script
    assert delimiter not in str(toolbox_call(script))


@pytest.mark.parametrize("runner", ["shell -c", "shell on stdin"])
def test_toolbox_call_survives_shells_and_stdin_delivery(box: Box, runner: str) -> None:
    """As an argument, or piped to the shell on stdin as today's daemon runs it (the command
    text is then the shell's stdin: the wrapper must not read it); the script reaches the
    shell in its environment, which the command does not see."""
    delimiter = new_delimiter()
    script = build_script(
        ["sh", "-c", 'printf "%s\\0" "$@"; printf "[%s]" "${PYTEST_DAYTONA_SCRIPT-unset}"',
         "sh", *TRICKY_ARGS], delimiter=delimiter,
    )  # fmt: skip
    line, env = toolbox_call(script)
    assert list(env) == [SCRIPT_ENV]
    if runner == "shell -c":
        result = box.run_argv([box.shell, "-c", line], delimiter, "printf", env)
    else:
        piped = f"printf '%s' {shell_quote(line)} | {box.shell}"
        result = box.run_argv([box.shell, "-c", piped], delimiter, "printf", env)
    *args, seen = result.stdout.split("\0")
    assert (args, seen, result.exit_code) == (TRICKY_ARGS, "[unset]", 0)


def test_toolbox_call_refuses_what_exceeds_an_environment_string() -> None:
    with pytest.raises(ValueError, match="stdin"):
        toolbox_call("x" * (MAX_SCRIPT + 1))


@pytest.mark.parametrize("value", TRICKY_ARGS)
def test_shell_quote_round_trips(value: str) -> None:
    out = subprocess.run(
        ["/bin/sh", "-c", f"printf %s {shell_quote(value)}"], capture_output=True, check=True
    )
    assert out.stdout.decode() == value
    assert shell_quote(value).startswith("'")


def test_shell_quote_rejects_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        shell_quote("a\0b")


def test_command_to_shell() -> None:
    assert command_to_shell("ls -la | wc -l") == "ls -la | wc -l"
    assert command_to_shell(["echo", "it's"]) == "'echo' 'it'\"'\"'s'"
    assert command_to_shell(("a",)) == "'a'"
    empties: list[str | list[str]] = ["", "  \n", []]
    for empty in empties:
        with pytest.raises(ValueError, match="empty command"):
            command_to_shell(empty)
    with pytest.raises(TypeError):
        command_to_shell(["echo", 1])  # type: ignore[list-item]


@pytest.mark.parametrize("key", ["1A", "A-B", "", "A B", "É", "A=B"])
def test_invalid_env_keys_are_named(key: str) -> None:
    with pytest.raises(ValueError, match="invalid environment variable name") as info:
        validate_env_keys({"GOOD": "1", key: "x"})
    assert repr(key) in str(info.value)
    with pytest.raises(ValueError, match="invalid environment variable name"):
        build_script("true", env={key: "x"}, delimiter=new_delimiter())


@pytest.mark.parametrize("value", [1, None, b"bytes", 1.5, ["x"]])
def test_env_values_that_are_not_str_are_named(value: object) -> None:
    env = {"GOOD": "1", "N": value}
    with pytest.raises(TypeError, match=rf"'N' must be a str, got {type(value).__name__}"):
        validate_env(env)
    with pytest.raises(TypeError, match="'N'"):
        build_script("true", env=env, delimiter=new_delimiter())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1BAD"):  # a bad key is still a ValueError
        validate_env({"1BAD": 1})


def test_valid_env_keys_pass() -> None:
    validate_env_keys({"A": "", "_x": "", "PATH_2": "", "a1_B2": ""})


@pytest.mark.parametrize("bad", ["short", "has space in it!!", "new\nline-delimiter-xx", "x" * 129])
def test_build_script_rejects_unsafe_delimiters(bad: str) -> None:
    with pytest.raises(ValueError, match="delimiter"):
        build_script("true", delimiter=bad)


def test_new_delimiter_is_fresh_each_time() -> None:
    delimiters = {new_delimiter() for _ in range(100)}
    assert len(delimiters) == 100
    assert all(len(d) >= 32 for d in delimiters)


@pytest.mark.parametrize(
    ("combined", "expected"),
    [
        ("out\n\nD\nerr\n", ("out\n", "err\n")),
        ("out\nD\nerr", ("out", "err")),
        ("\nD\n", ("", "")),
        ("partial output, killed", ("partial output, killed", "")),
        ("out\nD", ("out", "")),
        ("D inline is not a delimiter\nD\nerr", ("D inline is not a delimiter", "err")),
    ],
)
def test_split_output(combined: str, expected: tuple[str, str]) -> None:
    delimiter = "pytest-daytona-0123456789abcdef"
    assert split_output(combined.replace("D", delimiter), delimiter) == tuple(
        part.replace("D", delimiter) for part in expected
    )


PROFILE_NOTE = (
    "pytest-daytona: sourcing /h/.profile ended the shell (status 3); "
    "running the command without login profiles\n"
)


@pytest.mark.parametrize(
    ("combined", "expected"),
    [
        ("out\nD\nerr\nMT0.5\nME", ("out", f"err\n{NOTE.format(0.5)}", True)),
        ("out\nD\nerr MT2\n\nME", ("out", f"err \n{NOTE.format(2)}", True)),
        ("out\nD\nerr\nME", ("out", "err\n", False)),
        ("out\nD\nMP3 /h/.profile\nMEerr\nME", ("out", f"{PROFILE_NOTE}err\n", False)),
        ("out\nD\nbg after the end\nMEbg\n", ("out", "bg after the end\nbg\n", False)),
        ("out\nD\nMX not a marker ME", ("out", "MX not a marker ", False)),
        ("out\nD other\nerr", ("out\nD other\nerr", "", False)),
        ("killed from outside", ("killed from outside", "", False)),
    ],
)
def test_parse_output_turns_markers_into_notes(
    combined: str, expected: tuple[str, str, bool]
) -> None:
    delimiter = "pytest-daytona-0123456789abcdef"
    mark = marker(delimiter)
    output = combined.replace("D", delimiter).replace("M", mark)
    stdout, stderr, timed_out = expected
    assert parse_output(output, delimiter) == (
        stdout.replace("D", delimiter),
        stderr.replace("M", mark),
        timed_out,
    )
    result = result_from_output(
        command="c", output=output, delimiter=delimiter, exit_code=143, duration=0.5
    )
    assert (result.timed_out, result.exit_code) == (timed_out, None if timed_out else 143)


def make_result(**overrides: object) -> ExecResult:
    fields: dict[str, object] = {
        "exit_code": 0,
        "stdout": "",
        "stderr": "",
        "timed_out": False,
        "duration": 1.5,
        "command": "make test",
    }
    fields.update(overrides)
    return ExecResult(**fields)  # type: ignore[arg-type]


def test_ok_and_check_pass_through() -> None:
    result = make_result()
    assert result.ok
    assert result.check() is result


def test_check_names_command_exit_code_and_output_tails() -> None:
    stdout = "".join(f"out {i}\n" for i in range(1, 31))
    result = make_result(exit_code=3, stdout=stdout, stderr="boom\n")
    assert not result.ok
    with pytest.raises(CommandError) as info:
        result.check()
    message = str(info.value)
    assert message.startswith("command exited with code 3: make test\n")
    assert f"out {31 - TAIL_LINES}\n" in message and "out 30" in message
    assert f"out {30 - TAIL_LINES}\n" not in message
    assert message.endswith("--- stderr (last 20 lines) ---\nboom")
    assert info.value.result is result
    assert not isinstance(info.value, AssertionError)


def test_check_on_timeout_says_so() -> None:
    result = make_result(exit_code=None, timed_out=True, duration=2.5)
    with pytest.raises(CommandError, match=r"command timed out after 2.5s: make test") as info:
        result.check()
    assert "--- stdout (last 20 lines) ---\n(empty)" in str(info.value)


def test_a_timed_out_result_has_no_exit_code() -> None:
    with pytest.raises(ValueError, match="timed out"):
        make_result(exit_code=1, timed_out=True)
    result = result_from_output(
        command="sleep 9", output="half", delimiter=new_delimiter(), exit_code=-1,
        duration=9.0, timed_out=True,
    )  # fmt: skip
    assert (result.exit_code, result.timed_out, result.stdout, result.ok) == (
        None,
        True,
        "half",
        False,
    )


@pytest.mark.parametrize("limit", [30.0, None])
def test_the_wrapper_of_true_starts_no_program(box: Box, limit: float | None) -> None:
    """Piped to bash as the daemon does: the script runs in that bash, forks for the capture,
    the command and the timer, and starts no program (the profiles' ``id -u`` neither)."""
    require_tool("strace")
    delimiter = new_delimiter()
    line, env = toolbox_call(build_script("true", delimiter=delimiter, timeout=limit))
    trace = box.tmp / "trace"
    subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace), "bash"],
        input=line.encode() + b"\n",
        capture_output=True,
        env={**box.env(), **env},
        check=True,
    )
    started = [
        found.group(1)
        for found in re.finditer(r'execve\("([^"]+)"[^\n]*', trace.read_text())
        if "= -1" not in found.group(0)
    ]
    trace.unlink()
    assert len(started) == 1 and started[0].endswith("bash"), started


def test_an_id_other_than_id_u_still_runs_id(box: Box) -> None:
    box.profile(".profile", 'export GROUPS_SEEN="$(id -g)" USER_SEEN="$(id -u)"')
    result = box.run('echo "$USER_SEEN $GROUPS_SEEN"; type id | head -c 5')
    assert result.stdout == f"{os.geteuid()} {os.getegid()}\nid is", result


def test_a_background_process_with_its_output_redirected_is_not_waited_for(box: Box) -> None:
    mark = f"pdb{new_delimiter()[-8:]}"
    result = box.run(f"cp /bin/sleep ./{mark}; ./{mark} 30 >/dev/null 2>&1 & echo started")
    try:
        assert (result.stdout, result.stderr, result.exit_code) == ("started\n", "", 0)
        assert len(_running(mark)) == 1  # still running: the wrapper returned without it
    finally:
        for stat in _running(mark):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(stat.split()[0]), signal.SIGKILL)


def test_the_sh_timers_sleep_holds_no_output_pipe(tmp_path: Path) -> None:
    """Under sh the deadline is a background ``sleep``. A TERM that reaches its subshell
    before ``__pd_s`` is set leaves the sleep running: it must not hold the capture pipes
    (fds 3 and 4), or the wrapper waits for it for the whole timeout (seen in an image
    sandbox without bash). A `sleep` on PATH records which of those fds it was started with."""
    box = make_box("/bin/sh", tmp_path)
    seen = tmp_path / "sleep-fds"
    fake = box.bin / "sleep"
    fake.write_text(
        "#!/bin/sh\n"
        f"for fd in 3 4; do [ -e /proc/$$/fd/$fd ] && echo $fd >> {seen}; done\n"
        f"echo started >> {seen}\n"
        f": > {seen}.up\n"
        f'exec {shutil.which("sleep")} "$@"\n'
    )
    fake.chmod(0o755)

    # The command waits (builtins only, bounded) until the timer's sleep has started: a
    # command that ends first kills the timer before it ever runs `sleep` (seen in CI).
    result = box.run(
        f"i=0; while [ ! -e {seen}.up ] && [ $i -lt 2000000 ]; do i=$((i+1)); done; echo done"
    )

    assert result.stdout == "done\n"
    assert seen.read_text().split() == ["started"]
