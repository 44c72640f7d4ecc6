"""pytest-daytona: disposable Daytona sandboxes as pytest fixtures."""

from .executor import CommandError, ExecResult
from .sandbox import DaytonaSandbox

__version__ = "0.1.0"

__all__ = ["CommandError", "DaytonaSandbox", "ExecResult", "__version__"]
