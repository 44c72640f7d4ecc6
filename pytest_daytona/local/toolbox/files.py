"""Toolbox file routes: folders, listing, info, delete, bulk upload and download."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, MultipartWriter, web
from pydantic import BaseModel

from ..context import multipart_reader, parse_body
from ..errors import ApiError, daemon_error
from ..sandboxfs import PathEscapeError, SandboxPaths
from .common import ctx_of, host_path, query_path, started


class DownloadBody(BaseModel):
    """``POST /files/bulk-download`` body."""

    paths: list[str]


async def create_folder(request: web.Request) -> web.Response:
    """``POST /files/folder?path=&mode=``."""
    record = started(request)
    target = host_path(ctx_of(request).paths(record), query_path(request))
    try:
        mode = int(request.query.get("mode") or "755", 8)
    except ValueError:
        raise daemon_error(400, "mode must be octal, e.g. 755", "INVALID_FILE_PATH") from None
    if target.exists() and not target.is_dir():
        raise daemon_error(409, f"{target.name} exists and is not a directory", "INVALID_FILE_PATH")
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(mode)
    return web.Response(status=201)


async def delete_file(request: web.Request) -> web.Response:
    """``DELETE /files?path=&recursive=``."""
    record = started(request)
    paths = ctx_of(request).paths(record)
    path = query_path(request)
    target = host_path(paths, path)
    if any(target == backing for _, backing in paths.roots):
        raise daemon_error(
            400, f"refusing to delete the sandbox root {path!r}", "INVALID_FILE_PATH"
        )
    if not target.is_symlink() and not target.exists():
        raise daemon_error(404, f"file not found: {path}", "FILE_NOT_FOUND")
    if target.is_dir() and not target.is_symlink():
        if request.query.get("recursive", "false").lower() != "true":
            raise daemon_error(
                400, f"{path} is a directory; pass recursive=true", "INVALID_FILE_PATH"
            )
        shutil.rmtree(target)
    else:
        target.unlink()
    return web.Response(status=204)


def _file_info(paths: SandboxPaths, entry: Path) -> dict[str, Any]:
    st = entry.lstat()
    modified = datetime.fromtimestamp(st.st_mtime, timezone.utc)
    return {
        "name": entry.name,
        "path": paths.inside(entry),
        "isDir": stat.S_ISDIR(st.st_mode),
        "size": st.st_size,
        "mode": stat.filemode(st.st_mode),
        "permissions": f"0{stat.S_IMODE(st.st_mode):o}",
        "owner": "daytona",
        "group": "daytona",
        "modTime": modified.strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC"),
        "modifiedAt": modified.isoformat(),
    }


async def list_files(request: web.Request) -> web.Response:
    """``GET /files?path=``."""
    record = started(request)
    paths = ctx_of(request).paths(record)
    path = request.query.get("path") or paths.work_dir
    target = host_path(paths, path)
    if not target.is_dir():
        raise daemon_error(404, f"directory not found: {path}", "FILE_NOT_FOUND")
    return web.json_response([_file_info(paths, e) for e in sorted(target.iterdir())])


async def file_info(request: web.Request) -> web.Response:
    """``GET /files/info?path=``."""
    record = started(request)
    paths = ctx_of(request).paths(record)
    path = query_path(request)
    target = host_path(paths, path)
    if not target.exists():
        raise daemon_error(404, f"file not found: {path}", "FILE_NOT_FOUND")
    return web.json_response(_file_info(paths, target))


async def bulk_upload(request: web.Request) -> web.Response:
    """``POST /files/bulk-upload``: fields ``files[i].path`` and ``files[i].file``.

    Every part is received into a staging directory first; only when all paths are inside
    the sandbox are the files moved into place, so a bad path writes nothing.
    """
    record = started(request)
    ctx = ctx_of(request)
    paths = ctx.paths(record)
    staging = Path(
        tempfile.mkdtemp(dir=ctx.lifecycle.store.sandbox_dir(record.id), prefix=".upload-")
    )
    try:
        dests, blobs = await _receive_upload(request, staging)
        missing = sorted(set(dests) ^ set(blobs))
        if missing:
            raise ApiError(400, f"upload entries without both path and file: {missing}")
        errors, targets = [], {}
        for index, dest in dests.items():
            try:
                targets[index] = paths.host(dest)
            except PathEscapeError as exc:
                errors.append(str(exc))
        if errors:
            return web.json_response({"errors": errors, "message": "; ".join(errors)}, status=400)
        for index, target in targets.items():
            if target.is_dir():
                errors.append(f"{dests[index]} is a directory")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(blobs[index], target)
        if errors:
            return web.json_response({"errors": errors, "message": "; ".join(errors)}, status=400)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return web.json_response({})


async def _receive_upload(
    request: web.Request, staging: Path
) -> tuple[dict[str, str], dict[str, Path]]:
    dests: dict[str, str] = {}
    blobs: dict[str, Path] = {}
    reader = await multipart_reader(request)
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            raise ApiError(400, "unexpected multipart part")
        key, _, kind = part.name.rpartition(".")
        if not key.startswith("files[") or kind not in ("path", "file"):
            raise ApiError(400, f"unexpected multipart field {part.name!r}")
        if kind == "path":
            dests[key] = await part.text()
            continue
        blob = staging / str(len(blobs))
        with blob.open("wb") as fh:
            while chunk := await part.read_chunk(1 << 16):
                fh.write(chunk)
        blobs[key] = blob
    return dests, blobs


async def bulk_download(request: web.Request) -> web.StreamResponse:
    """``POST /files/bulk-download``: a multipart answer, one ``file`` or ``error`` part a path."""
    record = started(request)
    body = await parse_body(request, DownloadBody)
    paths = ctx_of(request).paths(record)
    writer = MultipartWriter("form-data")
    for path in body.paths:
        disposition = "form-data; name={}; filename*=utf-8''" + urllib.parse.quote(path, safe="")
        try:
            target = paths.host(path)
            if not target.is_file():
                raise FileNotFoundError(path)
            data = target.read_bytes()
        except (PathEscapeError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            status, code = (
                (400, "INVALID_FILE_PATH")
                if isinstance(exc, PathEscapeError)
                else (
                    404,
                    "FILE_NOT_FOUND",
                )
            )
            error = {"message": f"{path}: {exc}", "statusCode": status, "code": code}
            writer.append(
                json.dumps(error),
                {
                    "Content-Type": "application/json",
                    "Content-Disposition": disposition.format('"error"'),
                },
            )
            continue
        writer.append(
            data,
            {
                "Content-Type": "application/octet-stream",
                "Content-Disposition": disposition.format('"file"'),
            },
        )
    return web.Response(body=writer)


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    """Register this module's routes under `base` (``/api/toolbox/{sandboxId}``)."""
    router.add_post(f"{base}/files/folder", create_folder)
    router.add_delete(f"{base}/files", delete_file)
    router.add_get(f"{base}/files", list_files)
    router.add_get(f"{base}/files/info", file_info)
    router.add_post(f"{base}/files/bulk-upload", bulk_upload)
    router.add_post(f"{base}/files/bulk-download", bulk_download)
