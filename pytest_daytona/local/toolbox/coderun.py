"""``POST /process/code-run``: the daemon's code runner (python, javascript, typescript).

The SDK (0.226.1 ``Process.code_run``) sends ``language`` from the sandbox's
``code-toolbox-language`` label; the code runs in the sandbox as today's daemon runs it.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from ..context import parse_body
from .common import agent_call


class CodeRunBody(BaseModel):
    """``POST /process/code-run`` body."""

    code: str
    language: str
    argv: list[str] | None = None
    envs: dict[str, str] | None = None
    timeout: int | None = None


async def code_run(request: web.Request) -> web.Response:
    """Run the code; ``{exitCode, result, artifacts?}``, 400 for an unknown language or a bad
    env name, 408 after ``timeout`` seconds (none by default)."""
    body = await parse_body(request, CodeRunBody)
    params = {
        "language": body.language,
        "code": body.code,
        "argv": body.argv or [],
        "env": body.envs,
        "timeout": body.timeout or 0,
    }
    return web.json_response(await agent_call(request, "coderun", params))


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    """Register this module's routes under `base` (``/api/toolbox/{sandboxId}``)."""
    router.add_post(f"{base}/process/code-run", code_run)
