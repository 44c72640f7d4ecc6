"""File operations as the daemon does them (v0.190.0 ``apps/daemon/pkg/toolbox/fs``): folders,
delete, listing, info, move and permissions, with the sandbox user's rights."""

from __future__ import annotations

import errno
import grp
import os
import pwd
import shutil
import stat
from typing import Any

from .fsutil import (
    Confinement,
    bad_request,
    failure,
    file_info,
    go_error,
    mkdir_all,
    nul_guard,
    parse_mode,
    required,
)
from .ops import OpError, Request, op


def _stat(path: str) -> os.stat_result:
    """``os.Stat`` (symlinks followed) or the daemon's 404/403/400."""
    with nul_guard("stat", path):
        try:
            return os.stat(path)
        except OSError as exc:
            raise failure("stat", path, exc) from None


@op("files.mkdir")
def create_folder(req: Request) -> dict[str, Any]:
    """``POST /files/folder``: MkdirAll with ``mode`` (default 755, umask applies)."""
    (path,) = required(req, "path")
    mode = parse_mode(str(req.params["mode"])) if req.params.get("mode") else 0o755
    Confinement(req).check(path)
    with nul_guard("mkdir", path):
        try:
            mkdir_all(path, mode)
        except OSError as exc:
            raise bad_request(go_error("mkdir", exc.filename or path, exc)) from None
    return {}


@op("files.delete")
def delete_file(req: Request) -> dict[str, Any]:
    """``DELETE /files``: a directory (or a link to one) needs ``recursive``."""
    (path,) = required(req, "path")
    Confinement(req).check(path, allow_root=False)
    info = _stat(path)
    recursive = bool(req.params.get("recursive"))
    if stat.S_ISDIR(info.st_mode) and not recursive:
        raise bad_request("cannot delete directory without recursive flag")
    try:
        if stat.S_ISDIR(info.st_mode) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError as exc:
        verb = "unlinkat" if recursive else "remove"
        raise bad_request(go_error(verb, exc.filename or path, exc)) from None
    return {}


def _entries(directory: str, depth: int) -> list[dict[str, Any]]:
    """Info of each entry (sorted by name), then its children down to `depth` levels.

    Entries whose info cannot be read (a dangling link) are left out, as the daemon does;
    links to directories are listed but not descended into.
    """
    found: list[dict[str, Any]] = []
    for name in sorted(os.listdir(directory), key=os.fsencode):
        entry = os.path.join(directory, name)
        try:
            found.append(file_info(entry))
        except OSError:
            continue
        if depth > 1 and found[-1]["isDir"] and not os.path.islink(entry):
            try:
                found += _entries(entry, depth - 1)
            except OSError:
                continue
    return found


@op("files.list")
def list_files(req: Request) -> dict[str, Any]:
    """``GET /files``: FileInfo of each entry (``depth`` levels, 1 by default)."""
    path = str(req.params.get("path") or ".")
    depth = int(req.params.get("depth") or 1)
    if depth < 1:
        raise bad_request("depth must be at least 1")
    Confinement(req).check(path)
    with nul_guard("open", path):
        try:
            entries = _entries(path, depth)
        except OSError as exc:
            raise failure("open", path, exc) from None
    return {"entries": entries}


@op("files.info")
def get_file_info(req: Request) -> dict[str, Any]:
    """``GET /files/info``."""
    (path,) = required(req, "path")
    Confinement(req).check(path)
    return file_info(path, _stat(path))


def _copy(source: str, destination: str) -> None:
    if os.path.isdir(source):
        shutil.copytree(source, destination, symlinks=False)
    else:
        shutil.copyfile(source, destination)
        shutil.copymode(source, destination)


@op("files.move")
def move_file(req: Request) -> dict[str, Any]:
    """``POST /files/move``: the destination's parent must exist and the destination not;
    across devices the tree is copied, then the source removed."""
    source, destination = required(
        req, "source", "destination", message="source and destination paths are required"
    )
    confinement = Confinement(req)
    confinement.check(source, allow_root=False)
    confinement.check(destination, allow_root=False)
    source, destination = os.path.abspath(source), os.path.abspath(destination)
    _stat(source)
    _stat(os.path.dirname(destination))
    if os.path.exists(destination):
        raise OpError(409, "destination already exists", "CONFLICT")
    try:
        os.rename(source, destination)
        return {}
    except OSError:
        pass
    try:
        _copy(source, destination)
    except (OSError, shutil.Error) as exc:
        raise bad_request(f"failed to move file: {_describe(exc)}") from None
    try:
        if os.path.isdir(source) and not os.path.islink(source):
            shutil.rmtree(source)
        else:
            os.unlink(source)
    except OSError as exc:
        return {
            "message": "file copied successfully but source could not be deleted",
            "error": f"failed to delete source: {_describe(exc)}",
        }
    return {}


def _describe(exc: OSError | shutil.Error) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return go_error("open", exc.filename or "", exc)
    return str(exc)


def _lookup(value: str, numeric_error: str, table: Any, missing: str) -> int:
    """A numeric id as is, else a name from the sandbox's own /etc/passwd or /etc/group."""
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return int(table(value)[2])
    except KeyError:
        raise bad_request(missing) from None
    except (ValueError, TypeError):
        raise bad_request(numeric_error) from None


@op("files.chmod")
def set_file_permissions(req: Request) -> dict[str, Any]:
    """``POST /files/permissions``: ``mode`` first, then ``owner``/``group`` (names or ids)."""
    (path,) = required(req, "path")
    Confinement(req).check(path)
    path = os.path.abspath(path)
    _stat(path)
    mode = str(req.params.get("mode") or "")
    if mode:
        try:
            os.chmod(path, parse_mode(mode) & 0o7777)
        except OSError as exc:
            raise bad_request(f"failed to change mode: {go_error('chmod', path, exc)}") from None
    owner, group = str(req.params.get("owner") or ""), str(req.params.get("group") or "")
    if owner or group:
        uid = _lookup(owner, "invalid user ID", pwd.getpwnam, "user not found") if owner else -1
        gid = _lookup(group, "invalid group ID", grp.getgrnam, "group not found") if group else -1
        try:
            os.chown(path, uid, gid)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # an id this user namespace does not map
                exc = PermissionError(errno.EPERM, os.strerror(errno.EPERM))
            message = f"failed to change ownership: {go_error('chown', path, exc)}"
            raise bad_request(message) from None
    return {}
