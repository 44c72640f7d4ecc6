"""Daytona REST API handlers: sandbox lifecycle, lookup, listing and labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from ..context import LOCAL, LocalContext, parse_body
from ..errors import ApiError
from ..state.records import CreateSandboxBody, SandboxRecord
from ..state.rules import resolve_auto_archive
from .listing import list_sandboxes

SANDBOX = "/sandbox/{sandboxIdOrName}"


def _ctx(request: web.Request) -> LocalContext:
    return request.app[LOCAL]


def _sandbox(request: web.Request) -> SandboxRecord:
    return _ctx(request).lifecycle.lookup(request.match_info["sandboxIdOrName"])


async def create_sandbox(request: web.Request) -> web.Response:
    """``POST /sandbox``."""
    body = await parse_body(request, CreateSandboxBody)
    lifecycle = _ctx(request).lifecycle
    record = await lifecycle.create(body)
    return web.json_response(lifecycle.dto(record))


async def get_sandbox(request: web.Request) -> web.Response:
    """``GET /sandbox/{sandboxIdOrName}``."""
    return web.json_response(_ctx(request).lifecycle.dto(_sandbox(request)))


async def delete_sandbox(request: web.Request) -> web.Response:
    """``DELETE /sandbox/{sandboxIdOrName}``."""
    return web.json_response(await _ctx(request).lifecycle.delete(_sandbox(request)))


def _state_change(op: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        lifecycle = _ctx(request).lifecycle
        record = await lifecycle.change(_sandbox(request), op)
        return web.json_response(lifecycle.dto(record))

    handler.__name__ = f"{op}_sandbox"
    handler.__doc__ = f"``POST /sandbox/{{sandboxIdOrName}}/{op}``."
    return handler


class LabelsBody(BaseModel):
    """``PUT /sandbox/{id}/labels`` body."""

    labels: dict[str, str]


async def replace_labels(request: web.Request) -> web.Response:
    """``PUT /sandbox/{sandboxIdOrName}/labels`` (replaces all labels)."""
    body = await parse_body(request, LabelsBody)
    record = _sandbox(request)
    record.labels = body.labels
    _ctx(request).lifecycle.store.save(record)
    return web.json_response({"labels": record.labels})


def _interval_setter(
    field: str, minimum: int, resolve: Callable[[int], int] = lambda value: value
) -> Any:
    async def handler(request: web.Request) -> web.Response:
        try:
            value = int(request.match_info["interval"])
        except ValueError:
            raise ApiError(400, "interval must be an integer") from None
        if value < minimum:
            raise ApiError(400, f"interval must be >= {minimum}")
        record = _sandbox(request)
        setattr(record, field, resolve(value))
        _ctx(request).lifecycle.store.save(record)
        return web.json_response(_ctx(request).lifecycle.dto(record))

    handler.__name__ = f"set_{field}"
    return handler


async def set_ttl(request: web.Request) -> web.Response:
    """``POST /sandbox/{sandboxIdOrName}/ttl/{ttlMinutes}``: re-anchor the TTL (0 disables)."""
    raw = request.match_info["ttlMinutes"]
    try:
        minutes = float(raw)
    except ValueError:
        minutes = float("nan")
    if not minutes.is_integer() or minutes < 0:
        raise ApiError(400, f"TTL must be a non-negative integer, got {raw!r}")
    record = _sandbox(request)
    lifecycle = _ctx(request).lifecycle
    lifecycle.set_ttl(record, int(minutes))
    return web.json_response(lifecycle.dto(record))


async def toolbox_proxy_url(request: web.Request) -> web.Response:
    """``GET /sandbox/{sandboxId}/toolbox-proxy-url``."""
    _sandbox(request)
    return web.json_response({"url": _ctx(request).toolbox_url()})


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    """Register the REST routes under `prefix` (``/api``)."""
    router.add_post(f"{prefix}/sandbox", create_sandbox)
    router.add_get(f"{prefix}/sandbox", list_sandboxes)
    router.add_get(f"{prefix}{SANDBOX}", get_sandbox)
    router.add_delete(f"{prefix}{SANDBOX}", delete_sandbox)
    for op in ("start", "stop", "recover", "archive", "pause"):
        router.add_post(f"{prefix}{SANDBOX}/{op}", _state_change(op))
    router.add_put(f"{prefix}{SANDBOX}/labels", replace_labels)
    router.add_post(
        f"{prefix}{SANDBOX}/autostop/{{interval}}", _interval_setter("auto_stop_interval", 0)
    )
    router.add_post(
        f"{prefix}{SANDBOX}/autoarchive/{{interval}}",
        _interval_setter("auto_archive_interval", 0, resolve_auto_archive),
    )
    router.add_post(
        f"{prefix}{SANDBOX}/autodelete/{{interval}}", _interval_setter("auto_delete_interval", -1)
    )
    router.add_post(f"{prefix}{SANDBOX}/ttl/{{ttlMinutes}}", set_ttl)
    router.add_get(f"{prefix}{SANDBOX}/toolbox-proxy-url", toolbox_proxy_url)
