"""Toolbox file routes answered by the sandbox's agent: folders, delete, listing, info, move,
permissions, find, search and replace (the daemon's ``/files`` group; transfers are in
`file_transfer`)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..errors import daemon_error
from .common import files_call

#: Query parameters each route passes on to its agent operation.
_QUERY_OPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "folder": ("files.mkdir", ("path", "mode")),
    "list": ("files.list", ("path", "depth")),
    "info": ("files.info", ("path",)),
    "move": ("files.move", ("source", "destination")),
    "permissions": ("files.chmod", ("path", "mode", "owner", "group")),
    "find": ("files.find", ("path", "pattern")),
    "search": ("files.search", ("path", "pattern")),
}


async def _query_op(request: web.Request, name: str, **extra: Any) -> dict[str, Any]:
    op, keys = _QUERY_OPS[name]
    params = {key: request.query.get(key) for key in keys}
    return (await files_call(request, op, {**params, **extra})).data


async def create_folder(request: web.Request) -> web.Response:
    """``POST /files/folder?path=&mode=``: 201."""
    await _query_op(request, "folder")
    return web.Response(status=201)


async def delete_file(request: web.Request) -> web.Response:
    """``DELETE /files?path=&recursive=``: 204; a directory needs ``recursive=true``."""
    recursive = request.query.get("recursive") == "true"
    await files_call(
        request, "files.delete", {"path": request.query.get("path"), "recursive": recursive}
    )
    return web.Response(status=204)


async def list_files(request: web.Request) -> web.Response:
    """``GET /files?path=&depth=``: a FileInfo list."""
    depth = request.query.get("depth")
    if depth is not None and not depth.lstrip("-").isdigit():
        raise daemon_error(400, f"invalid depth: {depth}", "BAD_REQUEST")
    data = await _query_op(request, "list")
    return web.json_response(data["entries"])


async def file_info(request: web.Request) -> web.Response:
    """``GET /files/info?path=``: one FileInfo."""
    return web.json_response(await _query_op(request, "info"))


async def move_file(request: web.Request) -> web.Response:
    """``POST /files/move?source=&destination=``: 200, with a JSON note when the source of
    a cross-device move could not be removed."""
    data = await _query_op(request, "move")
    return web.json_response(data) if data else web.Response(status=200)


async def set_permissions(request: web.Request) -> web.Response:
    """``POST /files/permissions?path=&mode=&owner=&group=``: 200."""
    await _query_op(request, "permissions")
    return web.Response(status=200)


async def find_in_files(request: web.Request) -> web.Response:
    """``GET /files/find?path=&pattern=``: ``[{file, line, content}]``."""
    return web.json_response((await _query_op(request, "find"))["matches"])


async def search_files(request: web.Request) -> web.Response:
    """``GET /files/search?path=&pattern=``: ``{files: [...]}``."""
    return web.json_response(await _query_op(request, "search"))


async def replace_in_files(request: web.Request) -> web.Response:
    """``POST /files/replace`` ``{files, pattern, newValue}``: ``[{file, success, error?}]``."""
    try:
        body = json.loads(await request.text() or "null")
    except json.JSONDecodeError as exc:
        raise daemon_error(400, f"invalid request body: {exc}", "BAD_REQUEST") from None
    if not isinstance(body, dict) or not isinstance(body.get("files"), list):
        raise daemon_error(400, "invalid request body: files must be a list", "BAD_REQUEST")
    if not all(isinstance(f, str) for f in body["files"]):
        raise daemon_error(400, "invalid request body: files must be strings", "BAD_REQUEST")
    params = {k: body.get(k) for k in ("files", "pattern", "newValue")}
    return web.json_response((await files_call(request, "files.replace", params)).data["results"])


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    """Register this module's routes under `base` (``/api/toolbox/{sandboxId}``)."""
    for suffix in ("", "/"):
        router.add_get(f"{base}/files{suffix}", list_files)
        router.add_delete(f"{base}/files{suffix}", delete_file)
    router.add_post(f"{base}/files/folder", create_folder)
    router.add_get(f"{base}/files/info", file_info)
    router.add_post(f"{base}/files/move", move_file)
    router.add_post(f"{base}/files/permissions", set_permissions)
    router.add_get(f"{base}/files/find", find_in_files)
    router.add_get(f"{base}/files/search", search_files)
    router.add_post(f"{base}/files/replace", replace_in_files)
