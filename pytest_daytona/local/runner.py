"""Running a sandbox's commands: under bubblewrap when it works here, else as plain processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .sandboxfs import SANDBOX_HOME, SandboxPaths

log = logging.getLogger(__name__)

IsolationMode = Literal["auto", "bwrap", "none"]

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ExecOutcome:
    """What a command did: exit code and combined output, or a timeout."""

    exit_code: int | None
    output: str
    timed_out: bool


def bwrap_works(bwrap: str) -> bool:
    """Whether `bwrap` can make the namespaces we need on this machine (it can be installed
    but refused by the kernel, e.g. unprivileged user namespaces switched off)."""
    try:
        probe = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--proc", "/proc", "--unshare-pid", "--", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def choose_bwrap(mode: IsolationMode) -> str | None:
    """The bwrap binary to isolate with, or None for plain processes.

    ``auto`` uses bubblewrap when it is installed and works; ``bwrap`` requires it;
    ``none`` never uses it.
    """
    if mode == "none":
        return None
    found = shutil.which("bwrap")
    if found and bwrap_works(found):
        return found
    if mode == "bwrap":
        raise RuntimeError(
            "isolation 'bwrap' was asked for but bubblewrap is "
            + ("not working here" if found else "not installed (apt-get install bubblewrap)")
        )
    return None


class Runner:
    """Starts sandbox commands in their own process group and kills the group on timeout."""

    def __init__(self, bwrap: str | None, hidden: tuple[Path, ...] = ()) -> None:
        self.bwrap = bwrap
        # Host directories that sandboxes must not see (the server's data dir).
        self._hidden = hidden

    @property
    def isolated(self) -> bool:
        """Whether commands run in their own mount and PID namespaces."""
        return self.bwrap is not None

    def paths(self, home: Path, tmp: Path) -> SandboxPaths:
        """Path mapping of a sandbox whose files live in `home` and `tmp`."""
        return SandboxPaths(home, tmp, isolated=self.isolated)

    def _environment(self, paths: SandboxPaths, extra: dict[str, str]) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", _DEFAULT_PATH),
            "HOME": paths.work_dir,
            "USER": "daytona",
            "LOGNAME": "daytona",
            "LANG": "C.UTF-8",
        }
        if not self.isolated:
            env["TMPDIR"] = str(paths.tmp)
        env.update(extra)
        return env

    def _argv(
        self, argv: list[str], paths: SandboxPaths, cwd: str, env: dict[str, str]
    ) -> list[str]:
        if self.bwrap is None:
            return argv
        wrapped = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for hidden in self._hidden:
            wrapped += ["--tmpfs", str(hidden)]
        wrapped += ["--tmpfs", "/home", "--bind", str(paths.home), SANDBOX_HOME]
        wrapped += ["--bind", str(paths.tmp), "/tmp", "--unshare-pid", "--die-with-parent"]
        wrapped += ["--clearenv"]
        for key, value in env.items():
            wrapped += ["--setenv", key, value]
        return [*wrapped, "--chdir", cwd, "--", *argv]

    async def run(
        self,
        argv: list[str],
        *,
        paths: SandboxPaths,
        cwd: str,
        host_cwd: Path | None,
        env: dict[str, str],
        timeout: float | None,
    ) -> ExecOutcome:
        """Run `argv` (no shell, as Daytona's daemon does) in the sandbox, in in-sandbox `cwd`
        (`host_cwd` on the host, needed without bubblewrap).

        A command that cannot start (not found, cwd missing) gives exit code -1 and the reason
        as output, as Daytona answers.
        """
        full_env = self._environment(paths, env)
        if (
            self.isolated
            and "/" not in argv[0]
            and not shutil.which(argv[0], path=full_env["PATH"])
        ):
            return _not_found(argv[0])
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                self._argv(argv, paths, cwd, full_env),
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                cwd=None if self.isolated else host_cwd,
                env=None if self.isolated else full_env,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            if isinstance(exc, FileNotFoundError) and "/" not in argv[0]:
                return _not_found(argv[0])
            return ExecOutcome(-1, f'exec: "{argv[0]}": {exc.strerror or exc}', False)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        try:
            output = await asyncio.wait_for(_collect(read_fd, proc), timeout)
        except asyncio.TimeoutError:
            _kill_group(proc.pid)
            proc.wait()
            return ExecOutcome(None, "", True)
        finally:
            if proc.poll() is None:
                _kill_group(proc.pid)
                proc.wait()
            os.close(read_fd)
        return ExecOutcome(proc.returncode, output.decode("utf-8", errors="replace"), False)


def _not_found(program: str) -> ExecOutcome:
    return ExecOutcome(-1, f'exec: "{program}": executable file not found in $PATH', False)


def parse_command(command: str) -> list[str]:
    """Split a command line into words the way Daytona's daemon does (it runs no shell).

    Spaces separate words; a single or double quote starts a quoted run that ends at the
    same quote character, inside which everything, the other quote included, is literal.
    Quotes are removed; there is no escaping, no variable expansion, no globbing, and an
    empty quoted word (``''``) is dropped.
    """
    words: list[str] = []
    current: list[str] = []
    quote = ""
    for char in command:
        if char in "'\"" and (not quote or char == quote):
            quote = "" if quote else char
        elif char == " " and not quote:
            if current:
                words.append("".join(current))
            current = []
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


async def _collect(read_fd: int, proc: subprocess.Popen[bytes]) -> bytes:
    """All output until EOF, then the exit status, without blocking the loop or a watcher thread.

    The exit is awaited through a pidfd where the kernel has them (no child-watcher thread per
    command: that thread is most of the cost of a short command under asyncio's own API).
    """
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []
    eof: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(read_fd, 1 << 16)
        except BlockingIOError:
            return
        if data:
            chunks.append(data)
        else:
            loop.remove_reader(read_fd)
            if not eof.done():
                eof.set_result(None)

    os.set_blocking(read_fd, False)
    loop.add_reader(read_fd, readable)
    try:
        await eof
    finally:
        loop.remove_reader(read_fd)
    await _exited(proc)
    return b"".join(chunks)


async def _exited(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    if not hasattr(os, "pidfd_open"):
        await asyncio.to_thread(proc.wait)
        return
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(proc.pid)
    done: asyncio.Future[None] = loop.create_future()

    def exited() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(pidfd, exited)
    try:
        await done
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    proc.wait()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
