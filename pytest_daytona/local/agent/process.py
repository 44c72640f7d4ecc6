"""``exec``: a command piped to the sandbox's shell on stdin, as Daytona's daemon runs it."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import threading

from . import procs
from .ops import WORK_DIR, OpError, Request, op

#: A valid environment variable name (the daemon's `ValidateEnvKeys`), matched in full.
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.cache
def shell() -> str:
    """zsh, else bash, as listed in /etc/shells, else $SHELL, else ``sh`` (the daemon's order)."""
    try:
        with open("/etc/shells", encoding="utf-8", errors="replace") as fh:
            listed = fh.read()
    except OSError:
        return "sh"
    for candidate in ("/usr/bin/zsh", "/bin/zsh", "/usr/bin/bash", "/bin/bash"):
        if candidate in listed:
            return candidate
    return os.environ.get("SHELL") or "sh"


def check_env_keys(env: dict[str, str] | None) -> None:
    """400 for a name that is not ``[A-Za-z_][A-Za-z0-9_]*``."""
    for key in env or {}:
        if not ENV_KEY.fullmatch(key):
            raise OpError(400, f"invalid environment variable name: '{key}'", "BAD_REQUEST")


def start_error(exc: OSError, cwd: str) -> str:
    """The daemon's message for a process that could not start."""
    if isinstance(exc, FileNotFoundError) and not os.path.isdir(cwd):
        return f"chdir {cwd}: no such file or directory"
    if isinstance(exc, NotADirectoryError):
        return f"chdir {cwd}: not a directory"
    return f"{exc.strerror or exc}"


def exit_code(returncode: int) -> int:
    """Go's ExitCode(): -1 for a process ended by a signal."""
    return returncode if returncode >= 0 else -1


def run_piped(script: str, cwd: str, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run `script` with the sandbox's shell reading it from stdin: (exit code, stdout and
    stderr combined). A `timeout` (seconds, > 0) kills the process group and raises the
    daemon's 408; a process that cannot start answers -1 and the reason."""
    try:
        proc = procs.popen(
            [shell()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
        )
    except OSError as exc:
        return -1, start_error(exc, cwd)
    fired = threading.Event()
    timer = None
    if timeout > 0:

        def expire() -> None:
            fired.set()
            procs.kill_group(proc.pid)

        timer = threading.Timer(float(timeout), expire)
        timer.daemon = True
        timer.start()
    try:
        output, _ = proc.communicate(script.encode())
    finally:
        if timer is not None:
            timer.cancel()
        procs.forget(proc)
    if fired.is_set():
        raise OpError(408, "command execution timeout", "PROCESS_EXECUTION_TIMEOUT")
    return exit_code(proc.returncode), output.decode(errors="replace")


@op("exec")
def execute(req: Request) -> dict[str, object]:
    """Run ``command`` with the shell reading it from stdin, in ``cwd``, with ``env``; output
    is stdout and stderr combined. A ``timeout`` (seconds, > 0) kills the process group and
    answers 408; there is no default timeout."""
    command = str(req.params.get("command") or "")
    if not command.strip():
        raise OpError(400, "command cannot be empty or whitespace-only", "BAD_REQUEST")
    check_env_keys(req.params.get("env"))
    cwd = str(req.params.get("cwd") or WORK_DIR)
    code, output = run_piped(command, cwd, req.env(), req.params.get("timeout") or 0)
    return {"exitCode": code, "result": output}
