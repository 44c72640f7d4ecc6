"""The aiohttp application: bearer-token auth, counters, fault injection, Socket.IO events."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from aiohttp import web

from . import toolbox
from .context import LOCAL, LocalContext, parse_body, read_ahead
from .control import ErrorStateRule, FaultRule, LatencyRule
from .errors import ApiError, error_response
from .rest import metrics, preview, sandbox_ops, sandboxes, snapshots

log = logging.getLogger(__name__)

API = "/api"
LOCAL_PREFIX = f"{API}/_local"
SOCKETIO_PATH = f"{API}/socket.io"
_TOOLBOX_PREFIX = f"{API}/toolbox/{{sandboxId}}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_name(request: web.Request) -> str:
    """``METHOD /template`` of a request, relative to the API or toolbox base."""
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else request.path
    for prefix in (_TOOLBOX_PREFIX, API):
        if template.startswith(prefix):
            template = template[len(prefix) :] or "/"
            break
    return f"{request.method} {template}"


def _authorized(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


@web.middleware
async def gatekeeper(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth first (nothing runs without the token), then counters, faults and latency."""
    ctx = request.app[LOCAL]
    if request.path.startswith(SOCKETIO_PATH):
        return await handler(request)  # Socket.IO checks its own auth payload on connect
    if request.path.startswith(f"{preview.PROXY_PREFIX}/"):
        return await handler(request)  # preview links check the sandbox's preview token
    if not _authorized(request, ctx.token):
        return error_response(401, "Unauthorized: missing or invalid bearer token", request=request)
    if request.path.startswith(LOCAL_PREFIX):
        return await _answer(request, handler)
    route = route_name(request)
    ctx.control.count(route)
    delay = ctx.control.delay(route)
    if delay:
        await asyncio.sleep(delay)
    fault = ctx.control.take_fault(route)
    if fault is None:
        return await _answer(request, handler)
    if fault.complete_after is not None:
        await _complete_later(request, handler, route, fault.complete_after)
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
    if fault.status == 429 and headers is None:
        headers = {"Retry-After": "1"}
    return error_response(fault.status, fault.message, headers=headers, request=request)


async def _complete_later(request: web.Request, handler: Handler, route: str, after: float) -> None:
    """Carry the request out `after` seconds from now, though its client got a fault."""
    try:
        await read_ahead(request)  # the client may not wait for its body to be read
    except Exception as exc:  # no body, no late completion; the fault still goes out
        log.warning("%s: body unreadable, no late completion: %s", route, exc)
        return

    async def work() -> str:
        response = await _answer(request, handler)
        return f"{response.status} {response.reason}"

    request.app[LOCAL].late.schedule(after, route, work)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response(request)
    except web.HTTPMethodNotAllowed:  # Nest answers an unknown method+path pair with 404
        return error_response(404, f"Cannot {request.method} {request.path}", request=request)
    except web.HTTPException as exc:
        return error_response(exc.status, exc.reason, request=request)


# -- /_local: stats and fault injection ---------------------------------------------------


def stats(ctx: LocalContext) -> dict[str, Any]:
    """Counters tests and benchmarks read (`/_local` calls themselves are not counted)."""
    return {
        "creates": ctx.lifecycle.creates,
        "live": len(ctx.lifecycle.store),
        "requests": ctx.control.requests,
        "by_route": dict(ctx.control.by_route),
        "states": {r.id: r.state.value for r in ctx.lifecycle.store},
        "late_pending": len(ctx.late),
        "isolation": "bwrap" if ctx.agents.isolated else "none",
    }


async def get_stats(request: web.Request) -> web.Response:
    """``GET /_local/stats``."""
    return web.json_response(stats(request.app[LOCAL]))


async def add_fault(request: web.Request) -> web.Response:
    """``POST /_local/faults``: the next `count` calls of `route` answer `status`."""
    rule = await parse_body(request, FaultRule)
    request.app[LOCAL].control.faults.append(rule)
    return web.json_response(rule.model_dump())


async def set_latency(request: web.Request) -> web.Response:
    """``POST /_local/latency``: every call of `route` waits `seconds`."""
    rule = await parse_body(request, LatencyRule)
    request.app[LOCAL].control.set_latency(rule)
    return web.json_response(rule.model_dump())


async def force_error(request: web.Request) -> web.Response:
    """``POST /_local/sandbox/{sandboxIdOrName}/error``: push a sandbox into ``error``."""
    rule = await parse_body(request, ErrorStateRule)
    lifecycle = request.app[LOCAL].lifecycle
    record = lifecycle.lookup(request.match_info["sandboxIdOrName"])
    await lifecycle.fail(record, reason=rule.reason, recoverable=rule.recoverable)
    return web.json_response(lifecycle.dto(record))


async def reset(request: web.Request) -> web.Response:
    """``POST /_local/reset``: drop faults, latencies and counters (sandboxes stay)."""
    request.app[LOCAL].control.reset()
    return web.json_response({})


def build_app(ctx: LocalContext) -> tuple[web.Application, socketio.AsyncServer]:
    """The application with every route, and the Socket.IO server attached to it."""
    # `by_host` serves Daytona's host-form preview links before routing and auth.
    app = web.Application(middlewares=[preview.by_host, gatekeeper], client_max_size=1 << 30)
    app[LOCAL] = ctx
    sandboxes.add_routes(app.router, API)
    sandbox_ops.add_routes(app.router, API)
    snapshots.add_routes(app.router, API)
    metrics.add_routes(app, API)
    toolbox.add_routes(app.router, API)
    preview.setup(app, API)
    app.router.add_get(f"{LOCAL_PREFIX}/stats", get_stats)
    app.router.add_post(f"{LOCAL_PREFIX}/faults", add_fault)
    app.router.add_post(f"{LOCAL_PREFIX}/latency", set_latency)
    app.router.add_post(f"{LOCAL_PREFIX}/sandbox/{{sandboxIdOrName}}/error", force_error)
    app.router.add_post(f"{LOCAL_PREFIX}/reset", reset)

    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins=[], logger=False)

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> bool:
        token = auth.get("token") if isinstance(auth, dict) else None
        return isinstance(token, str) and hmac.compare_digest(token.encode(), ctx.token.encode())

    sio.on("connect", connect)
    sio.attach(app, socketio_path=SOCKETIO_PATH.lstrip("/"))
    return app, sio
