"""What the agent's file operations share: the daemon's error words, file info, confinement.

Paths are used as the sandbox sees them (relative ones against the agent's cwd, the work
dir). Without bubblewrap the server passes ``confine``: the host directories a path must
resolve into (the sandbox's home and tmp), since nothing else keeps the agent in.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Iterator
from typing import Any

from .ops import OpError, Request

#: Go's FileMode.String() type letters, from the highest bit down, and what sets each.
_TYPE_LETTERS = (
    ("d", stat.S_ISDIR),
    ("L", stat.S_ISLNK),
    ("D", lambda m: stat.S_ISBLK(m) or stat.S_ISCHR(m)),
    ("p", stat.S_ISFIFO),
    ("S", stat.S_ISSOCK),
    ("u", lambda m: bool(m & stat.S_ISUID)),
    ("g", lambda m: bool(m & stat.S_ISGID)),
    ("c", stat.S_ISCHR),
    ("t", lambda m: bool(m & stat.S_ISVTX)),
)


def strerror(exc: OSError) -> str:
    """The errno text as Go prints it (``no such file or directory``)."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


def go_error(op: str, path: str, exc: OSError) -> str:
    """A Go ``*PathError`` message: ``stat x: no such file or directory``."""
    return f"{op} {path}: {strerror(exc)}"


def status_of(exc: OSError) -> tuple[int, str]:
    """The daemon's status for a failed stat/open: 404 missing, 403 denied, else 400."""
    if exc.errno == errno.ENOENT:
        return 404, "FILE_NOT_FOUND"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return 403, "FILE_ACCESS_DENIED"
    return 400, "BAD_REQUEST"


def failure(op: str, path: str, exc: OSError) -> OpError:
    """The daemon's answer to `exc` raised by `op` on `path`."""
    status, code = status_of(exc)
    return OpError(status, go_error(op, path, exc), code)


def bad_request(message: str) -> OpError:
    """A plain 400."""
    return OpError(400, message, "BAD_REQUEST")


def required(req: Request, *names: str, message: str = "") -> list[str]:
    """Query parameters that must be non-empty, or the daemon's 400 (``path is required``)."""
    values = [str(req.params.get(name) or "") for name in names]
    if not all(values):
        plural = "are" if len(names) > 1 else "is"
        raise bad_request(message or f"{' and '.join(names)} {plural} required")
    return values


@contextlib.contextmanager
def nul_guard(op: str, path: str) -> Iterator[None]:
    """A path with a NUL byte fails as the kernel would answer Go: EINVAL."""
    try:
        yield
    except ValueError as exc:
        if "null" not in str(exc):
            raise
        raise OpError(400, f"{op} {path}: invalid argument", "INVALID_FILE_PATH") from None


def parse_mode(text: str) -> int:
    """An octal mode string, or the daemon's 400."""
    try:
        value = int(text, 8)
    except ValueError:
        raise bad_request("invalid mode format") from None
    if not 0 <= value < 1 << 32:
        raise bad_request("invalid mode format")
    return value


def mode_string(mode: int) -> str:
    """Go's ``FileMode.String()`` of an ``st_mode`` (``drwxr-xr-x``, ``dtrwxrwxrwx``)."""
    letters = "".join(letter for letter, test in _TYPE_LETTERS if test(mode)) or "-"
    rwx = "".join(c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
    return letters + rwx


def _fraction(ns: int) -> str:
    digits = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return f".{digits}" if digits else ""


def go_time_string(ns: int) -> str:
    """Go's ``time.Time.String()`` in UTC (the container's zone)."""
    base = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{base}{_fraction(ns)} +0000 UTC"


def rfc3339_nano(ns: int) -> str:
    """A UTC time as Go marshals ``time.Time`` to JSON."""
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{base}{_fraction(ns)}Z"


def file_info(path: str, st: os.stat_result | None = None) -> dict[str, Any]:
    """The daemon's ``FileInfo`` of `path` (symlinks followed); owner and group are the
    numeric ids, as the daemon formats them."""
    if st is None:
        st = os.stat(path)
    name = os.path.basename(path.rstrip("/")) or "/"
    return {
        "name": name,
        "path": os.path.abspath(path),
        "size": st.st_size,
        "mode": mode_string(st.st_mode),
        "modTime": go_time_string(st.st_mtime_ns),
        "modifiedAt": rfc3339_nano(st.st_mtime_ns),
        "isDir": stat.S_ISDIR(st.st_mode),
        "owner": str(st.st_uid),
        "group": str(st.st_gid),
        "permissions": f"{stat.S_IMODE(st.st_mode) & 0o777:04o}",
    }


def mkdir_all(path: str, mode: int) -> None:
    """Go's ``os.MkdirAll``: every missing directory with `mode` (umask applies); an
    existing directory is fine; raises the first failure."""
    try:
        if stat.S_ISDIR(os.stat(path).st_mode):
            return
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    except FileNotFoundError:
        pass
    parent = os.path.dirname(path.rstrip("/"))
    if parent and parent != path:
        mkdir_all(parent, mode)
    try:
        os.mkdir(path, mode)
    except OSError:
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(path).st_mode):
                return
        raise


class Confinement:
    """The host directories paths must stay in (no confinement under bubblewrap)."""

    def __init__(self, req: Request) -> None:
        roots = req.params.get("confine")
        self.roots = [os.path.realpath(r) for r in roots] if roots else None

    def check(self, path: str, *, allow_root: bool = True) -> None:
        """400 INVALID_FILE_PATH when `path` resolves outside the sandbox (or is a root
        itself and `allow_root` is false)."""
        if self.roots is None:
            return
        with nul_guard("stat", path):
            real = os.path.realpath(path)
        for root in self.roots:
            if real == root and not allow_root:
                raise OpError(
                    400, f"refusing to touch the sandbox root {path!r}", "INVALID_FILE_PATH"
                )
            if real == root or real.startswith(root.rstrip("/") + "/"):
                return
        raise OpError(
            400,
            f"{path!r} is outside the sandbox (allowed: {', '.join(self.roots)})",
            "INVALID_FILE_PATH",
        )

    def problem(self, path: str) -> str | None:
        """Why `path` is refused, or None."""
        try:
            self.check(path)
        except OpError as exc:
            return exc.message
        return None
