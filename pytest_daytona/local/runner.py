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
        return SandboxPaths.for_sandbox(home, tmp, isolated=self.isolated)

    def _environment(self, paths: SandboxPaths, tmp: Path, extra: dict[str, str]) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", _DEFAULT_PATH),
            "HOME": paths.work_dir,
            "USER": "daytona",
            "LOGNAME": "daytona",
            "LANG": "C.UTF-8",
        }
        if not self.isolated:
            env["TMPDIR"] = str(tmp)
        env.update(extra)
        return env

    def _argv(
        self, command: str, cwd: str, home: Path, tmp: Path, env: dict[str, str]
    ) -> list[str]:
        if self.bwrap is None:
            return ["/bin/sh", "-c", command]
        argv = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for hidden in self._hidden:
            argv += ["--tmpfs", str(hidden)]
        argv += ["--tmpfs", "/home", "--bind", str(home), SANDBOX_HOME, "--bind", str(tmp), "/tmp"]
        argv += ["--unshare-pid", "--die-with-parent", "--clearenv"]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        argv += ["--chdir", cwd, "--", "/bin/sh", "-c", command]
        return argv

    async def run(
        self,
        command: str,
        *,
        home: Path,
        tmp: Path,
        cwd: str,
        env: dict[str, str],
        timeout: float,
    ) -> ExecOutcome:
        """Run `command` with ``/bin/sh -c`` in the sandbox, cwd being an in-sandbox path."""
        paths = self.paths(home, tmp)
        full_env = self._environment(paths, tmp, env)
        argv = self._argv(command, cwd, home, tmp, full_env)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=None if self.isolated else str(paths.host(cwd)),
            env=None if self.isolated else full_env,
            start_new_session=True,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            return ExecOutcome(None, "", True)
        finally:
            if proc.returncode is None:
                _kill_group(proc.pid)
        return ExecOutcome(proc.returncode, out.decode("utf-8", errors="replace"), False)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
