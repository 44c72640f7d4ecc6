"""The embedded local backend: a server that speaks the Daytona API to the unmodified SDK."""

from .server import LocalServer, serve_forever

__all__ = ["LocalServer", "serve_forever"]
