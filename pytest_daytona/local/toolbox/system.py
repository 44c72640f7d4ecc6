"""``GET /system/metrics``: the daemon's live resource reading of its sandbox."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..state.records import SandboxRecord
from .common import agent_call, started


def resources(record: SandboxRecord) -> dict[str, Any]:
    """The sandbox's resource limits, as the agent's metrics operation takes them."""
    return {"cpu": record.cpu, "memory": record.memory, "disk": record.disk}


async def system_metrics(request: web.Request) -> web.Response:
    """``GET /system/metrics``."""
    record = started(request)
    return web.json_response(await agent_call(request, "system.metrics", resources(record)))


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    """Register this module's routes under `base` (``/api/toolbox/{sandboxId}``)."""
    router.add_get(f"{base}/system/metrics", system_metrics)
