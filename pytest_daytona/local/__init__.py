"""The embedded local backend: a server that speaks the Daytona API to the unmodified SDK."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import DataDirBusyError, LocalServer, serve_forever

__all__ = ["DataDirBusyError", "LocalServer", "serve_forever"]


def __getattr__(name: str) -> Any:
    # Lazy, so a sandbox's agent can import its own subpackage with the standard library only.
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(".server", __name__), name)
