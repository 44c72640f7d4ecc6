"""``/process/execute`` and the work and home directories."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from ..context import parse_body
from .common import agent_call, ctx_of, started


class ExecuteBody(BaseModel):
    """``POST /process/execute`` body."""

    command: str
    cwd: str | None = None
    envs: dict[str, str] | None = None
    timeout: int | None = None


async def work_dir(request: web.Request) -> web.Response:
    """``GET /work-dir``: the image's ``WorkingDir``, else the user's home."""
    record = started(request)
    return web.json_response({"dir": ctx_of(request).paths(record).work_dir})


async def user_home_dir(request: web.Request) -> web.Response:
    """``GET /user-home-dir``: the home of the user the sandbox runs as."""
    record = started(request)
    return web.json_response({"dir": ctx_of(request).paths(record).user_home})


async def execute(request: web.Request) -> web.Response:
    """``POST /process/execute``: as today's daemon, the command is piped to the sandbox's shell
    on stdin; stdout and stderr combined; 408 after ``timeout`` seconds (none by default)."""
    body = await parse_body(request, ExecuteBody)
    timeout = body.timeout or ctx_of(request).default_exec_timeout or 0
    data = await agent_call(
        request,
        "exec",
        {"command": body.command, "cwd": body.cwd, "env": body.envs, "timeout": timeout},
    )
    return web.json_response(data)


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    """Register this module's routes under `base` (``/api/toolbox/{sandboxId}``)."""
    router.add_get(f"{base}/work-dir", work_dir)
    router.add_get(f"{base}/user-home-dir", user_home_dir)
    router.add_post(f"{base}/process/execute", execute)
