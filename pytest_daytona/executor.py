"""The pure half of running a command in a sandbox: the wrapper script and what comes back.

A sandbox's execute API takes one command and returns its exit code and *combined* output.
`build_script` wraps a command so that one such call gives stdout and stderr apart: the command
runs in a login-shell environment with its stderr sent to a per-call temp file; when it has
finished (or was killed at its deadline) the wrapper prints a random delimiter line, then that
file, and exits with the command's exit code. `parse_output` takes the output apart again.

The I/O side calls, per command::

    delimiter = new_delimiter()
    script = build_script(command, ..., delimiter=delimiter, timeout=limit)
    response = sandbox.process.exec(toolbox_command(script), timeout=backstop_timeout(limit))
    result = result_from_output(command=command_to_shell(command), output=response.result, ...)
    # only if that exec timed out itself: exec(toolbox_command(cleanup_script(delimiter, ...)))
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Mapping, Sequence

from .results import CommandError, ExecResult

__all__ = ["CommandError", "ExecResult"]

#: Longest `toolbox_command` accepted: the script is one argv string, at most 128 KiB on Linux.
MAX_TOOLBOX_COMMAND = 120_000
#: Seconds between the TERM at a command's deadline and the KILL of what is left of it.
KILL_GRACE = 1
#: Seconds the execute API's own timeout (a backstop) allows beyond deadline and grace.
BACKSTOP_MARGIN = 2
#: Follows the delimiter on its line when the command was killed at its deadline.
TIMED_OUT_TOKEN = " timed-out"
#: Ends the delimiter line, followed by the start directory, when `make_dir` was made.
WORKDIR_TOKEN = " workdir="

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DELIMITER = re.compile(r"[A-Za-z0-9_-]{16,128}")
_TEMP_FILES = '"$__pd_tmp.err" "$__pd_tmp.step" "$__pd_tmp.pid"'


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
    """A POSIX sh script running `command` as the driver's login shell would.

    The command runs in a child ``sh`` whose subshell first sources /etc/profile, ~/.profile,
    ~/.bash_profile (else ~/.bashrc), ~/.zprofile and nvm, each silenced and allowed to fail,
    then resets shell options a profile may have set (``set -e``, ``-u``, ``-x`` ...), changes
    to `cwd` and exports `env` (so the caller's env wins over the profiles'). Its stdin is
    `stdin_path` (removed afterwards with `remove_stdin`), else /dev/null. A profile that ends
    the subshell before the command starts is reported on stderr and the command is run
    again without profiles. Output: the command's stdout, then ``\\n<delimiter>\\n``, then its
    stderr; exit status: the command's. The delimiter itself never appears in the script.

    With `timeout` (seconds, fractions honoured) the script kills the command and everything
    it started at the deadline (see `_DEADLINE`), keeps what it printed, adds a note to stderr
    and ``TIMED_OUT_TOKEN`` to the delimiter line.

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
    tmp = temp_name(delimiter)
    stdin = shell_quote(stdin_path) if stdin_path is not None else "/dev/null"
    removed = f" {stdin}" if remove_stdin and stdin_path is not None else ""
    if cwd is not None:
        cd = f"CDPATH= cd -- {_from_start(cwd)} || exit"
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
    # The child sh (argv: tmp prefix, start dir); it marks the step file "done" when finished.
    child = [
        "__pd_tmp=$1 __pd_pwd=$2",
        "shift 2",
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
        ")",
        "__pd_rc=$?",
        "__pd_step=",
        'if [ -s "$__pd_tmp.step" ]; then read -r __pd_step <"$__pd_tmp.step"; fi',
        'if [ -n "$__pd_step" ] && [ "$__pd_step" != run ]; then',
        "printf 'pytest-daytona: sourcing %s ended the shell (status %s); "
        'running the command without login profiles\\n\' "$__pd_step" "$__pd_rc" >&2',
        f"( __pd_run ) <{stdin}",
        "__pd_rc=$?",
        "fi",
        'echo done >|"$__pd_tmp.step"',
        'exit "$__pd_rc"',
    ]
    half, child_text = len(delimiter) // 2, "\n".join(child)
    lines = [
        "__pd_pwd=$PWD",
        f"__pd_tmp=${{TMPDIR:-/tmp}}/{tmp}",
        # `true`, not `:`: a failed redirection of a special builtin would end the shell.
        f'{{ true >"$__pd_tmp.err"; }} 2>/dev/null || __pd_tmp=$HOME/.{tmp}',
        f"__pd_cleanup() {{ rm -f {_TEMP_FILES}{removed}; }}",
        "trap __pd_cleanup EXIT",
        "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM",
        "__pd_where=",
        *_make_dir_lines(make_dir),
        f"__pd_child={shell_quote(child_text)}",
        *_fill(_LAUNCH if timeout is None else _DEADLINE, timeout or 0, stdin),
        f"printf '\\n%s%s%s%s\\n' {shell_quote(delimiter[:half])} {shell_quote(delimiter[half:])}"
        ' "$__pd_end" "$__pd_where"',
        'if [ -s "$__pd_tmp.err" ]; then cat "$__pd_tmp.err"; fi 2>/dev/null',
        'exit "$__pd_rc"',
    ]
    return "\n".join(lines) + "\n"


def _from_start(path: str) -> str:
    """Shell text for `path`, a relative one taken from the script's start directory."""
    if path.startswith("/"):
        return shell_quote(path)
    return f'"$__pd_pwd"/{shell_quote(path)}'


def _make_dir_lines(make_dir: str | None) -> list[str]:
    if make_dir is None:
        return []
    return [
        f'if mkdir -p -m 755 -- {_from_start(make_dir)} 2>>"$__pd_tmp.err"; then',
        f'__pd_where="{WORKDIR_TOKEN}$__pd_pwd"',
        "fi",
    ]


def cleanup_script(delimiter: str, *, stdin_path: str | None = None) -> str:
    """A script removing what `build_script(delimiter=...)` leaves when it is killed from
    outside (the execute API's own timeout): its temp files, the stdin file, and the child's
    process group."""
    tmp = temp_name(delimiter)
    lines = [
        f'for __pd_tmp in "${{TMPDIR:-/tmp}}/{tmp}" "$HOME/.{tmp}"; do',
        'if [ -s "$__pd_tmp.pid" ] && read -r __pd_pid <"$__pd_tmp.pid"; then',
        'kill -s KILL -- "-$__pd_pid" "$__pd_pid"; fi 2>/dev/null',
        f"rm -f {_TEMP_FILES}",
        "done",
    ]
    if stdin_path is not None:
        lines.append(f"rm -f {shell_quote(stdin_path)}")
    return "\n".join(lines) + "\n"


def temp_name(delimiter: str) -> str:
    """Base name of the temp files of the script built with `delimiter`."""
    return "pytest-daytona-" + hashlib.sha256(delimiter.encode()).hexdigest()[:24]


def backstop_timeout(timeout: float) -> int:
    """Whole seconds for the execute API's own timeout: a backstop after the script's."""
    return math.ceil(timeout) + KILL_GRACE + BACKSTOP_MARGIN


def toolbox_command(script: str) -> str:
    """One command line that runs `script` with ``sh`` where the toolbox hands it to a shell
    (today's daemon pipes it to zsh, bash or sh on stdin; ``sh -c`` works too).

    The shell replaces itself with ``sh`` (``exec``: no extra process) and the script travels
    as one single-quoted argument, so it must fit in one argv string (128 KiB on Linux).
    """
    line = f"exec sh -c {shell_quote(script)}"
    if len(line) > MAX_TOOLBOX_COMMAND:
        raise ValueError(
            f"the command script is {len(script)} characters; pass large data as stdin or a file"
        )
    return line


def split_output(combined: str, delimiter: str) -> tuple[str, str]:
    """(stdout, stderr) from a wrapped command's combined output.

    Without the delimiter line (the wrapper was killed from outside) all of it is stdout.
    """
    stdout, stderr, _ = parse_output(combined, delimiter)
    return stdout, stderr


def parse_output(combined: str, delimiter: str) -> tuple[str, str, bool]:
    """(stdout, stderr, timed_out) from a wrapped command's combined output; `timed_out` says
    the script killed the command at its deadline."""
    index, line, stderr = _delimiter_line(combined, delimiter)
    if index < 0:
        return combined, "", False
    status = line.partition(WORKDIR_TOKEN)[0]
    return combined[:index], stderr, status == TIMED_OUT_TOKEN


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
    if line.partition(WORKDIR_TOKEN)[0] not in ("", TIMED_OUT_TOKEN):
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


_HOME_PROFILE = '"$HOME/.profile"'
_BASH_PROFILE = '"$HOME/.bash_profile"'
_BASHRC = '"$HOME/.bashrc"'
_ZPROFILE = '"$HOME/.zprofile"'
_NVM = '"$NVM_DIR/nvm.sh"'


def _src(path: str) -> str:
    """Source one profile, recording its name first so that a fatal one can be named."""
    return f"printf '%s\\n' {path} >|\"$__pd_tmp.step\"; command . {path} || true"


# How the outer script runs the child sh (@CHILD@) and sets __pd_rc and __pd_end.
_LAUNCH = """\
@CHILD@
__pd_rc=$? __pd_end="""

# With a deadline. GNU `timeout` makes the child's process group; `__pd_watch` (where there is
# no `timeout`) sleeps until the deadline, then freezes the child's process tree, TERMs it and
# calls `__pd_grace`, which KILLs the TERMed pids or group once none of it is alive (as
# `__pd_scan KEY LIST` reads /proc: pids whose pid, ppid or pgid is in LIST) or KILL_GRACE s
# later. The deadline killed the child if it did not mark its step "done" and ended with the
# status `timeout` gives then (124, or 137 after a KILL) or, under the watchdog, 137 or 143.
_DEADLINE = """\
__pd_scan() {
for __pd_f in /proc/[0-9]*/stat; do
{ read -r __pd_l <"$__pd_f"; } 2>/dev/null || continue
__pd_l=${__pd_l##*") "}
case $__pd_l in Z* | X*) continue ;; esac
__pd_f=${__pd_f%/stat} __pd_l=${__pd_l#* }
case $1 in pid) __pd_v=${__pd_f#/proc/} ;; ppid) __pd_v=${__pd_l%% *} ;; *)
__pd_v=${__pd_l#* } __pd_v=${__pd_v%% *} ;; esac
case " $2 " in *" $__pd_v "*) printf '%s ' "${__pd_f#/proc/}" ;; esac
done
}
__pd_grace() {
__pd_n=0
while [ "$__pd_n" -lt @TENTHS@ ] && [ -n "$(__pd_scan "$1" "$2")" ]; do
sleep 0.1 2>/dev/null || { sleep @GRACE@; break; }
__pd_n=$((__pd_n + 1))
done
if [ "$1" = pgid ]; then kill -s KILL -- "-$2"; else kill -s KILL $2; fi 2>/dev/null
}
__pd_watch() {
trap 'kill "$__pd_s" 2>/dev/null; exit' TERM
sleep @SECONDS@ 2>/dev/null & __pd_s=$!
wait "$__pd_s" || { sleep @WHOLE@ & __pd_s=$!; wait "$__pd_s"; } || exit
__pd_all= __pd_new=$1
while [ -n "$__pd_new" ]; do
kill -s STOP $__pd_new 2>/dev/null
__pd_all="$__pd_all $__pd_new"
__pd_new=$(__pd_scan ppid "$__pd_new")
done
kill -s TERM $__pd_all 2>/dev/null
kill -s CONT $__pd_all 2>/dev/null
__pd_grace pid "$__pd_all"
}
__pd_dog=
if command -v timeout >/dev/null 2>&1; then
timeout -k @GRACE@ @SECONDS@ @CHILD@ &
__pd_pid=$!
echo "$__pd_pid" >|"$__pd_tmp.pid"
else
@CHILD@ &
__pd_pid=$!
__pd_watch "$__pd_pid" </dev/null >/dev/null 2>&1 &
__pd_dog=$!
fi
wait "$__pd_pid" 2>/dev/null
__pd_rc=$? __pd_end= __pd_step=done
case $__pd_rc$__pd_dog in 124 | 137 | 137?* | 143?*)
__pd_step=
if [ -s "$__pd_tmp.step" ]; then read -r __pd_step <"$__pd_tmp.step"; fi
esac
if [ "$__pd_step" != done ]; then
__pd_end=@TOKEN@
if [ -n "$__pd_dog" ]; then wait "$__pd_dog" 2>/dev/null; else __pd_grace pgid "$__pd_pid"; fi
printf 'pytest-daytona: timed out after %ss; the command was killed\\n' @SECONDS@ >>"$__pd_tmp.err"
elif [ -n "$__pd_dog" ]; then
kill "$__pd_dog" 2>/dev/null
fi"""


def _fill(template: str, timeout: float, stdin: str) -> list[str]:
    child = f'sh -c "$__pd_child" sh "$__pd_tmp" "$__pd_pwd" 2>>"$__pd_tmp.err" <{stdin}'
    values = {
        "@CHILD@": child,
        "@SECONDS@": f"{max(timeout, 0.001):.3f}".rstrip("0").rstrip("."),  # never 0: no limit
        "@WHOLE@": str(math.ceil(timeout)),
        "@GRACE@": str(KILL_GRACE),
        "@TENTHS@": str(KILL_GRACE * 10),
        "@TOKEN@": shell_quote(TIMED_OUT_TOKEN),
    }
    for name, value in values.items():
        template = template.replace(name, value)
    return template.splitlines()
