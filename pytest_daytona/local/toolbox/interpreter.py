"""``/process/interpreter/*``: the code interpreter's contexts and its execution WebSocket.

Wire protocol (SDK 0.226.1 ``CodeInterpreter.run_code``, daemon v0.190.0 ``interpreter/``): the
client opens ``GET /process/interpreter/execute`` as a WebSocket and sends one JSON text message
``{code, contextId?, envs?, timeout?}``; the server sends one JSON text message per output chunk
``{type, text, name, value, traceback}`` (types stdout, stderr, error, control) and then closes:
1000 when done, 4008 on timeout, 1008 for a bad request or unknown context, 1001 when the
worker process ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel

from ..context import parse_body
from ..errors import ApiError
from .common import agent_call, agent_of

_CLOSE_PROTOCOL = 1002
_CLOSE_INTERNAL = 1011


class CreateContextBody(BaseModel):
    """``POST /process/interpreter/context`` body."""

    cwd: str | None = None
    language: str | None = None


async def create_context(request: web.Request) -> web.Response:
    """Start a context; the ``InterpreterContext``."""
    body = await parse_body(request, CreateContextBody)
    params = {"cwd": body.cwd, "language": body.language}
    return web.json_response(await agent_call(request, "interp.create", params))


async def list_contexts(request: web.Request) -> web.Response:
    """``{"contexts": [...]}``, without the default context."""
    return web.json_response(await agent_call(request, "interp.list", {}))


async def delete_context(request: web.Request) -> web.Response:
    """Stop and forget a context; 400 for ``default``, 404 for an unknown id."""
    params = {"id": request.match_info["contextId"]}
    return web.json_response(await agent_call(request, "interp.delete", params))


async def _drain(ws: web.WebSocketResponse) -> None:
    # Reading is what makes aiohttp answer the client's keepalive pings.
    async for _ in ws:
        pass


def _request(message: Any) -> tuple[dict[str, Any] | None, str]:
    """The execute request in the first message, or None and the close reason."""
    if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None, "failed to read first message"
    try:
        body = json.loads(message.data)
    except ValueError:
        return None, "invalid JSON payload"
    return (body, "") if isinstance(body, dict) else (None, "invalid JSON payload")


async def execute(request: web.Request) -> web.WebSocketResponse:
    """``GET /process/interpreter/execute``: run code, streaming its chunks."""
    record, agent = await agent_of(request)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    body, problem = _request(await ws.receive())
    if body is None:
        await ws.close(code=_CLOSE_PROTOCOL, message=problem.encode())
        return ws
    params = {
        "base_env": record.env,
        "code": body.get("code"),
        "contextId": body.get("contextId"),
        "envs": body.get("envs"),
        "timeout": body.get("timeout"),
    }
    reader = asyncio.ensure_future(_drain(ws))
    close: dict[str, Any] = {"code": _CLOSE_INTERNAL, "reason": "no answer"}
    try:
        async for reply in agent.stream("interp.execute", params):
            chunk = reply.data.get("chunk")
            if chunk is None:
                close = reply.data
            elif not ws.closed:
                await ws.send_str(json.dumps(chunk))
    except ApiError as exc:
        close = {"code": _CLOSE_INTERNAL, "reason": exc.message}
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        record.touch()
    await ws.close(code=int(close["code"]), message=str(close.get("reason") or "").encode())
    return ws


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    """Register this module's routes under `base` (``/api/toolbox/{sandboxId}``)."""
    router.add_post(f"{base}/process/interpreter/context", create_context)
    router.add_get(f"{base}/process/interpreter/context", list_contexts)
    router.add_delete(f"{base}/process/interpreter/context/{{contextId}}", delete_context)
    router.add_get(f"{base}/process/interpreter/execute", execute)
