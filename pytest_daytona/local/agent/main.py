"""The agent's entry point: answer framed requests on an inherited socket until it closes.

Started by the server as ``python -I -S -c <boot> <fd>``; each request runs in its own thread.
When the socket closes (the sandbox stops, or the server is gone) every process the sandbox
started is killed and the agent exits.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import signal
import socket
import sys
import threading
import traceback
from typing import Any

from . import ports, procs, wire
from .ops import OPS, OpError, Request, Result

#: Modules of this package that hold no operations; every other module registers some.
_INFRASTRUCTURE = frozenset({"__init__", "main", "ops", "procs", "wire"})


def operation_modules() -> list[str]:
    """Names of the modules whose operations the agent serves."""
    here = os.path.dirname(os.path.abspath(__file__))
    names = (name[:-3] for name in os.listdir(here) if name.endswith(".py"))
    return sorted(name for name in names if name not in _INFRASTRUCTURE)


class Agent:
    """One connection to the server and the calls in flight on it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        """Send one frame; a closed socket means the server is gone (the read loop ends)."""
        frame = wire.encode(header, payload)
        with self._send_lock, contextlib.suppress(OSError):
            self.sock.sendall(frame)

    def handle(self, header: dict[str, Any], payload: bytes) -> None:
        """Run one request and send its answer."""
        call_id = header.get("id")

        def partial(data: dict[str, Any], blob: bytes = b"") -> None:
            self.send({"id": call_id, "ok": True, "more": True, "data": data}, blob)

        try:
            operation = OPS.get(str(header.get("op")))
            if operation is None:
                raise OpError(404, f"unknown agent operation {header.get('op')!r}", "NOT_FOUND")
            result: Result = operation(Request(header.get("params") or {}, payload, partial))
            data, blob = result if isinstance(result, tuple) else (result, b"")
            self.send({"id": call_id, "ok": True, "data": data}, blob)
        except OpError as exc:
            self.send({"id": call_id, "ok": False, "error": exc.as_dict()})
        except Exception as exc:  # answer, never kill the agent
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.send({"id": call_id, "ok": False, "error": OpError(500, detail).as_dict()})

    def serve(self) -> None:
        """Read requests until the socket closes."""
        while True:
            try:
                frame = wire.recv_frame(self.sock)
            except (OSError, ValueError):
                frame = None
            if frame is None:
                return
            header, payload = frame
            threading.Thread(target=self.handle, args=(header, payload), daemon=True).start()


def _reap_forever() -> None:
    while True:
        threading.Event().wait(1.0)
        procs.reap_orphans()


def _no_signal_ignored() -> None:
    """An ignored signal stays ignored across exec, so the sandbox's commands would inherit
    whatever the server was started with (a background job of a shell ignores SIGINT and
    SIGQUIT). Daytona's commands start with none ignored: reset them here. SIGPIPE and
    SIGXFSZ are Python's own, and `subprocess` restores them in each child; glibc's own
    signals, which `signal` does not list, are reset by `procs.unignore_libc_signals`."""
    procs.unignore_libc_signals()
    for sig in signal.valid_signals():
        if sig in (signal.SIGPIPE, signal.SIGXFSZ):
            continue
        with contextlib.suppress(OSError, ValueError):
            if signal.getsignal(sig) == signal.SIG_IGN:
                signal.signal(sig, signal.SIG_DFL)


def _limit(rlimits: dict[str, int]) -> None:
    """Lower this process's limits (the sandbox's commands inherit them). Set here, inside
    the sandbox's user namespace, the process limit counts this sandbox's processes only."""
    for name, value in rlimits.items():
        which = getattr(resource, name)
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (value, value))


def _become(uid: int) -> None:
    """Become the sandbox user (started as root of the sandbox's user namespace, which is
    this machine's root: the host's files keep their owners); every capability goes."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def main(fd: int, channel: int = -1, settings: str = "{}") -> None:
    """Serve on inherited socket `fd`, hand connections over on socket `channel`, keep to
    `settings` (JSON: ``rlimits``, resource name to limit; ``user``, the uid to become),
    then end every process of the sandbox."""
    given = json.loads(settings)
    if "user" in given:
        _become(int(given["user"]))
    _limit(given.get("rlimits") or {})
    if channel >= 0:
        ports.channel = socket.socket(fileno=channel)
    procs.become_reaper()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _no_signal_ignored()
    signal.signal(signal.SIGINT, lambda *_: None)  # caught, not ignored: see above
    for name in operation_modules():
        importlib.import_module(f"{__package__}.{name}")
    threading.Thread(target=_reap_forever, daemon=True).start()
    sock = socket.socket(fileno=fd)
    try:
        Agent(sock).serve()
    finally:
        procs.kill_everything()
