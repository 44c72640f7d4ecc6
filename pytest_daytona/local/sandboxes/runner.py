"""How sandboxes are isolated: under bubblewrap when it works here, else as plain processes."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Literal

from .sandboxfs import SANDBOX_HOME, SandboxPaths

log = logging.getLogger(__name__)

IsolationMode = Literal["auto", "bwrap", "none"]

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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


_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daytona:x:1000:1000:daytona:/home/daytona:/bin/bash\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
_GROUP = "root:x:0:\ndaytona:x:1000:\nnogroup:x:65534:\n"


class Runner:
    """How a sandbox's agent is started: under bubblewrap, or as a plain process group."""

    def __init__(self, bwrap: str | None, hidden: tuple[Path, ...] = (), etc: Path | None = None):
        self.bwrap = bwrap
        # Host directories that sandboxes must not see (the server's data dir).
        self._hidden = hidden
        self._etc = etc
        self._identity = self._identity_files() if bwrap is not None and etc is not None else None
        #: Whether sandboxes can run in images here (bubblewrap, and overlayfs in a user
        #: namespace); the server probes it.
        self.images_supported = False

    @property
    def isolated(self) -> bool:
        """Whether sandboxes get their own user, mount and PID namespaces."""
        return self.bwrap is not None

    def paths(self, home: Path, tmp: Path) -> SandboxPaths:
        """Path mapping of a sandbox whose files live in `home` and `tmp`."""
        return SandboxPaths(home, tmp, isolated=self.isolated)

    def environment(self, home: Path, tmp: Path) -> dict[str, str]:
        """The agent's environment (its processes start from it)."""
        env = {
            "PATH": os.environ.get("PATH", _DEFAULT_PATH),
            "HOME": SANDBOX_HOME if self.isolated else str(home),
            "USER": "daytona",
            "LOGNAME": "daytona",
            "LANG": "C.UTF-8",
        }
        if not self.isolated:
            env["TMPDIR"] = str(tmp)
        return env

    def _identity_files(self) -> tuple[Path, Path]:
        """/etc/passwd and /etc/group of a sandbox: root, ``daytona`` (1000) and nobody."""
        assert self._etc is not None
        self._etc.mkdir(parents=True, exist_ok=True)
        passwd, group = self._etc / "passwd", self._etc / "group"
        for path, text in ((passwd, _PASSWD), (group, _GROUP)):
            if not path.exists():
                path.write_text(text)
        return passwd, group

    def launch_argv(
        self,
        argv: list[str],
        *,
        home: Path,
        tmp: Path,
        mounts: list[tuple[Path, str]] | None = None,
        files: list[tuple[Path, str]] | None = None,
        keep: tuple[str, ...] = (),
        info_fd: int | None = None,
    ) -> list[str]:
        """`argv` wrapped so it runs as the sandbox's long-lived agent.

        Under bubblewrap: user ``daytona`` (uid 1000), own PID and mount namespaces, the host
        read-only, ``/home/daytona`` and ``/tmp`` the sandbox's own, the server's data hidden,
        volumes bound at their mount paths, `files` bound read-only over the host's. `keep`
        are host paths under ``/home`` the agent needs (its code, the Python it runs on).
        bubblewrap writes the host PID of the namespace's first process to `info_fd` (JSON).
        """
        if self.bwrap is None:
            return argv
        wrapped = [self.bwrap, "--unshare-user", "--uid", "1000", "--gid", "1000"]
        wrapped += _root_view(mounts or ())
        wrapped += ["--dev", "/dev", "--proc", "/proc"]
        for hidden in self._hidden:
            wrapped += ["--tmpfs", str(hidden)]
        wrapped += ["--tmpfs", "/home", "--tmpfs", "/root"]
        for path in _under_private(keep):
            wrapped += ["--ro-bind", path, path]
        wrapped += ["--bind", str(home), SANDBOX_HOME, "--bind", str(tmp), "/tmp"]
        if self._identity is not None:
            passwd, group = self._identity
            wrapped += ["--ro-bind", str(passwd), "/etc/passwd"]
            wrapped += ["--ro-bind", str(group), "/etc/group"]
        for source, target in mounts or ():
            wrapped += ["--bind", str(source), target]
        for source, target in files or ():
            wrapped += ["--ro-bind", str(source), target]
        wrapped += ["--unshare-pid", "--die-with-parent", "--clearenv"]
        if info_fd is not None:
            wrapped += ["--info-fd", str(info_fd)]
        for key, value in self.environment(home, tmp).items():
            wrapped += ["--setenv", key, value]
        return [*wrapped, "--chdir", SANDBOX_HOME, "--", *argv]


#: Host top-level directories a volume may be mounted inside: they are replaced by an empty
#: directory in the sandbox (elsewhere the host's read-only file system has no room for it).
_SHADOWED = frozenset({"/mnt", "/media", "/srv"})


def _root_view(mounts: list[tuple[Path, str]] | tuple[()]) -> list[str]:
    """A writable-in-memory root with each host top-level entry bound read-only onto it, so a
    volume can be mounted at a new top-level path such as ``/data``."""
    shadow = {"/" + target.split("/")[1] for _, target in mounts} & _SHADOWED
    view = ["--tmpfs", "/"]
    for entry in sorted(os.listdir("/")):
        path = "/" + entry
        if entry in ("proc", "dev", "home", "root", "tmp"):
            continue
        if path in shadow:
            view += ["--dir", path]
        elif os.path.islink(path):
            view += ["--symlink", os.readlink(path), path]
        else:
            view += ["--ro-bind", path, path]
    for _, target in mounts:
        top = "/" + target.split("/")[1]
        writable = top in shadow or top in ("/home", "/tmp") or not os.path.exists(top)
        if not writable and not os.path.exists(target):
            raise ValueError(
                f"volume mount path {target}: {top} is the host's read-only {top}; mount "
                f"under /home/daytona, /tmp, {', '.join(sorted(_SHADOWED))} or a new "
                "top-level directory"
            )
    return view


def _under_private(keep: tuple[str, ...]) -> list[str]:
    """Paths the agent needs that the ``/home`` and ``/root`` tmpfs would hide."""
    needed = {*keep, sys.base_prefix}
    return sorted(p for p in needed if p.startswith(("/home/", "/root/")))
