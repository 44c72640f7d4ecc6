"""How sandboxes are isolated: under bubblewrap when it works here, else as plain processes."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Literal

from .hostview import SYSTEM_DIRS, system_view
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
#: The host user a sandbox runs as when the server runs as root: not root, so that the
#: host's root-owned files show as ``nobody`` inside (never as the sandbox user) and
#: per-user limits apply; no host account has it.
SANDBOX_HOST_UID = 0x7FFE_0000


def user_namespace(host_uid: int) -> int:
    """A new user namespace where root is this machine's root and ``daytona`` (1000) is
    `host_uid`; an open descriptor of it (for bubblewrap's ``--userns``). Made through
    util-linux's ``unshare`` (the server runs as root; Python 3.11 has no ``os.unshare``)."""
    holder = subprocess.Popen(
        ["unshare", "--user", "sh", "-c", "read _"], stdin=subprocess.PIPE, close_fds=True
    )
    try:
        mine = os.readlink("/proc/self/ns/user")
        for _ in range(400):
            if os.readlink(f"/proc/{holder.pid}/ns/user") != mine:
                break
            time.sleep(0.005)
        else:
            raise OSError("unshare --user made no user namespace")
        mapping = f"0 0 1\n1000 {host_uid} 1\n"
        Path(f"/proc/{holder.pid}/uid_map").write_text(mapping)
        Path(f"/proc/{holder.pid}/gid_map").write_text(mapping)
        return os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait()


class Runner:
    """How a sandbox's agent is started: under bubblewrap, or as a plain process group."""

    def __init__(
        self,
        bwrap: str | None,
        hidden: tuple[Path, ...] = (),
        etc: Path | None = None,
        shared: tuple[str, ...] = (),
    ) -> None:
        self.bwrap = bwrap
        # Host paths that sandboxes must not see even under a shared path (the data dir).
        self._hidden = hidden
        self.shared = shared
        self._etc = etc
        self._identity = self._identity_files() if bwrap is not None and etc is not None else None
        #: The host user sandboxes run as (None: the server's own, mapped to ``daytona``).
        self.host_uid = SANDBOX_HOST_UID if bwrap is not None and os.geteuid() == 0 else None
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
            "PATH": _DEFAULT_PATH if self.isolated else os.environ.get("PATH", _DEFAULT_PATH),
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

    def own(self, *dirs: Path) -> None:
        """Give `dirs` (a home, volumes) to the host user sandboxes run as, so the sandbox
        user may write them; a tree made by the server (a copied home) is given whole."""
        uid = self.host_uid
        if uid is None:
            return
        for top in dirs:
            if not top.exists() or top.lstat().st_uid == uid:
                continue
            os.lchown(top, uid, uid)
            for root, names, files in os.walk(top):
                for name in [*names, *files]:
                    os.lchown(os.path.join(root, name), uid, uid)

    def launch_argv(
        self,
        argv: list[str],
        *,
        home: Path,
        tmp: Path,
        userns: int | None = None,
        mounts: list[tuple[Path, str]] | None = None,
        files: list[tuple[Path, str]] | None = None,
        keep: tuple[tuple[str, str], ...] = (),
        info_fd: int | None = None,
        own_network: bool = False,
    ) -> list[str]:
        """`argv` wrapped so it runs as the sandbox's long-lived agent.

        Under bubblewrap: user ``daytona`` (uid 1000), own PID and mount namespaces (and
        network namespace with `own_network`); the root an in-memory file system with the
        host's system directories, an ``/etc`` without secrets and the shared host paths
        bound read-only (hostview); ``/home/daytona`` and ``/tmp`` the sandbox's own;
        volumes bound at their mount paths, `files` bound read-only over the host's. `keep`
        are host paths the agent needs (its runtime). With `userns` (a
        :func:`user_namespace`, when the server is root) bubblewrap starts the agent as root
        of that namespace, which becomes ``daytona`` itself. bubblewrap writes the host PID
        of the namespace's first process to `info_fd` (JSON).
        """
        if self.bwrap is None:
            return argv
        if userns is None:
            wrapped = [self.bwrap, "--unshare-user", "--uid", "1000", "--gid", "1000"]
        else:
            wrapped = [self.bwrap, "--userns", str(userns), "--uid", "0", "--gid", "0"]
            wrapped += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        wrapped += ["--tmpfs", "/", *system_view()]
        wrapped += ["--dev", "/dev", "--proc", "/proc"]
        wrapped += ["--perms", "0755", "--dir", "/home", "--perms", "0700", "--dir", "/root"]
        targets = [target for _, target in (*keep, *(files or ()), *(mounts or ()))]
        for directory in _parents(targets):
            wrapped += ["--perms", "0755", "--dir", directory]
        for runtime, target in keep:
            wrapped += ["--ro-bind", runtime, target]
        wrapped += ["--bind", str(home), SANDBOX_HOME, "--bind", str(tmp), "/tmp"]
        for directory in _parents(list(self.shared)):
            wrapped += ["--perms", "0755", "--dir", directory]
        for path in self.shared:  # after /tmp and the home: a shared path may be under them
            wrapped += ["--ro-bind", path, path]
        for hidden in self._hidden:
            if any(_under(str(hidden), (path,)) for path in self.shared):
                wrapped += ["--tmpfs", str(hidden)]
        if self._identity is not None:
            passwd, group = self._identity
            wrapped += ["--ro-bind", str(passwd), "/etc/passwd"]
            wrapped += ["--ro-bind", str(group), "/etc/group"]
        for source, target in mounts or ():
            _check_mount_path(target)
            wrapped += ["--bind", str(source), target]
        for source, target in files or ():
            wrapped += ["--ro-bind", str(source), target]
        wrapped += ["--remount-ro", "/"]  # only its home, /tmp and volumes take writes
        wrapped += ["--unshare-pid", "--die-with-parent", "--clearenv"]
        if own_network:
            wrapped += ["--unshare-net"]
        if info_fd is not None:
            wrapped += ["--info-fd", str(info_fd)]
        for key, value in self.environment(home, tmp).items():
            wrapped += ["--setenv", key, value]
        return [*wrapped, "--chdir", SANDBOX_HOME, "--", *argv]


def _check_mount_path(target: str) -> None:
    """A volume may be mounted anywhere but inside the host's read-only system directories."""
    top = "/" + target.strip("/").split("/")[0]
    if top in (*SYSTEM_DIRS, "/etc", "/proc", "/dev"):
        raise ValueError(
            f"volume mount path {target}: {top} is the host's read-only {top}; mount under "
            "/home/daytona, /tmp, /mnt, /opt or a new top-level directory"
        )


def _parents(paths: list[str]) -> list[str]:
    """The directories above `paths` that are not on the host's view, outermost first
    (made searchable by everyone: the agent's runtime lives under them)."""
    made: list[str] = []
    for path in paths:
        parts = path.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/" + "/".join(parts[:depth])
            if directory not in made and not _under(directory, (*SYSTEM_DIRS, "/etc")):
                made.append(directory)
    return made


def _under(path: str, tops: tuple[str, ...]) -> bool:
    return any(path == top or path.startswith(f"{top}/") for top in tops)
