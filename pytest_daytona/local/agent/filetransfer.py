"""File contents in and out, one bounded chunk a call, so big files never sit in memory whole.

An upload is ``files.write`` with ``create`` (parents made, file truncated) and then appends;
a download is ``files.read`` at growing offsets until ``eof``. Errors read as the daemon's
bulk upload and bulk download report them.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from .fsutil import Confinement, go_error, mkdir_all, strerror
from .ops import OpError, Request, Result, op

#: Largest chunk a read answers with.
MAX_CHUNK = 8 << 20


def _classify(path: str, exc: OSError | ValueError) -> OpError:
    """The bulk download's status, code and message for a file that cannot be opened."""
    number = exc.errno if isinstance(exc, OSError) else errno.EINVAL
    if number == errno.ENOENT:
        return OpError(404, f"file not found: {path}", "FILE_NOT_FOUND")
    if number in (errno.EACCES, errno.EPERM):
        return OpError(403, f"permission denied: {path}", "FILE_ACCESS_DENIED")
    if number == errno.EINVAL:
        return OpError(400, f"invalid file path: {path}", "INVALID_FILE_PATH")
    assert isinstance(exc, OSError)
    return OpError(500, f"failed to open file: {go_error('open', path, exc)}", "FILE_READ_FAILED")


@op("files.read")
def read_chunk(req: Request) -> Result:
    """Up to ``length`` bytes of ``path`` from ``offset``; ``size`` (at open) and ``eof``."""
    path = str(req.params.get("path") or "")
    if not path:
        raise OpError(400, "invalid file path: path is empty", "INVALID_FILE_PATH")
    Confinement(req).check(path)
    offset = int(req.params.get("offset") or 0)
    length = min(int(req.params.get("length") or MAX_CHUNK), MAX_CHUNK)
    try:
        fd = os.open(path, os.O_RDONLY)
    except (OSError, ValueError) as exc:
        raise _classify(path, exc) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            message = f"invalid file path: path points to a directory: {path}"
            raise OpError(400, message, "INVALID_FILE_PATH")
        data = os.pread(fd, length, offset)
    except OSError as exc:
        raise OpError(500, f"failed to read file: {strerror(exc)}", "FILE_READ_FAILED") from None
    finally:
        os.close(fd)
    return {"size": info.st_size, "eof": len(data) < length}, data


@op("files.write")
def write_chunk(req: Request) -> dict[str, Any]:
    """Write the payload to ``path``: with ``create`` its parents are made (0755) and the file
    created or truncated, else the payload is appended. Errors are the bulk upload's
    per-file messages (400)."""
    path = str(req.params.get("path") or "")
    Confinement(req).check(path)
    flags = os.O_WRONLY | (os.O_CREAT | os.O_TRUNC if req.params.get("create") else os.O_APPEND)
    if req.params.get("create"):
        parent = os.path.dirname(path)
        if parent:
            try:
                mkdir_all(parent, 0o755)
            except (OSError, ValueError) as exc:
                failed = getattr(exc, "filename", None) or parent
                raise _upload_error(f"{path}: mkdir {parent}: mkdir {failed}", exc) from None
    try:
        fd = os.open(path, flags, 0o666)
    except (OSError, ValueError) as exc:
        raise _upload_error(f"{path}: create: open {path}", exc) from None
    try:
        view = memoryview(req.payload)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise _upload_error(f"{path}: write: write {path}", exc) from None
    finally:
        try:
            os.close(fd)
        except OSError as exc:
            raise _upload_error(f"{path}: close: close {path}", exc) from None
    return {"bytes": len(req.payload)}


def _upload_error(prefix: str, exc: OSError | ValueError) -> OpError:
    reason = strerror(exc) if isinstance(exc, OSError) and exc.errno else "invalid argument"
    return OpError(400, f"{prefix}: {reason}", "BAD_REQUEST")


@op("files.confined")
def confined(req: Request) -> dict[str, Any]:
    """Why each of ``paths`` is refused (only without bubblewrap; empty when all are fine)."""
    confinement = Confinement(req)
    problems = (confinement.problem(str(p)) for p in req.params.get("paths") or [])
    return {"errors": [p for p in problems if p]}
