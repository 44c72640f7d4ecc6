"""pytest-daytona: disposable Daytona sandboxes as pytest fixtures."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import (
        BackendCallError,
        BackendError,
        BackendUnreachableError,
        CommandError,
        CoordinationError,
        DaytonaPluginError,
        IsolationWarning,
        LeaseError,
        SandboxWarning,
        SettingsError,
    )
    from .handle.async_sandbox import AsyncDaytonaSandbox
    from .handle.factory import AsyncSandboxFactory, SandboxFactory, SandboxOverrides
    from .handle.sandbox import DaytonaSandbox
    from .results import ExecResult

#: The one place the version is written: pyproject.toml reads it from here (`dynamic`).
__version__ = "0.1.0"

__all__ = [
    "AsyncDaytonaSandbox",
    "AsyncSandboxFactory",
    "BackendCallError",
    "BackendError",
    "BackendUnreachableError",
    "CommandError",
    "CoordinationError",
    "DaytonaPluginError",
    "DaytonaSandbox",
    "ExecResult",
    "IsolationWarning",
    "LeaseError",
    "SandboxFactory",
    "SandboxOverrides",
    "SandboxWarning",
    "SettingsError",
    "__version__",
]

#: Where each public name lives (every error class is in `errors`).
_LAZY = {
    **{name: "errors" for name in __all__ if name.endswith(("Error", "Warning"))},
    "ExecResult": "results",
    "DaytonaSandbox": "handle.sandbox",
    "AsyncDaytonaSandbox": "handle.async_sandbox",
    "AsyncSandboxFactory": "handle.factory",
    "SandboxFactory": "handle.factory",
    "SandboxOverrides": "handle.factory",
}


def __getattr__(name: str) -> Any:
    # Loaded on first use: importing the package (e.g. inside a sandbox's agent) stays cheap.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
