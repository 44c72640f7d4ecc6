"""Daytona toolbox (daemon) API: one module per group of routes, served by each sandbox's agent."""

from __future__ import annotations

from aiohttp import web

from . import files, process

#: Modules with an ``add_routes(router, base)``; a new group of routes adds itself here.
GROUPS = (process, files)

PREFIX = "/toolbox/{sandboxId}"


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    """Register every toolbox route under `prefix` (``/api``)."""
    for group in GROUPS:
        group.add_routes(router, f"{prefix}{PREFIX}")
