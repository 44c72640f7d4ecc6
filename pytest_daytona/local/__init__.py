"""The embedded local backend: a server that speaks the Daytona API to the unmodified SDK."""

from .server import DataDirBusyError, LocalServer, serve_forever

__all__ = ["DataDirBusyError", "LocalServer", "serve_forever"]
