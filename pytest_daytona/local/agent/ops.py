"""The agent's operation registry and what an operation receives."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Sandbox user's home (and default working directory) as the sandbox sees it.
HOME = os.environ.get("HOME", "/home/daytona")
#: The daemon's work dir (relative paths and default cwds): where the server started the agent.
WORK_DIR = os.getcwd()


class OpError(Exception):
    """An operation's failure as the daemon answers it: HTTP status, message, daemon code."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def as_dict(self) -> dict[str, Any]:
        """The error part of an answer frame."""
        return {"status": self.status, "message": self.message, "code": self.code}


@dataclass
class Request:
    """One call: its parameters, its payload, and a way to stream partial answers."""

    params: dict[str, Any]
    payload: bytes = b""
    send: Callable[[dict[str, Any], bytes], None] = field(default=lambda data, payload: None)

    def stream(self, data: dict[str, Any], payload: bytes = b"") -> None:
        """Send one partial answer (``more: true``) before the final one."""
        self.send(data, payload)

    def env(self) -> dict[str, str]:
        """The environment a process of this call starts with: the agent's own, then the
        sandbox's env (``base_env``), then the call's ``env``."""
        merged = dict(os.environ)
        merged.update(self.params.get("base_env") or {})
        merged.update(self.params.get("env") or {})
        return merged


Result = dict[str, Any] | tuple[dict[str, Any], bytes]
Operation = Callable[[Request], Result]

OPS: dict[str, Operation] = {}


def op(name: str) -> Callable[[Operation], Operation]:
    """Register `fn` as operation `name`."""

    def register(fn: Operation) -> Operation:
        OPS[name] = fn
        return fn

    return register
