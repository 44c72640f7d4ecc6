"""The pure half of running a command in a sandbox: the wrapper script and what comes back.

A sandbox's execute API takes one command and returns its exit code and *combined* output.
`build_script` wraps a command so that one such call gives stdout and stderr apart: the command
runs in a login-shell environment with its stderr sent to a per-call temp file; when it has
finished, the wrapper prints a random delimiter line, then that file, and exits with the
command's exit code. `split_output` takes the combined output apart again.

The I/O side calls, per command::

    delimiter = new_delimiter()
    script = build_script(command, cwd=..., env=..., stdin_path=..., delimiter=delimiter)
    response = sandbox.process.exec(toolbox_command(script), timeout=...)
    result = result_from_output(command=command_to_shell(command), output=response.result, ...)
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: How many trailing lines of stdout and of stderr a `CommandError` shows.
TAIL_LINES = 20
#: Longest `toolbox_command` accepted: one argv string may not exceed 128 KiB on Linux.
MAX_TOOLBOX_COMMAND = 120_000

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DELIMITER = re.compile(r"[A-Za-z0-9_-]{16,128}")
_SHOWN_COMMAND_CHARS = 500


class CommandError(Exception):
    """A command exited non-zero or timed out; `result` holds everything it printed."""

    def __init__(self, result: ExecResult) -> None:
        self.result = result
        super().__init__(_failure_message(result))


@dataclass(frozen=True)
class ExecResult:
    """What one command did in a sandbox."""

    exit_code: int | None  # None when the command timed out
    stdout: str
    stderr: str
    timed_out: bool
    duration: float  # seconds
    command: str  # as shell text, for messages

    def __post_init__(self) -> None:
        if self.timed_out and self.exit_code is not None:
            raise ValueError("a command that timed out has no exit code")

    @property
    def ok(self) -> bool:
        """Whether the command exited 0 in time."""
        return self.exit_code == 0 and not self.timed_out

    def check(self) -> ExecResult:
        """Return self if the command succeeded, else raise `CommandError`."""
        if not self.ok:
            raise CommandError(self)
        return self


def validate_env_keys(env: Mapping[str, str]) -> None:
    """Raise ValueError naming the first key that is not a shell variable name."""
    for key in env:
        if not isinstance(key, str) or not _ENV_KEY.fullmatch(key):
            raise ValueError(
                f"invalid environment variable name {key!r}: use letters, digits and _, "
                "not starting with a digit"
            )


def shell_quote(value: str) -> str:
    """Quote `value` as one POSIX shell word, always in single quotes."""
    if "\0" in value:
        raise ValueError("a shell word cannot contain a NUL character")
    return "'" + value.replace("'", "'\"'\"'") + "'"


def command_to_shell(command: str | Sequence[str]) -> str:
    """Shell text for `command`: a str is a shell snippet used as is, a sequence is an argv."""
    if isinstance(command, str):
        text = command
    elif isinstance(command, Sequence) and all(isinstance(arg, str) for arg in command):
        text = " ".join(shell_quote(arg) for arg in command)
    else:
        raise TypeError("command must be a str (shell snippet) or a sequence of str (argv)")
    if not text.strip():
        raise ValueError("empty command")
    return text


def new_delimiter() -> str:
    """A fresh unguessable delimiter for one `build_script` call."""
    return "pytest-daytona-" + secrets.token_hex(16)


def build_script(
    command: str | Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    stdin_path: str | None = None,
    delimiter: str,
    remove_stdin: bool = False,
) -> str:
    """A POSIX sh script running `command` as the driver's login shell would.

    The command runs in a subshell that first sources /etc/profile, ~/.profile,
    ~/.bash_profile (else ~/.bashrc), ~/.zprofile and nvm, each silenced and allowed to fail,
    then resets shell options a profile may have set (``set -e``, ``-u``, ``-x`` ...), changes
    to `cwd` and exports `env` (so the caller's env wins over the profiles'). Its stdin is
    `stdin_path` (removed afterwards with `remove_stdin`), else /dev/null. A profile that ends
    the subshell before the command starts is reported on stderr and the command is run
    again without profiles. Output: the command's stdout, then ``\\n<delimiter>\\n``, then its
    stderr; exit status: the command's. The delimiter itself never appears in the script.
    """
    if not _DELIMITER.fullmatch(delimiter):
        raise ValueError("delimiter must be 16-128 characters of [A-Za-z0-9_-]")
    text = command_to_shell(command)
    env = dict(env or {})
    validate_env_keys(env)
    tmp = "pytest-daytona-" + hashlib.sha256(delimiter.encode()).hexdigest()[:24]
    stdin = shell_quote(stdin_path) if stdin_path is not None else "/dev/null"
    removed = f" {stdin}" if remove_stdin and stdin_path is not None else ""
    if cwd is not None:
        cd = f"CDPATH= cd -- {shell_quote(cwd)} || exit"
    else:  # back to where we started, in case a profile changed directory
        cd = 'CDPATH= cd -- "$__pd_pwd" 2>/dev/null'
    quiet = "</dev/null >/dev/null 2>&1"
    profiles = [
        f"if [ -f /etc/profile ]; then {_src('/etc/profile')}; fi {quiet}",
        f'if [ -f "$HOME/.profile" ]; then {_src(_HOME_PROFILE)}; fi {quiet}',
        # .bash_profile usually sources .bashrc itself; source .bashrc only without it.
        f'if [ -f "$HOME/.bash_profile" ]; then {_src(_BASH_PROFILE)}; '
        f'elif [ -f "$HOME/.bashrc" ]; then {_src(_BASHRC)}; fi {quiet}',
        f'if [ -f "$HOME/.zprofile" ]; then {_src(_ZPROFILE)}; fi {quiet}',
        f'{{ export NVM_DIR="${{NVM_DIR:-$HOME/.nvm}}"; '
        f'if [ -s "$NVM_DIR/nvm.sh" ]; then {_src(_NVM)}; fi; }} {quiet}',
    ]
    half = len(delimiter) // 2
    lines = [
        "__pd_pwd=$PWD",
        f"__pd_tmp=${{TMPDIR:-/tmp}}/{tmp}",
        # `true`, not `:`: a failed redirection of a special builtin would end the shell.
        f'{{ true >"$__pd_tmp.err"; }} 2>/dev/null || __pd_tmp=$HOME/.{tmp}',
        f'__pd_cleanup() {{ rm -f "$__pd_tmp.err" "$__pd_tmp.step"{removed}; }}',
        "trap __pd_cleanup EXIT",
        "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM",
        "__pd_run() {",
        cd,
        *(f"export {key}={shell_quote(value)}" for key, value in env.items()),
        f"eval {shell_quote(text)}",
        "}",
        "(",
        *profiles,
        "{ set +a +C +e +f +u +v +x; } 2>/dev/null",
        "trap - EXIT HUP INT TERM",
        'echo run >|"$__pd_tmp.step"',
        "__pd_run",
        f') 2>"$__pd_tmp.err" <{stdin}',
        "__pd_rc=$?",
        "__pd_step=",
        'if [ -s "$__pd_tmp.step" ]; then read -r __pd_step <"$__pd_tmp.step"; fi',
        'if [ -n "$__pd_step" ] && [ "$__pd_step" != run ]; then',
        "printf 'pytest-daytona: sourcing %s ended the shell (status %s); "
        'running the command without login profiles\\n\' "$__pd_step" "$__pd_rc"'
        ' >>"$__pd_tmp.err"',
        f'( __pd_run ) 2>>"$__pd_tmp.err" <{stdin}',
        "__pd_rc=$?",
        "fi",
        f"printf '\\n%s%s\\n' {shell_quote(delimiter[:half])} {shell_quote(delimiter[half:])}",
        'cat "$__pd_tmp.err" 2>/dev/null',
        'exit "$__pd_rc"',
    ]
    return "\n".join(lines) + "\n"


def toolbox_command(script: str) -> str:
    """One command line that runs `script` with ``sh`` wherever the toolbox hands it.

    The script travels base64-encoded, so it survives a toolbox that runs the command with
    zsh, bash or sh as well as one that only splits it into words at spaces and quotes.
    """
    encoded = base64.b64encode(script.encode()).decode("ascii")
    line = f"sh -c 'eval \"$(echo {encoded} | base64 -d)\"'"
    if len(line) > MAX_TOOLBOX_COMMAND:
        raise ValueError(
            f"the command script is {len(script)} characters; pass large data as stdin or a file"
        )
    return line


def split_output(combined: str, delimiter: str) -> tuple[str, str]:
    """(stdout, stderr) from a wrapped command's combined output.

    Without the delimiter line (the wrapper was killed, e.g. on timeout) all of it is stdout.
    """
    marker = f"\n{delimiter}\n"
    index = combined.find(marker)
    if index >= 0:
        return combined[:index], combined[index + len(marker) :]
    if combined.endswith("\n" + delimiter):  # an API that trimmed the trailing newline
        return combined[: -len(delimiter) - 1], ""
    return combined, ""


def result_from_output(
    *,
    command: str,
    output: str,
    delimiter: str,
    exit_code: int | None,
    duration: float,
    timed_out: bool = False,
) -> ExecResult:
    """The `ExecResult` of a wrapped command from what the execute API returned."""
    stdout, stderr = split_output(output, delimiter)
    return ExecResult(
        exit_code=None if timed_out else exit_code,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        duration=duration,
        command=command,
    )


_HOME_PROFILE = '"$HOME/.profile"'
_BASH_PROFILE = '"$HOME/.bash_profile"'
_BASHRC = '"$HOME/.bashrc"'
_ZPROFILE = '"$HOME/.zprofile"'
_NVM = '"$NVM_DIR/nvm.sh"'


def _src(path: str) -> str:
    """Source one profile, recording its name first so that a fatal one can be named."""
    return f"printf '%s\\n' {path} >|\"$__pd_tmp.step\"; command . {path} || true"


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else "(empty)"


def _failure_message(result: ExecResult) -> str:
    shown = result.command
    if len(shown) > _SHOWN_COMMAND_CHARS:
        shown = shown[:_SHOWN_COMMAND_CHARS] + "..."
    if result.timed_out:
        what = f"timed out after {result.duration:g}s"
    else:
        what = f"exited with code {result.exit_code}"
    return (
        f"command {what}: {shown}\n"
        f"--- stdout (last {TAIL_LINES} lines) ---\n{_tail(result.stdout)}\n"
        f"--- stderr (last {TAIL_LINES} lines) ---\n{_tail(result.stderr)}"
    )
