"""Daytona toolbox (daemon) API: one module per group of routes, served by each sandbox's agent.

Every module of this package but `common` is a group of routes with an
``add_routes(router, base)``.
"""

from __future__ import annotations

import importlib
import pkgutil

from aiohttp import web

PREFIX = "/toolbox/{sandboxId}"


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    """Register every toolbox route under `prefix` (``/api``)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name != "common":
            group = importlib.import_module(f"{__name__}.{info.name}")
            group.add_routes(router, f"{prefix}{PREFIX}")
