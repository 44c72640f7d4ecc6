"""``/process/pty/*``: terminal sessions and their WebSocket, bridged to the sandbox's agent.

Wire protocol (SDK 0.226.1 ``Process.create_pty_session``/``connect_pty_session``,
``PtyHandle``): ``GET /process/pty/create-connect?id=&cols=&rows=&cwd=`` (envs as the
subprotocol ``X-Daytona-Pty-Envs~<base64url JSON>``) or ``GET /process/pty/{id}/connect``
upgrades; the server sends ``{"type": "control", "status": "connected"}``, then the terminal's
output as binary messages; client messages are input. When the shell ends, clients that offered
``X-Daytona-Pty-Exit-Control`` get ``{"status": "exited", "exitCode", "exitReason"?}``, and all
get a close (1000 for exit code 0, else 1011) whose reason is ``{"exitCode", "exitReason"?}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import uuid
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel

from ..context import parse_body
from ..errors import ApiError
from ..sandboxes.agent_client import Agent
from ..state.records import SandboxRecord
from .common import agent_call, agent_of

EXIT_CONTROL = "X-Daytona-Pty-Exit-Control"
_ENVS_PREFIX = "X-Daytona-Pty-Envs~"


class PtyCreateBody(BaseModel):
    """``POST /process/pty`` body."""

    id: str = ""
    cwd: str | None = None
    envs: dict[str, str] | None = None
    cols: int | None = None
    rows: int | None = None
    lazyStart: bool = False


class PtyResizeBody(BaseModel):
    """``POST /process/pty/{id}/resize`` body."""

    cols: int
    rows: int


def exit_reason(code: int) -> str | None:
    """The daemon's reason for a shell's exit code (None for 0)."""
    named = {0: None, 130: "Ctrl+C", 137: "SIGKILL", 143: "SIGTERM"}
    if code in named:
        return named[code]
    return f"signal {code - 128}" if code > 128 else "non-zero exit"


async def create(request: web.Request) -> web.Response:
    """Start a session without attaching; 201 ``{"sessionId"}``."""
    body = await parse_body(request, PtyCreateBody)
    data = await agent_call(request, "pty.create", body.model_dump(exclude={"lazyStart"}))
    return web.json_response(data, status=201)


async def list_sessions(request: web.Request) -> web.Response:
    """``{"sessions": [...]}``."""
    return web.json_response(await agent_call(request, "pty.list", {}))


async def get(request: web.Request) -> web.Response:
    """One session's ``PtySessionInfo``."""
    params = {"id": request.match_info["sessionId"]}
    return web.json_response(await agent_call(request, "pty.get", params))


async def delete(request: web.Request) -> web.Response:
    """Kill a session's shell (attached clients see exit code 137)."""
    params = {"id": request.match_info["sessionId"]}
    return web.json_response(await agent_call(request, "pty.kill", params))


async def resize(request: web.Request) -> web.Response:
    """Resize the terminal; the updated info (410 once the session is gone)."""
    body = await parse_body(request, PtyResizeBody)
    params = {"id": request.match_info["sessionId"], "cols": body.cols, "rows": body.rows}
    return web.json_response(await agent_call(request, "pty.resize", params))


def _offered_envs(request: web.Request) -> dict[str, str]:
    for token in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        token = token.strip()
        if token.startswith(_ENVS_PREFIX):
            raw = token[len(_ENVS_PREFIX) :]
            with contextlib.suppress(binascii.Error, ValueError):
                envs = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
                if isinstance(envs, dict):
                    return {str(k): str(v) for k, v in envs.items()}
    return {}


async def create_connect(request: web.Request) -> web.WebSocketResponse:
    """Create a session from the query and attach to it in one round trip."""
    query = request.query
    params: dict[str, Any] = {"id": query.get("id", ""), "cwd": query.get("cwd")}
    try:
        params.update({key: int(query[key]) for key in ("cols", "rows") if key in query})
    except ValueError:
        raise ApiError(400, "cols and rows must be integers", code="BAD_REQUEST") from None
    params["envs"] = _offered_envs(request)
    await agent_call(request, "pty.create", params)
    record, agent = await agent_of(request)
    return await _attach(request, record, agent, params["id"])


async def connect(request: web.Request) -> web.WebSocketResponse:
    """Attach to an existing session (an unknown one gets an error control message)."""
    record, agent = await agent_of(request)
    # The SDK gives the first message only 0.1 s: make sure the agent is up before upgrading.
    with contextlib.suppress(ApiError):
        await agent.call("pty.list", {})
    return await _attach(request, record, agent, request.match_info["sessionId"])


async def _attach(
    request: web.Request, record: SandboxRecord, agent: Agent, session_id: str
) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=(EXIT_CONTROL,))
    await ws.prepare(request)
    client = uuid.uuid4().hex
    ids = {"id": session_id, "client": client}

    async def forward_input() -> None:
        async for message in ws:
            if message.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                data = message.data if isinstance(message.data, bytes) else message.data.encode()
                with contextlib.suppress(ApiError):
                    await agent.call("pty.input", ids, data)
        with contextlib.suppress(ApiError):
            await agent.call("pty.detach", ids)

    reader = asyncio.ensure_future(forward_input())
    final: dict[str, Any] = {}
    try:
        async for reply in agent.stream("pty.attach", ids):
            if reply.payload:
                if not ws.closed:
                    await ws.send_bytes(reply.payload)
            elif reply.data.get("status") == "connected":
                await ws.send_str(json.dumps({"type": "control", "status": "connected"}))
            else:
                final = reply.data
    except ApiError as exc:
        error = f"Failed to connect to PTY session: {exc.message}"
        await ws.send_str(json.dumps({"type": "control", "status": "error", "error": error}))
    record.touch()
    if "exitCode" in final and not ws.closed:
        await _send_exit(ws, int(final["exitCode"]))
    reader.cancel()
    with contextlib.suppress(BaseException):
        await reader
    await ws.close()
    return ws


async def _send_exit(ws: web.WebSocketResponse, code: int) -> None:
    reason = exit_reason(code)
    data: dict[str, Any] = {"exitCode": code}
    if reason is not None:
        data["exitReason"] = reason
    if ws.ws_protocol == EXIT_CONTROL:
        await ws.send_str(json.dumps({"type": "control", "status": "exited", **data}))
    await ws.close(code=1000 if code == 0 else 1011, message=json.dumps(data).encode())


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    """Register this module's routes under `base` (``/api/toolbox/{sandboxId}``)."""
    router.add_get(f"{base}/process/pty/create-connect", create_connect)
    router.add_post(f"{base}/process/pty", create)
    router.add_get(f"{base}/process/pty", list_sessions)
    router.add_get(f"{base}/process/pty/{{sessionId}}", get)
    router.add_delete(f"{base}/process/pty/{{sessionId}}", delete)
    router.add_post(f"{base}/process/pty/{{sessionId}}/resize", resize)
    router.add_get(f"{base}/process/pty/{{sessionId}}/connect", connect)
