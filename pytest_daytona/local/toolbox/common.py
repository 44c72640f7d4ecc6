"""What the toolbox handlers share: the sandbox a call is for, its agent, paths and queries."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..context import LOCAL, LocalContext
from ..errors import ApiError, daemon_error
from ..sandboxes.agent_client import Agent, Reply
from ..state.records import SandboxRecord, State


def ctx_of(request: web.Request) -> LocalContext:
    """The server's shared state."""
    return request.app[LOCAL]


def started(request: web.Request) -> SandboxRecord:
    """The sandbox the toolbox call is for; it must be running, as on Daytona."""
    record = ctx_of(request).lifecycle.lookup(request.match_info["sandboxId"])
    if record.state is not State.STARTED:
        raise ApiError(409, f"Sandbox {record.id} is not started (state: {record.state.value})")
    record.touch()
    return record


async def agent_of(request: web.Request) -> tuple[SandboxRecord, Agent]:
    """The started sandbox of the call and its agent."""
    record = started(request)
    return record, await ctx_of(request).agent(record)


async def agent_call(request: web.Request, op: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run agent operation `op` for the call's sandbox, with the sandbox's env; its answer data."""
    record, agent = await agent_of(request)
    reply = await agent.call(op, {"base_env": record.env, **params})
    record.touch()
    return reply.data


async def files_call(
    request: web.Request, op: str, params: dict[str, Any], payload: bytes = b""
) -> Reply:
    """Run file operation `op` in the call's sandbox. Without bubblewrap the agent runs on
    the host, so it is told to keep paths inside the sandbox's home and tmp (``confine``)."""
    record, agent = await agent_of(request)
    confine = ctx_of(request).paths(record).confine()
    reply = await agent.call(op, {**params, "confine": confine}, payload)
    record.touch()
    return reply


def query_path(request: web.Request) -> str:
    """The required ``path`` query parameter."""
    path = request.query.get("path")
    if path is None:
        raise daemon_error(400, "query parameter 'path' is required", "INVALID_FILE_PATH")
    return path
