"""Toolbox ``/git`` routes, answered by the sandbox's agent with the git CLI (agent/git.py).

Statuses, shapes and the 400s checked before any git runs follow Daytona's daemon
(``apps/daemon/pkg/toolbox/git``); the request bodies are passed on as they come, as the
daemon's JSON binding does (unknown fields ignored, nothing required).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..errors import ApiError, daemon_error
from .common import agent_call, ctx_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: (method, route, agent operation, success status) of the routes whose request is a JSON body.
_BODY_ROUTES: tuple[tuple[str, str, str, int], ...] = (
    ("POST", "/git/clone", "git.clone", 200),
    ("POST", "/git/add", "git.add", 200),
    ("POST", "/git/commit", "git.commit", 200),
    ("POST", "/git/branches", "git.create_branch", 201),
    ("DELETE", "/git/branches", "git.delete_branch", 204),
    ("POST", "/git/checkout", "git.checkout", 200),
    ("POST", "/git/push", "git.push", 200),
    ("POST", "/git/pull", "git.pull", 200),
    ("POST", "/git/init", "git.init", 201),
    ("POST", "/git/reset", "git.reset", 200),
    ("POST", "/git/restore", "git.restore", 200),
    ("POST", "/git/remotes", "git.remote_add", 201),
    ("POST", "/git/config", "git.set_config", 200),
    ("POST", "/git/config/user", "git.configure_user", 200),
    ("POST", "/git/credentials", "git.authenticate", 200),
)

#: Agent operations answering with a body (the rest answer with their status only).
_ANSWERING = frozenset({"git.commit"})


def invalid_body(message: str) -> ApiError:
    """The daemon's 400 for a body its JSON binding refuses."""
    return daemon_error(400, f"invalid body request: {message}", "INVALID_REQUEST_BODY")


def bad_request(message: str) -> ApiError:
    """The daemon's 400 for a request its handler refuses."""
    return daemon_error(400, f"bad request: {message}", "BAD_REQUEST")


async def _body(request: web.Request) -> dict[str, Any]:
    text = await request.text() if request.body_exists else ""
    try:
        body = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise invalid_body(str(exc)) from None
    if not isinstance(body, dict):
        raise invalid_body("the body must be a JSON object")
    return body


def _check(op: str, body: dict[str, Any]) -> None:
    """The daemon handlers' own checks, before git runs."""
    depth = body.get("depth")
    if op == "git.clone" and isinstance(depth, int) and depth < 0:
        raise invalid_body(f"depth must be non-negative, got {depth}")
    if op == "git.set_config" and body.get("scope") == "local" and not body.get("path"):
        raise bad_request("path is required when scope is local")


def _body_route(op: str, status: int) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        _check(op, body)
        data = await agent_call(request, op, _params(request, body))
        if op in _ANSWERING:
            return web.json_response(data, status=status)
        return web.Response(status=status)

    handle.__doc__ = f"The daemon's route for agent operation ``{op}``."
    return handle


def _params(request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
    # Only the agent can tell a system-scope write on the host (no bubblewrap) from one inside.
    return {**params, "isolated": ctx_of(request).agents.isolated}


def _path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise bad_request("path is required")
    return path


async def status(request: web.Request) -> web.Response:
    """``GET /git/status?path=``: GitStatus."""
    return web.json_response(await agent_call(request, "git.status", {"path": _path(request)}))


async def branches(request: web.Request) -> web.Response:
    """``GET /git/branches?path=``: ListBranchResponse."""
    return web.json_response(await agent_call(request, "git.branches", {"path": _path(request)}))


async def remotes(request: web.Request) -> web.Response:
    """``GET /git/remotes?path=``: ListRemotesResponse."""
    return web.json_response(await agent_call(request, "git.remotes", {"path": _path(request)}))


async def history(request: web.Request) -> web.Response:
    """``GET /git/history?path=``: a GitCommitInfo list, newest first."""
    data = await agent_call(request, "git.history", {"path": _path(request)})
    return web.json_response(data["commits"])


async def get_config(request: web.Request) -> web.Response:
    """``GET /git/config?key=&scope=&path=``: GitConfigResponse (no value when unset)."""
    query = request.query
    if not query.get("key"):
        raise bad_request("key is required")
    if query.get("scope") == "local" and not query.get("path"):
        raise bad_request("path is required when scope is local")
    params = {name: query.get(name) for name in ("key", "scope", "path")}
    return web.json_response(await agent_call(request, "git.get_config", _params(request, params)))


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    """Register the ``/git`` routes under `base` (``/api/toolbox/{sandboxId}``)."""
    for method, route, op, code in _BODY_ROUTES:
        router.add_route(method, f"{base}{route}", _body_route(op, code))
    router.add_get(f"{base}/git/status", status)
    router.add_get(f"{base}/git/branches", branches)
    router.add_get(f"{base}/git/remotes", remotes)
    router.add_get(f"{base}/git/history", history)
    router.add_get(f"{base}/git/config", get_config)
