"""Toolbox file transfers: bulk upload and download (and the single-file routes), streamed
through the sandbox's agent one bounded chunk at a time.

As the daemon does: an upload writes each file as its part arrives (a failing file is an
entry in ``errors``, the others are still written; answer 400 if any failed), and a download
answers one multipart part per path, ``file`` or ``error``, whose Content-Disposition carries
the path both as ``filename`` (Latin-1) and as ``filename*`` (RFC 5987).
"""

from __future__ import annotations

import json
import mimetypes
import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aiohttp import BodyPartReader, web

from ..context import multipart_reader
from ..errors import SOURCE_DAEMON, ApiError, daemon_error
from ..sandboxes.agent_client import Agent, AgentGone, Reply
from .common import agent_of, ctx_of, query_path

#: Bytes moved per agent call.
CHUNK = 1 << 20
BOUNDARY = "DAYTONA-FILE-BOUNDARY"
_INDEX = re.compile(r"^files\[(.*)\]\.(path|file)$")


@dataclass
class Files:
    """The agent a transfer talks to and the confinement its paths need."""

    agent: Agent
    confine: list[str] | None

    @classmethod
    async def of(cls, request: web.Request) -> Files:
        """The transfer's sandbox agent (the sandbox must be started)."""
        record, agent = await agent_of(request)
        return cls(agent, ctx_of(request).paths(record).confine())

    async def call(self, op: str, params: dict[str, Any], payload: bytes = b"") -> Reply:
        """One agent call with the confinement added."""
        return await self.agent.call(op, {**params, "confine": self.confine}, payload)

    async def write(self, part: BodyPartReader, dest: str) -> tuple[int, str | None]:
        """Stream one upload part into `dest`: (bytes received, error or None)."""
        buffer, total, first, error = bytearray(), 0, True, None
        while True:
            chunk = await part.read_chunk(CHUNK)
            buffer += chunk
            if len(buffer) >= CHUNK or not chunk:
                if error is None:
                    try:
                        await self.call(
                            "files.write", {"path": dest, "create": first}, bytes(buffer)
                        )
                    except AgentGone:
                        raise
                    except ApiError as exc:
                        error = exc.message
                total += len(buffer)
                buffer.clear()
                first = False
            if not chunk:
                return total, error


def _upload_answer(errors: list[str], files: list[dict[str, Any]]) -> web.Response:
    if errors:
        return web.json_response({"errors": errors, "files": files or None}, status=400)
    return web.json_response({"files": files or None})


async def bulk_upload(request: web.Request) -> web.Response:
    """``POST /files/bulk-upload``: fields ``files[i].path`` then ``files[i].file``."""
    files = await Files.of(request)
    try:
        reader = await multipart_reader(request)
    except (AssertionError, ValueError, KeyError):
        return web.json_response({"errors": ["invalid multipart form"]}, status=400)
    dests: dict[str, str] = {}
    errors: list[str] = []
    written: list[dict[str, Any]] = []
    checked = files.confine is None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        found = _INDEX.match(part.name or "")
        if found is None:
            await part.release()
            continue
        index, kind = found.groups()
        if kind == "path":
            dest = (await part.text()).strip()
            if dest:
                dests[index] = dest
            else:
                errors.append(f"path[{index}]: empty path")
            continue
        if index not in dests:
            errors.append(f"file[{index}]: missing .path metadata")
            await part.release()
            continue
        if not checked:
            # Without bubblewrap nothing is written unless every path stays in the sandbox.
            refused = (await files.call("files.confined", {"paths": list(dests.values())})).data
            if refused["errors"]:
                return _upload_answer(refused["errors"], [])
            checked = True
        size, error = await files.write(part, dests[index])
        if error:
            errors.append(error)
        else:
            written.append({"path": dests[index], "bytes": size})
    return _upload_answer(errors, written)


async def upload_file(request: web.Request) -> web.Response:
    """``POST /files/upload?path=``: the multipart field ``file`` saved at ``path``; 200."""
    path = query_path(request)
    files = await Files.of(request)
    reader = await multipart_reader(request)
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name == "file":
            refused = (await files.call("files.confined", {"paths": [path]})).data["errors"]
            if refused:
                raise daemon_error(400, refused[0], "INVALID_FILE_PATH")
            _, error = await files.write(part, path)
            if error:
                raise daemon_error(400, error, "BAD_REQUEST")
            return web.Response(status=200)
        await part.release()
    raise daemon_error(400, "http: no such file", "BAD_REQUEST")


def _latin1(path: str) -> str:
    """The daemon's plain ``filename``: quotes escaped, anything not Latin-1 printable ``_``."""
    escaped = path.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r", "").replace("\n", "").replace("\0", "")
    return "".join("_" if ord(c) > 0xFF or ord(c) < 0x20 or ord(c) == 0x7F else c for c in escaped)


def disposition(kind: str, path: str) -> str:
    """``form-data; name="file"; filename="<path>"; filename*=utf-8''<path>``."""
    encoded = urllib.parse.quote(path, safe="!#$&+-.^_`|~")
    return f'form-data; name="{kind}"; filename="{_latin1(path)}"; filename*=utf-8\'\'{encoded}'


def _content_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path, strict=True)
    if guessed is None:
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def _part_head(first: bool, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{key}: {value}\r\n" for key, value in sorted(headers.items()))
    return f"{'' if first else chr(13) + chr(10)}--{BOUNDARY}\r\n{lines}\r\n".encode("latin-1")


def _error_part(path: str, error: ApiError, method: str) -> bytes:
    body = {
        "statusCode": error.status,
        "message": error.message,
        "code": error.code,
        "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "path": path,
        "method": method,
        "source": SOURCE_DAEMON,
    }
    return json.dumps(body).encode()


async def bulk_download(request: web.Request) -> web.StreamResponse:
    """``POST /files/bulk-download`` ``{"paths": [...]}``: a multipart answer streamed as the
    files are read; an unreadable path is an ``error`` part with the daemon's JSON error."""
    try:
        paths = json.loads(await request.text() or "null")["paths"]
        if not paths or not all(isinstance(p, str) for p in paths):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        message = 'request body must be {"paths": [ ... ]} and non-empty'
        return web.json_response({"error": message}, status=400)
    files = await Files.of(request)
    response = web.StreamResponse(
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    )
    await response.prepare(request)
    for number, path in enumerate(paths):
        try:
            reply = await files.call("files.read", {"path": path, "length": CHUNK})
        except AgentGone:
            raise
        except ApiError as exc:
            head = {
                "Content-Type": "application/json; charset=utf-8",
                "Content-Disposition": disposition("error", path),
            }
            await response.write(_part_head(number == 0, head))
            await response.write(_error_part(path, exc, request.method))
            continue
        head = {
            "Content-Type": _content_type(path),
            "Content-Disposition": disposition("file", path),
            "Content-Length": str(reply.data["size"]),
        }
        await response.write(_part_head(number == 0, head))
        await _stream_rest(files, response, path, reply)
    await response.write(f"\r\n--{BOUNDARY}--\r\n".encode())
    await response.write_eof()
    return response


async def _stream_rest(files: Files, response: web.StreamResponse, path: str, reply: Reply) -> None:
    """Write `reply`'s chunk and every following one until the end of the file. A failure
    mid-file ends the response without its closing boundary, so the client sees it
    truncated rather than a short file."""
    offset = 0
    while True:
        await response.write(reply.payload)
        offset += len(reply.payload)
        if reply.data["eof"]:
            return
        reply = await files.call("files.read", {"path": path, "offset": offset, "length": CHUNK})


async def download_file(request: web.Request) -> web.StreamResponse:
    """``GET /files/download?path=``: the file as ``application/octet-stream``."""
    path = query_path(request)
    files = await Files.of(request)
    reply = await files.call("files.read", {"path": path, "length": CHUNK})
    name = path.rstrip("/").rsplit("/", 1)[-1]
    encoded = urllib.parse.quote(name, safe="!#$&+-.^_`|~")
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Description": "File Transfer",
            "Content-Disposition": f'attachment; filename="{_latin1(name)}"; '
            f"filename*=utf-8''{encoded}",
            "Content-Length": str(reply.data["size"]),
        }
    )
    await response.prepare(request)
    await _stream_rest(files, response, path, reply)
    await response.write_eof()
    return response


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    """Register this module's routes under `base` (``/api/toolbox/{sandboxId}``)."""
    router.add_post(f"{base}/files/bulk-upload", bulk_upload)
    router.add_post(f"{base}/files/bulk-download", bulk_download)
    router.add_post(f"{base}/files/upload", upload_file)
    router.add_get(f"{base}/files/download", download_file)
