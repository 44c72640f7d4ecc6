"""pytest-daytona: disposable Daytona sandboxes as pytest fixtures."""

__version__ = "0.1.0"
