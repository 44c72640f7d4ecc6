"""The pure half of running a command in a sandbox: the wrapper script and what comes back.

A sandbox's execute API takes one command and returns its exit code and *combined* output.
`build_script` wraps a command so that one such call gives stdout and stderr apart: the command
runs in a login-shell environment with its stderr captured by the wrapper (in memory, no temp
file); when it has finished (or was killed at its deadline) the wrapper prints a random
delimiter line, then that stderr, and exits with the command's exit code. `parse_output`
takes the output apart again. The shell text itself is in `script_text`.

The I/O side calls, per command::

    delimiter = new_delimiter()
    script = build_script(command, ..., delimiter=delimiter, timeout=limit)
    command, env = toolbox_call(script)
    response = sandbox.process.exec(command, env=env, timeout=backstop_timeout(limit))
    result = result_from_output(command=command_to_shell(command), output=response.result, ...)
    # if that exec timed out itself, the toolbox killed the script's process group
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Mapping, Sequence

from ..results import ExecResult
from . import script_text

#: Longest script accepted: it is one environment string, at most 128 KiB on Linux.
MAX_SCRIPT = 120_000
#: The environment variable the script travels in (see `toolbox_call`).
SCRIPT_ENV = "PYTEST_DAYTONA_SCRIPT"
#: Seconds between the TERM at a command's deadline and the KILL of what is left of it.
KILL_GRACE = 1
#: Seconds the execute API's own timeout (a backstop) allows beyond deadline and grace.
BACKSTOP_MARGIN = 2
#: Ends the delimiter line, followed by the start directory, when `make_dir` was made.
WORKDIR_TOKEN = " workdir="

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DELIMITER = re.compile(r"[A-Za-z0-9_-]{16,128}")


def validate_env_keys(env: Mapping[str, object]) -> None:
    """Raise ValueError naming the first key that is not a shell variable name."""
    for key in env:
        if not isinstance(key, str) or not _ENV_KEY.fullmatch(key):
            raise ValueError(
                f"invalid environment variable name {key!r}: use letters, digits and _, "
                "not starting with a digit"
            )


def validate_env(env: Mapping[str, object]) -> None:
    """Raise ValueError for a key that is no shell variable name, TypeError for a non-str value."""
    validate_env_keys(env)
    for key, value in env.items():
        if not isinstance(value, str):
            raise TypeError(
                f"environment variable {key!r} must be a str, got {type(value).__name__}"
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
    timeout: float | None = None,
    make_dir: str | None = None,
) -> str:
    """A POSIX shell script running `command` as the driver's login shell would.

    Run by `toolbox_call` in bash (sh where the sandbox has no bash). The command runs in a
    child process that first sources /etc/profile, ~/.profile, ~/.bash_profile (else
    ~/.bashrc), ~/.zprofile and nvm, each silenced and allowed to fail, then resets shell
    options a profile may have set (``set -e``, ``-u``, ``-x`` ...), changes to `cwd` and
    exports `env` (so the caller's env wins over the profiles'). Its stdin is `stdin_path`
    (removed afterwards with `remove_stdin`), else /dev/null. A profile that ends the shell
    before the command starts is reported on stderr and the command is run again without
    profiles. Output: the command's stdout, then ``\\n<delimiter>\\n``, then its stderr
    (with the markers `parse_output` takes out); exit status: the command's. The delimiter
    itself never appears in the script.

    With `timeout` (seconds, fractions honoured) the script kills the command, everything it
    started and what it left behind in the script's process group at the deadline (TERM,
    then KILL after `KILL_GRACE` s), keeps what it printed and says so on stderr.

    A relative `cwd` or `make_dir` is relative to the directory the script starts in. With
    `make_dir` the script first creates that directory (``mkdir -p``, mode 755) and, when that
    worked, ends the delimiter line with ``WORKDIR_TOKEN`` and the start directory (see
    `reported_workdir`), so that one call both makes a workspace and learns where it is.
    """
    if not _DELIMITER.fullmatch(delimiter):
        raise ValueError("delimiter must be 16-128 characters of [A-Za-z0-9_-]")
    text = command_to_shell(command)
    env = dict(env or {})
    validate_env(env)
    if timeout is not None and not (0 < timeout < math.inf):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    stdin = shell_quote(stdin_path) if stdin_path is not None else "/dev/null"
    if cwd is not None:
        cd = f"CDPATH= cd -- {_from_start(cwd)} || exit"
    else:  # back to where we started, in case a profile changed directory
        cd = 'CDPATH= cd -- "$__pd_pwd" 2>/dev/null'
    command_lines = [
        "__pd_cmd() {",
        cd,
        *(f"export {key}={shell_quote(value)}" for key, value in env.items()),
        f"eval {shell_quote(text)}",
        "}",
    ]
    half = len(delimiter) // 2
    values = {
        "@VAR@": SCRIPT_ENV,
        "@MARK@": marker(delimiter),
        "@SECONDS@": _seconds(timeout) if timeout is not None else "",
        "@WHOLE@": str(math.ceil(timeout or 0)),
        "@GRACE@": str(KILL_GRACE),
        "@TENTHS@": str(KILL_GRACE * 10),
        "@TOKEN@": shell_quote(WORKDIR_TOKEN),
        "@STDIN@": stdin,
        "@PROFILES@": "\n".join(_silenced(line) for line in _PROFILES),
        "@HALF1@": shell_quote(delimiter[:half]),
        "@HALF2@": shell_quote(delimiter[half:]),
    }
    parts = [script_text.HEAD]
    if remove_stdin and stdin_path is not None:
        parts.append(
            f"trap 'rm -f -- {stdin}' EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; "
            "trap 'exit 143' TERM"
        )
    if make_dir is not None:
        parts.append(script_text.MAKE_DIR.replace("@DIR@", _from_start(make_dir)))
    parts += [
        "\n".join(command_lines),
        script_text.CHILD,
        script_text.CAPTURE,
        script_text.TIMER,
        script_text.KILL,
        script_text.TAIL,
    ]
    script = "\n".join(parts)
    for name, value in values.items():
        script = script.replace(name, value)
    return script


def _seconds(timeout: float) -> str:
    """`timeout` as the shortest decimal text `sleep` and ``read -t`` take (never 0)."""
    return f"{max(timeout, 0.001):.3f}".rstrip("0").rstrip(".")


def _from_start(path: str) -> str:
    """Shell text for `path`, a relative one taken from the script's start directory."""
    if path.startswith("/"):
        return shell_quote(path)
    return f'"$__pd_pwd"/{shell_quote(path)}'


def marker(delimiter: str) -> str:
    """The prefix of the markers the script built with `delimiter` leaves in its stderr."""
    return "pytest-daytona-" + hashlib.sha256(delimiter.encode()).hexdigest()[:24]


def backstop_timeout(timeout: float) -> int:
    """Whole seconds for the execute API's own timeout: a backstop after the script's."""
    return math.ceil(timeout) + KILL_GRACE + BACKSTOP_MARGIN


def toolbox_call(script: str) -> tuple[str, dict[str, str]]:
    """(command, env) for the execute API that run `script` in the sandbox.

    The toolbox pipes the command to its shell (zsh, bash or sh) on stdin, which a shell reads
    a byte at a time; the script travels in the environment variable ``SCRIPT_ENV`` instead
    (the toolbox sets it on the shell's process) and the command only evaluates it: in bash
    that very shell runs it (no extra process), elsewhere the shell replaces itself with
    bash, or sh where there is no bash. The script unsets the variable first. One environment
    string is at most 128 KiB on Linux.
    """
    if len(script) > MAX_SCRIPT:
        raise ValueError(
            f"the command script is {len(script)} characters; pass large data as stdin or a file"
        )
    return script_text.TOOLBOX_LINE.replace("@VAR@", SCRIPT_ENV), {SCRIPT_ENV: script}


def split_output(combined: str, delimiter: str) -> tuple[str, str]:
    """(stdout, stderr) from a wrapped command's combined output.

    Without the delimiter line (the wrapper was killed from outside) all of it is stdout.
    """
    stdout, stderr, _ = parse_output(combined, delimiter)
    return stdout, stderr


def parse_output(combined: str, delimiter: str) -> tuple[str, str, bool]:
    """(stdout, stderr, timed_out) from a wrapped command's combined output; `timed_out` says
    the script killed the command at its deadline. The script's markers become notes."""
    index, _, stderr = _delimiter_line(combined, delimiter)
    if index < 0:
        return combined, "", False
    mark = re.escape(marker(delimiter))
    stderr = re.sub(mark + "E", "", stderr)
    stderr = re.sub(mark + r"P(\d+) ([^\n]*)\n", _profile_note, stderr)
    deadlines = re.findall(mark + r"T([0-9.]+)\n", stderr)
    if deadlines:
        stderr = re.sub(mark + r"T[0-9.]+\n", "", stderr)
        stderr += f"pytest-daytona: timed out after {deadlines[0]}s; the command was killed\n"
    return combined[:index], stderr, bool(deadlines)


def _profile_note(found: re.Match[str]) -> str:
    return (
        f"pytest-daytona: sourcing {found.group(2)} ended the shell (status {found.group(1)}); "
        "running the command without login profiles\n"
    )


def reported_workdir(combined: str, delimiter: str) -> str | None:
    """The start directory a script built with `make_dir` reported (None: not made)."""
    index, line, _ = _delimiter_line(combined, delimiter)
    _, found, workdir = line.partition(WORKDIR_TOKEN)
    return workdir if index >= 0 and found and workdir.startswith("/") else None


def _delimiter_line(combined: str, delimiter: str) -> tuple[int, str, str]:
    """(where the delimiter line starts or -1, what follows the delimiter on it, the rest)."""
    index = combined.find("\n" + delimiter)
    if index < 0:
        return -1, "", ""
    line, _, rest = combined[index + len(delimiter) + 1 :].partition("\n")
    if line.partition(WORKDIR_TOKEN)[0] != "":
        return -1, "", ""  # not the delimiter line after all
    return index, line, rest


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
    stdout, stderr, killed = parse_output(output, delimiter)
    timed_out = timed_out or killed
    return ExecResult(
        exit_code=None if timed_out else exit_code,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        duration=duration,
        command=command,
    )


def _load(path: str) -> str:
    """Source one login profile, naming it first so that a fatal one can be named."""
    return f"__pd_step={path}; command . {path} || true"


def _source(path: str, test: str = "-f") -> str:
    """`_load` `path` if it passes `test`."""
    return f"if [ {test} {path} ]; then {_load(path)}; fi"


def _silenced(line: str) -> str:
    return f"{{ {line}; }} </dev/null >/dev/null 2>&1"


_BASH_PROFILE, _BASHRC = '"$HOME/.bash_profile"', '"$HOME/.bashrc"'
_PROFILES = [
    _source("/etc/profile"),
    _source('"$HOME/.profile"'),
    # .bash_profile usually sources .bashrc itself; source .bashrc only without it.
    f"if [ -f {_BASH_PROFILE} ]; then {_load(_BASH_PROFILE)}; "
    f"elif [ -f {_BASHRC} ]; then {_load(_BASHRC)}; fi",
    _source('"$HOME/.zprofile"'),
    'export NVM_DIR="${NVM_DIR:-$HOME/.nvm}" 2>/dev/null',
    _source('"$NVM_DIR/nvm.sh"', "-s"),
]
