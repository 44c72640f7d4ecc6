"""``GET /config`` and ``GET /sandbox/{id}/telemetry/metrics``: what `Sandbox.get_metrics` reads.

The cloud keeps a telemetry history; here a reading is taken from the sandbox's agent each
time metrics are asked for (while it is started) and kept, so the history holds those readings.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ..context import LOCAL
from ..state.records import State
from ..toolbox.system import resources
from .listing import query_time

#: `SandboxMetrics` field of each metric name the SDK asks for (SDK 0.226.1 common/sandbox.py).
_METRICS = {
    "daytona.sandbox.cpu.utilization": "cpuUsedPct",
    "daytona.sandbox.cpu.limit": "cpuCount",
    "daytona.sandbox.memory.usage": "memUsed",
    "daytona.sandbox.memory.limit": "memTotal",
    "daytona.sandbox.memory.cache": "memCache",
    "daytona.sandbox.filesystem.usage": "diskUsed",
    "daytona.sandbox.filesystem.total": "diskTotal",
}
#: Readings kept per sandbox.
MAX_READINGS = 1000

HISTORY = web.AppKey("pytest_daytona_metrics", dict[str, list[dict[str, Any]]])


async def get_config(request: web.Request) -> web.Response:
    """``GET /config``: the deployment's settings; no separate analytics API here."""
    ctx = request.app[LOCAL]
    return web.json_response(
        {
            "version": "local",
            "oidc": {"issuer": "", "clientId": "", "audience": "", "provider": "local"},
            "linkedAccountsEnabled": False,
            "announcements": {},
            "proxyTemplateUrl": "",
            "proxyToolboxUrl": ctx.toolbox_url(),
            "defaultSnapshot": "daytona-local",
            "dashboardUrl": "",
            "maxAutoArchiveInterval": 43200,
            "maintananceMode": False,
            "environment": "local",
            "analyticsApiUrl": None,
        }
    )


async def get_metrics(request: web.Request) -> web.Response:
    """``GET /sandbox/{sandboxId}/telemetry/metrics?from=&to=&metricNames=``."""
    ctx = request.app[LOCAL]
    record = ctx.lifecycle.lookup(request.match_info["sandboxId"])
    readings = request.app[HISTORY].setdefault(record.id, [])
    if record.state is State.STARTED:
        agent = await ctx.agent(record)
        reading = (await agent.call("system.metrics", resources(record))).data
        readings.append({**reading, "at": datetime.now(timezone.utc).timestamp()})
        del readings[:-MAX_READINGS]
    start = query_time(request.query, "from") or 0.0
    end = query_time(request.query, "to") or datetime.now(timezone.utc).timestamp()
    names = request.query.getall("metricNames", []) or list(_METRICS)
    chosen = [r for r in readings if start - 1 <= r["at"] <= end + 1]
    series = [
        {
            "metricName": name,
            "dataPoints": [
                {
                    "timestamp": datetime.fromtimestamp(r["at"], timezone.utc)
                    .isoformat()
                    .replace("+00:00", "Z"),
                    "value": r[_METRICS[name]],
                }
                for r in chosen
            ],
        }
        for name in names
        if name in _METRICS
    ]
    return web.json_response({"series": series})


def add_routes(app: web.Application, prefix: str) -> None:
    """Register the routes under `prefix` (``/api``)."""
    app[HISTORY] = {}
    app.router.add_get(f"{prefix}/config", get_config)
    app.router.add_get(f"{prefix}/sandbox/{{sandboxId}}/telemetry/metrics", get_metrics)
