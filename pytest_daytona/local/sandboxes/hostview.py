"""What a sandbox on this machine's userland sees of the host: the system directories, an
``/etc`` without secrets, and the host paths a server option shares on purpose.

Everything else of the host (the project checkout, the CI workspace, other users' homes,
``/opt``, ``/srv``, mounted secrets, the server's data dir) is absent: the sandbox's root is
an empty in-memory file system with only these bound onto it, read-only.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterable
from pathlib import Path

#: Host top-level directories that hold programs, their libraries and their data.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/sys")
#: Empty directories a Linux userland expects (read-only, as the rest of the root; only
#: ``/var/tmp`` is writable, the sandbox's own).
EMPTY_DIRS = ("/mnt", "/media", "/srv", "/opt", "/run", "/var", "/var/lib", "/var/cache")
#: Files of ``/etc`` that are secrets on any host, whatever their mode says.
_SECRET_NAMES = frozenset(
    {
        "shadow",
        "shadow-",
        "gshadow",
        "gshadow-",
        "machine-id",
        "krb5.keytab",
        "sudoers",
        "opasswd",
        "credstore",
        "credstore.encrypted",
    }
)
#: Files of ``/etc`` the sandbox gets from the server instead (its own users and groups).
OWN_FILES = frozenset({"passwd", "group", "passwd-", "group-"})


def is_secret(path: str, mode: int) -> bool:
    """Whether a file or directory of the host's ``/etc`` stays out of the sandbox: a known
    secret (``shadow``, SSH host keys, machine credentials) or anything the host keeps from
    other users (not readable, or for a directory not searchable, by others)."""
    name = os.path.basename(path)
    if name in _SECRET_NAMES or (name.startswith("ssh_host_") and name.endswith("_key")):
        return True
    if stat.S_ISLNK(mode):
        return False
    needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & needed != needed


@functools.lru_cache(maxsize=4)
def etc_view(etc: str = "/etc") -> tuple[str, ...]:
    """bubblewrap arguments that build the sandbox's ``/etc`` from the host's: every entry
    bound read-only where it is (so it keeps its true owner), minus secrets and the files
    the sandbox has its own of. A directory is bound whole unless something under it stays
    out; then it is rebuilt entry by entry."""
    args: list[str] = ["--dir", "/etc"]
    _view_dir(etc, "/etc", args)
    return tuple(args)


def _view_dir(host: str, target: str, args: list[str]) -> None:
    try:
        entries = sorted(os.scandir(host), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if target == "/etc" and entry.name in OWN_FILES:
            continue
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            continue
        inside = f"{target}/{entry.name}"
        if is_secret(entry.path, mode):
            continue
        if stat.S_ISLNK(mode):
            args += ["--symlink", os.readlink(entry.path), inside]
        elif stat.S_ISDIR(mode) and _holds_secret(entry.path):
            args += ["--dir", inside]
            _view_dir(entry.path, inside, args)
        elif stat.S_ISDIR(mode) or stat.S_ISREG(mode):
            args += ["--ro-bind", entry.path, inside]


def _holds_secret(directory: str) -> bool:
    for root, dirs, files in os.walk(directory):
        for name in [*dirs, *files]:
            try:
                mode = os.lstat(os.path.join(root, name)).st_mode
            except OSError:
                return True
            if is_secret(os.path.join(root, name), mode):
                return True
    return False


def system_view() -> list[str]:
    """bubblewrap arguments for the host part of a sandbox's root: the system directories,
    empty standard directories and ``/etc`` without secrets."""
    view: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            view += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            view += ["--ro-bind", path, path]
    for path in EMPTY_DIRS:
        view += ["--dir", path]
    view += ["--perms", "1777", "--tmpfs", "/var/tmp", "--symlink", "/run", "/var/run"]
    view += etc_view()
    return view


def check_shared(paths: Iterable[str | Path]) -> tuple[str, ...]:
    """The host paths to share, absolute and existing; a clear error otherwise."""
    checked = []
    for raw in paths:
        path = os.path.abspath(os.fspath(raw))
        if not os.path.exists(path):
            raise ValueError(
                f"{raw!s} does not exist on this machine; name an existing host file or "
                "directory to share read-only with every sandbox"
            )
        checked.append(path)
    return tuple(checked)
