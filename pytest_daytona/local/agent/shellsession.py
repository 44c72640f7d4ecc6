"""One session: a long-lived shell fed commands on stdin, each one's output labelled into a log.

As Daytona's daemon does it, every command is sourced into the same shell (so ``cd`` and
``export`` persist), its stdout and stderr go through FIFOs to two line labellers that
prefix each line with ``\\x01\\x01\\x01`` or ``\\x02\\x02\\x02`` and append it to
``~/.daytona/sessions/<session>/<command>/output.log``; the exit code is written to
``exit_code`` next to it once both labellers have flushed. Async commands keep stdin open on
``input.pipe`` for input sent later.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from typing import BinaryIO
from urllib.parse import quote

from . import procs
from .ops import HOME, OpError

STDOUT_MARK = b"\x01\x01\x01"
STDERR_MARK = b"\x02\x02\x02"
#: Seconds a deleted session's shell gets after SIGTERM before SIGKILL (the daemon's default).
GRACE = 5.0
_PIPES = ("stdout.pipe", "stderr.pipe", "input.pipe")


def sessions_root() -> str:
    """Where session logs live in the sandbox (the daemon's ``~/.daytona/sessions``)."""
    return os.path.join(HOME, ".daytona", "sessions")


def dir_name(identifier: str) -> str:
    """A session or command id as one path component (ids may hold ``/`` or be ``..``)."""
    name = quote(identifier, safe="")
    return name.replace(".", "%2E") if name in (".", "..") else name


def session_ended() -> OpError:
    """The answer for a session whose shell is gone."""
    return OpError(410, "gone: session process has exited", "SESSION_ENDED")


def _labeller(pipe: str, mark: str) -> str:
    # Every line (a last one without newline too) gets the stream's mark and a newline.
    return (
        f'( while IFS= read -r __pd_l || [ -n "$__pd_l" ]; do printf \'{mark}%s\\n\' "$__pd_l"; '
        f'done < "$__pd_d/{pipe}" ) >> "$__pd_d/output.log" &\n'
    )


#: Tries at opening the command's FIFO ends. An open that waits for the other end can fail
#: when a signal comes (busybox sh: a SIGCHLD, about 1 in 1,500 commands; the labellers then
#: wait for a writer forever and the command never ends), so the opens are retried.
OPEN_TRIES = 100


def wrapper(directory: str, run_async: bool) -> str:
    """Shell text that runs ``cmd.sh`` of `directory` in the session's own shell."""
    feed = "sleep 2147483647" if run_async else ":"
    return (
        "{\n"
        f"__pd_d={shlex.quote(directory)}\n"
        + _labeller("stdout.pipe", "\\001\\001\\001")
        + "__pd_o=$!\n"
        + _labeller("stderr.pipe", "\\002\\002\\002")
        + "__pd_e=$!\n"
        f'{feed} > "$__pd_d/input.pipe" &\n'
        "__pd_h=$!\n"
        "__pd_t=0\n"
        'until command exec 7> "$__pd_d/stdout.pipe" 8> "$__pd_d/stderr.pipe" '
        '9< "$__pd_d/input.pipe"; do\n'
        f'  __pd_t=$((__pd_t + 1)); [ "$__pd_t" -lt {OPEN_TRIES} ] || break\n'
        "done 2>/dev/null\n"
        '{ . "$__pd_d/cmd.sh"; } <&9 >&7 2>&8 7>&- 8>&- 9<&-\n'
        "__pd_c=$?\n"
        "exec 7>&- 8>&- 9<&-\n"
        'kill "$__pd_h" 2>/dev/null || :\n'
        'wait "$__pd_h" "$__pd_o" "$__pd_e" 2>/dev/null || :\n'
        'rm -f "$__pd_d/stdout.pipe" "$__pd_d/stderr.pipe" "$__pd_d/input.pipe"\n'
        'echo "$__pd_c" > "$__pd_d/exit_code"\n'
        'echo "$__pd_d"\n'
        "}\n"
    )


class Command:
    """One command of a session and the files it leaves in its directory."""

    def __init__(
        self, session_dir: str, command_id: str, command: str, echo_input: bool, idle: bool = False
    ) -> None:
        self.id = command_id
        self.command = command
        self.echo_input = echo_input
        #: A command with no process and no files, that never writes or ends.
        self.idle = idle
        self.dir = os.path.join(session_dir, dir_name(command_id))
        self.exit_code: int | None = None

    @property
    def log_path(self) -> str:
        """The labelled log of stdout and stderr."""
        return os.path.join(self.dir, "output.log")

    @property
    def input_path(self) -> str:
        """The FIFO the command reads its stdin from."""
        return os.path.join(self.dir, "input.pipe")

    def prepare(self) -> None:
        """Create the command's directory, empty log, script and FIFOs."""
        os.makedirs(self.dir, exist_ok=True)
        with open(self.log_path, "wb"):
            pass
        fd = os.open(os.path.join(self.dir, "cmd.sh"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(self.command)
        for name in _PIPES:
            path = os.path.join(self.dir, name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.mkfifo(path, 0o600)

    def finished(self) -> int | None:
        """The exit code once the command has ended, else None."""
        if self.exit_code is None and not self.idle:
            try:
                with open(os.path.join(self.dir, "exit_code"), encoding="ascii") as fh:
                    text = fh.read().strip()
            except (OSError, UnicodeDecodeError):
                return None
            with contextlib.suppress(ValueError):
                self.exit_code = int(text)
        return self.exit_code

    def settle(self, code: int) -> None:
        """Record `code` as the exit code of a command whose shell went away."""
        if self.finished() is None:
            self.exit_code = code
            with contextlib.suppress(OSError), open(os.path.join(self.dir, "exit_code"), "w") as fh:
                fh.write(f"{code}\n")

    def log(self) -> bytes:
        """The log so far; the daemon's 404 when it is missing."""
        with self.open_log() as fh:
            return fh.read()

    def open_log(self) -> BinaryIO:
        """The log opened for reading; the daemon's 404 when it is missing."""
        if self.idle:
            return io.BytesIO()
        try:
            return open(self.log_path, "rb")
        except FileNotFoundError as exc:
            raise OpError(404, f"not found: {exc}", "NOT_FOUND") from None

    def as_dict(self) -> dict[str, object]:
        """``Command`` on the wire (no ``exitCode`` while it runs)."""
        data: dict[str, object] = {"id": self.id, "command": self.command}
        code = self.finished()
        if code is not None:
            data["exitCode"] = code
        return data


class Session:
    """A shell of the sandbox that runs the session's commands one after another.

    A session made without a shell has no process and no files (the default entrypoint, a
    ``sleep infinity`` that never writes or ends, needs neither).
    """

    def __init__(self, session_id: str, env: dict[str, str], shell: str | None) -> None:
        self.id = session_id
        self.dir = os.path.join(sessions_root(), dir_name(session_id))
        self.commands: dict[str, Command] = {}
        self.deleted = False
        self.lock = threading.Lock()
        self.changed = threading.Condition()
        self.proc: subprocess.Popen[bytes] | None = None
        if shell is not None:
            os.makedirs(self.dir, exist_ok=True)
            self.proc = procs.popen(
                [shell],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for _ in self.proc.stdout:  # one line per finished command
            self._notify()
        self._notify()

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def alive(self) -> bool:
        """Whether the session's shell still runs."""
        if self.deleted:
            return False
        if self.proc is None:
            return True
        if self.proc.poll() is None:
            return True
        procs.forget(self.proc)
        return False

    def start(self, command: Command, run_async: bool) -> None:
        """Hand `command` to the shell; 409 for a taken id, 410 when the shell is gone."""
        with self.lock:
            if not self.alive() or self.proc is None or self.proc.stdin is None:
                raise session_ended()
            if command.id in self.commands:
                raise OpError(409, "conflict: command with the given ID already exists", "CONFLICT")
            self.commands[command.id] = command
            try:
                command.prepare()
            except OSError as exc:
                raise OpError(400, f"bad request: failed to prepare command: {exc}") from None
            try:
                self.proc.stdin.write(wrapper(command.dir, run_async).encode())
                self.proc.stdin.flush()
            except OSError:
                raise session_ended() from None

    def wait(self, command: Command) -> int:
        """Block until `command` ends: its exit code. A shell that exits under it (``exit 3``)
        gives its own status; a deleted session answers the daemon's 400."""
        with self.changed:
            while True:
                code = command.finished()
                if code is not None:
                    return code
                if self.deleted:
                    command.settle(1)
                    raise OpError(400, "bad request: session cancelled", "BAD_REQUEST")
                if not self.alive():
                    assert self.proc is not None
                    command.settle(procs_exit_code(self.proc.returncode))
                    return command.finished() or 0
                self.changed.wait(0.05)

    def terminate(self) -> None:
        """SIGTERM the shell's group and tree, SIGKILL what is left after the grace period;
        then remove the session's files."""
        self.deleted = True
        self._notify()
        if self.proc is not None:
            pid = self.proc.pid
            tree = procs.descendants(pid)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                procs.kill_group(pid, sig)
                for child in tree:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(child, sig)
                if self._ended(tree, GRACE if sig == signal.SIGTERM else 1.0):
                    break
            procs.forget(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _ended(self, tree: list[int], timeout: float) -> bool:
        """Wait until the shell and every process of `tree` are gone (zombies count)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None or any(_running(pid) for pid in tree):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


def procs_exit_code(returncode: int | None) -> int:
    """A shell's status as a command exit code (128 + n for a signal, as shells report it)."""
    if returncode is None:
        return -1
    return returncode if returncode >= 0 else 128 - returncode


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"
