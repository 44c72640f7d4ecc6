"""pytest-daytona: disposable Daytona sandboxes as pytest fixtures."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import CommandError, ExecResult
    from .sandbox import DaytonaSandbox

__version__ = "0.1.0"

__all__ = ["CommandError", "DaytonaSandbox", "ExecResult", "__version__"]

_LAZY = {"CommandError": "results", "ExecResult": "results", "DaytonaSandbox": "sandbox"}


def __getattr__(name: str) -> Any:
    # Loaded on first use: importing the package (e.g. inside a sandbox's agent) stays cheap.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
