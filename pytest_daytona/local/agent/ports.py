"""``port.connect``: a connection to a port of the sandbox, made inside it and handed to the
server, which cannot reach a sandbox with a network of its own (preview links)."""

from __future__ import annotations

import socket
import threading

from .ops import OpError, Request, op

#: The socket the server receives connected sockets on (set by main when it has one).
channel: socket.socket | None = None
_lock = threading.Lock()
CONNECT_TIMEOUT = 5.0


@op("port.connect")
def connect(req: Request) -> dict[str, object]:
    """Connect to ``127.0.0.1:port`` in the sandbox and send the socket over the channel
    before answering (the server reads it once the answer comes)."""
    port = int(req.params["port"])
    if channel is None:
        raise OpError(500, "the agent has no channel to hand connections over")
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise OpError(502, f"port {port}: {exc.strerror or exc}", "BAD_GATEWAY") from None
    with conn, _lock:
        conn.settimeout(None)
        socket.send_fds(channel, [b"s"], [conn.fileno()])
    return {"port": port}
