"""Toolbox ``POST /env``: change the environment of the processes a sandbox starts later."""

from __future__ import annotations

from aiohttp import web

from ..agent.process import ENV_KEY
from ..context import parse_body
from ..errors import ApiError
from ..state.records import _Camel
from .common import ctx_of, started


class EnvBody(_Camel):
    """``POST /env`` body: names to unset, then values to set."""

    set: dict[str, str] | None = None
    unset: list[str] | None = None
    unset_value_prefix: str | None = None


async def update_env(request: web.Request) -> web.Response:
    """``POST /env``: processes started afterwards see the changed environment."""
    body = await parse_body(request, EnvBody)
    record = started(request)
    bad = [n for n in [*(body.set or {}), *(body.unset or [])] if not ENV_KEY.fullmatch(n)]
    if bad:
        raise ApiError(400, f"invalid environment variable name: {bad[0]}")
    env = {k: v for k, v in record.env.items() if k not in set(body.unset or [])}
    if body.unset_value_prefix:
        env = {
            k: v
            for k, v in env.items()
            if k in (body.set or {}) or not v.startswith(body.unset_value_prefix)
        }
    record.env = {**env, **(body.set or {})}
    ctx_of(request).lifecycle.store.save(record)
    return web.json_response(record.env)


def add_routes(router: web.UrlDispatcher, base: str) -> None:
    """Register this module's routes under `base` (``/api/toolbox/{sandboxId}``)."""
    router.add_post(f"{base}/env", update_env)
