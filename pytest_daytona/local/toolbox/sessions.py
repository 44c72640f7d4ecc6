"""``/process/session``: long-lived shell sessions run by the sandbox's agent (`agent.sessions`).

Answers follow the daemon for the SDK's version header: SDKs from 0.167.0 get JSON logs with
``output`` (the raw log, stream marks included) and ``stdout``/``stderr`` apart; requests without
the header get plain text (marks stripped unless ``X-Daytona-Split-Output: true``). Following
logs is a WebSocket on the logs route: binary messages of the raw log, then close 1000.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, ConfigDict, Field

from ..context import parse_body
from ..entrypoint import ensure_entrypoint
from ..errors import ApiError
from ..sandboxes.agent_client import Agent, Reply
from .common import agent_of, ctx_of

STDOUT_MARK = b"\x01\x01\x01"
STDERR_MARK = b"\x02\x02\x02"
_MARK = re.compile(b"(\x01\x01\x01|\x02\x02\x02)")
ENTRYPOINT = "entrypoint"
ENTRYPOINT_COMMAND = "entrypoint_command"


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class CreateSessionBody(_Body):
    """``POST /process/session`` body."""

    session_id: str = Field(default="", alias="sessionId")


class SessionExecuteBody(_Body):
    """``POST /process/session/{sessionId}/exec`` body (``async`` is the old ``runAsync``)."""

    command: str = ""
    run_async: bool | None = Field(default=None, alias="runAsync")
    old_async: bool | None = Field(default=None, alias="async")
    suppress_input_echo: bool | None = Field(default=None, alias="suppressInputEcho")


class SendInputBody(_Body):
    """``POST .../command/{commandId}/input`` body."""

    data: str = ""


def demux(log: bytes) -> tuple[bytes, bytes]:
    """(stdout, stderr) of a labelled log; bytes before the first mark belong to neither."""
    parts = _MARK.split(log)
    out, err = bytearray(), bytearray()
    for mark, text in zip(parts[1::2], parts[2::2], strict=True):
        (out if mark == STDOUT_MARK else err).extend(text)
    return bytes(out), bytes(err)


def strip_marks(log: bytes) -> bytes:
    """The log without its stream marks (the daemon's combined output)."""
    return log.replace(STDOUT_MARK, b"").replace(STDERR_MARK, b"")


def _text(raw: bytes) -> str:
    return raw.decode(errors="replace")


def _version(request: web.Request) -> tuple[str, tuple[int, int, int] | None]:
    text = request.headers.get("X-Daytona-SDK-Version", "")
    found = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    return text, (int(found[1]), int(found[2]), int(found[3])) if found else None


def combined_output(request: web.Request) -> bool:
    """Whether the caller gets stdout and stderr merged without marks (old or no SDK)."""
    text, parsed = _version(request)
    if not text:
        return request.headers.get("X-Daytona-Split-Output") != "true"
    return parsed is not None and parsed < (0, 27, 0) and "dev" not in text


def split_answers(request: web.Request) -> bool:
    """Whether the caller gets JSON with ``stdout``/``stderr`` apart (SDK 0.167.0 or later)."""
    text, parsed = _version(request)
    return bool(text) and ("dev" in text or (parsed is not None and parsed >= (0, 167, 0)))


async def _call(request: web.Request, op: str, params: dict[str, Any]) -> Reply:
    record, agent = await agent_of(request)
    reply = await agent.call(op, {"base_env": record.env, **params})
    record.touch()
    return reply


def _ids(request: web.Request) -> dict[str, str]:
    return {
        "session_id": request.match_info.get("sessionId", ENTRYPOINT),
        "command_id": request.match_info.get("commandId", ENTRYPOINT_COMMAND),
    }


async def list_sessions(request: web.Request) -> web.Response:
    """``GET /process/session``: every session but the entrypoint's."""
    return web.json_response((await _call(request, "sessions.list", {})).data["sessions"])


async def create_session(request: web.Request) -> web.Response:
    """``POST /process/session``: 201; 409 when the id is taken."""
    body = await parse_body(request, CreateSessionBody)
    await _call(request, "sessions.create", {"session_id": body.session_id})
    return web.Response(status=201)


async def get_session(request: web.Request) -> web.Response:
    """``GET /process/session/{sessionId}`` (and ``/entrypoint``)."""
    if "sessionId" not in request.match_info:
        await _entrypoint(request)
    return web.json_response((await _call(request, "sessions.get", _ids(request))).data)


async def delete_session(request: web.Request) -> web.Response:
    """``DELETE /process/session/{sessionId}``: 204 once its processes are gone."""
    await _call(request, "sessions.delete", _ids(request))
    return web.Response(status=204)


async def get_command(request: web.Request) -> web.Response:
    """``GET /process/session/{sessionId}/command/{commandId}``."""
    return web.json_response((await _call(request, "sessions.command", _ids(request))).data)


async def execute(request: web.Request) -> web.Response:
    """``POST /process/session/{sessionId}/exec``: 200 with the output once the command ended,
    or 202 with only ``cmdId`` for ``runAsync``."""
    body = await parse_body(request, SessionExecuteBody)
    run_async = bool(body.run_async or body.old_async)
    params = {
        "session_id": request.match_info["sessionId"],
        "command": body.command,
        "run_async": run_async,
        "suppress_input_echo": bool(body.suppress_input_echo),
    }
    reply = await _call(request, "sessions.execute", params)
    answer: dict[str, Any] = {
        "cmdId": reply.data["cmdId"],
        "output": None,
        "stdout": None,
        "stderr": None,
        "exitCode": None,
    }
    if run_async:
        return web.json_response(answer, status=202)
    answer["exitCode"] = reply.data["exitCode"]
    if combined_output(request):
        answer["output"] = _text(strip_marks(reply.payload))
        return web.json_response(answer)
    answer["output"] = _text(reply.payload)
    if split_answers(request):
        out, err = demux(reply.payload)
        answer["stdout"], answer["stderr"] = _text(out), _text(err)
    return web.json_response(answer)


async def send_input(request: web.Request) -> web.Response:
    """``POST .../command/{commandId}/input``: 204; 410 once the command ended."""
    body = await parse_body(request, SendInputBody)
    await _call(request, "sessions.input", {**_ids(request), "data": body.data})
    return web.Response(status=204)


async def command_logs(request: web.Request) -> web.StreamResponse:
    """``GET .../command/{commandId}/logs`` (and ``/entrypoint/logs``): the log so far, or over
    a WebSocket (``follow=true`` keeps it open until the command ends)."""
    entrypoint = "commandId" not in request.match_info
    if entrypoint:
        await _entrypoint(request)
    combined = not entrypoint and combined_output(request)
    if web.WebSocketResponse().can_prepare(request).ok:
        return await _follow(request, combined)
    log = (await _call(request, "sessions.logs", _ids(request))).payload
    if combined:
        log = strip_marks(log)
    elif split_answers(request):
        out, err = demux(log)
        return web.json_response({"output": _text(log), "stdout": _text(out), "stderr": _text(err)})
    return web.Response(text=_text(log), content_type="text/plain")


async def _entrypoint(request: web.Request) -> None:
    record, agent = await agent_of(request)
    await ensure_entrypoint(agent, record, ctx_of(request).lifecycle.snapshots)


async def _follow(request: web.Request, combined: bool) -> web.WebSocketResponse:
    record, agent = await agent_of(request)
    follow_id = uuid.uuid4().hex
    params = {
        **_ids(request),
        "stream": True,
        "follow": request.query.get("follow") == "true",
        "follow_id": follow_id,
    }
    replies = agent.stream("sessions.logs", params).__aiter__()
    await replies.__anext__()  # "ready", or the daemon's error before any upgrade
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    pump = asyncio.ensure_future(_pump(replies, ws, combined))
    listen = asyncio.ensure_future(_until_closed(ws))
    await asyncio.wait({pump, listen}, return_when=asyncio.FIRST_COMPLETED)
    code = WSCloseCode.OK
    if not pump.done():
        pump.cancel()
        await _unfollow(agent, follow_id)
    elif pump.exception() is not None:
        code = WSCloseCode.INTERNAL_ERROR
    listen.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        await pump
    with contextlib.suppress(ConnectionError):
        await ws.close(code=code)
    record.touch()
    return ws


async def _pump(replies: AsyncIterator[Reply], ws: web.WebSocketResponse, combined: bool) -> None:
    held = b""
    async for reply in replies:
        chunk = held + reply.payload
        held = b""
        if combined:
            keep = _partial_mark(chunk)
            chunk, held = strip_marks(chunk[: len(chunk) - keep]), chunk[len(chunk) - keep :]
        if chunk:
            await ws.send_bytes(chunk)
    if held:
        await ws.send_bytes(held)


def _partial_mark(chunk: bytes) -> int:
    """How many trailing bytes of `chunk` may begin a mark the next chunk completes."""
    for size in (2, 1):
        if chunk[-size:] in (STDOUT_MARK[:size], STDERR_MARK[:size]):
            return size
    return 0


async def _until_closed(ws: web.WebSocketResponse) -> None:
    async for _ in ws:
        pass


async def _unfollow(agent: Agent, follow_id: str) -> None:
    with contextlib.suppress(ApiError):
        await agent.call("sessions.unfollow", {"follow_id": follow_id})


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    """Register this module's routes under `base` (``/api/toolbox/{sandboxId}``)."""
    root = f"{base}/process/session"
    router.add_get(root, list_sessions)
    router.add_post(root, create_session)
    router.add_get(f"{root}/entrypoint", get_session)
    router.add_get(f"{root}/entrypoint/logs", command_logs)
    router.add_post(f"{root}/{{sessionId}}/exec", execute)
    router.add_get(f"{root}/{{sessionId}}", get_session)
    router.add_delete(f"{root}/{{sessionId}}", delete_session)
    router.add_get(f"{root}/{{sessionId}}/command/{{commandId}}", get_command)
    router.add_post(f"{root}/{{sessionId}}/command/{{commandId}}/input", send_input)
    router.add_get(f"{root}/{{sessionId}}/command/{{commandId}}/logs", command_logs)
