"""The server's side of each started sandbox's agent: launch, calls over one socket, stop.

A sandbox's agent starts when the sandbox reaches ``started`` and ends when it leaves it;
ending it ends every process the sandbox started (its PID namespace under bubblewrap, the
agent's descendants otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import select
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..agent import wire
from ..errors import ApiError, daemon_error
from .cgroups import Cgroup
from .confinement import Network
from .egress import Egress

#: Seconds an agent may take to answer its first call before the sandbox counts as broken.
START_TIMEOUT = 30.0

log = logging.getLogger(__name__)


class AgentGone(ApiError):
    """The sandbox's agent ended while a call was in flight (the sandbox stopped)."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(502, f"sandbox {sandbox_id}: its toolbox agent is gone", code="AGENT_GONE")


@dataclass
class Reply:
    """One answer frame: its data and payload."""

    data: dict[str, Any]
    payload: bytes = b""


class Agent:
    """One running agent: its process and the calls in flight on its socket."""

    def __init__(
        self,
        sandbox_id: str,
        proc: subprocess.Popen[bytes],
        sock: socket.socket,
        *,
        isolated: bool,
        init: int | None = None,
        channel: socket.socket | None = None,
        cgroup: Cgroup | None = None,
    ) -> None:
        self.sandbox_id = sandbox_id
        self.proc = proc
        self._isolated = isolated
        self._init = init
        self._channel = channel
        self._channel_lock = asyncio.Lock()
        self.cgroup = cgroup
        #: The user-mode network of a sandbox with an allow list.
        self.egress: Egress | None = None
        #: The network the sandbox started with; with one of its own, the server reaches its
        #: ports through :meth:`connect_port`.
        self.network = Network()
        self._sock = sock
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Queue[tuple[dict[str, Any], bytes] | None]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._closing = False

    async def connect(self) -> None:
        """Attach the socket to the running loop and start reading answers."""
        reader, self._writer = await asyncio.open_unix_connection(sock=self._sock, limit=1 << 22)
        self._reader_task = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while (frame := await wire.read_frame(reader)) is not None:
                header, payload = frame
                queue = self._calls.get(int(header.get("id", 0)))
                if queue is not None:
                    queue.put_nowait((header, payload))
        except (OSError, ValueError) as exc:
            log.debug("agent of %s: read ended: %s", self.sandbox_id, exc)
        finally:
            for queue in self._calls.values():
                queue.put_nowait(None)
            if not self._closing:  # its calls now answer AGENT_GONE: say why, once
                await asyncio.sleep(0.2)  # the exit status, if it is exiting
                log.warning(
                    "agent of sandbox %s ended unasked (exit status %s)",
                    self.sandbox_id,
                    self.proc.poll(),
                )

    @property
    def alive(self) -> bool:
        """Whether the agent's connection is still open."""
        return self._reader_task is not None and not self._reader_task.done()

    async def stream(
        self, op: str, params: dict[str, Any], payload: bytes = b""
    ) -> AsyncIterator[Reply]:
        """Every answer frame of one call; an error answer raises ApiError in the daemon's shape."""
        if self._writer is None or not self.alive:
            raise AgentGone(self.sandbox_id)
        call_id = next(self._ids)
        queue: asyncio.Queue[tuple[dict[str, Any], bytes] | None] = asyncio.Queue()
        self._calls[call_id] = queue
        try:
            self._writer.write(wire.encode({"id": call_id, "op": op, "params": params}, payload))
            await self._writer.drain()
            while True:
                item = await queue.get()
                if item is None:
                    raise AgentGone(self.sandbox_id)
                header, blob = item
                if not header.get("ok"):
                    error = header.get("error") or {}
                    raise daemon_error(
                        int(error.get("status", 500)),
                        str(error.get("message", "agent error")),
                        str(error.get("code") or "INTERNAL_ERROR"),
                    )
                yield Reply(header.get("data") or {}, blob)
                if not header.get("more"):
                    return
        except (ConnectionError, OSError):
            raise AgentGone(self.sandbox_id) from None
        finally:
            self._calls.pop(call_id, None)

    async def call(self, op: str, params: dict[str, Any], payload: bytes = b"") -> Reply:
        """The final answer of one call (partial answers are dropped)."""
        last = Reply({})
        async for reply in self.stream(op, params, payload):
            last = reply
        return last

    async def connect_port(self, port: int) -> socket.socket:
        """A connection to ``127.0.0.1:port`` inside the sandbox, made by the agent there."""
        if self._channel is None:
            raise AgentGone(self.sandbox_id)
        async with self._channel_lock:
            await self.call("port.connect", {"port": port})
            _, fds, _, _ = await asyncio.to_thread(socket.recv_fds, self._channel, 1, 1)
        if not fds:
            raise AgentGone(self.sandbox_id)
        return socket.socket(fileno=fds[0])

    async def close(self) -> None:
        """End the agent and every process of the sandbox; return once they are all gone."""
        self._closing = True
        init, self._init = self._init, None
        try:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                # bubblewrap's own process: its death takes the whole PID namespace with it.
                # Plain agents get SIGTERM first, to kill their descendants themselves.
                self.proc.send_signal(signal.SIGKILL if self._isolated else signal.SIGTERM)
            if self._writer is not None:
                self._writer.close()
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 5)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await asyncio.to_thread(self.proc.wait)
            if init is not None:
                # The namespace's first process does not always die of bwrap's death (seen:
                # left waiting with no child, its parent gone): KILL it, which takes down
                # whatever is left in the namespace. The kernel reports its exit only once
                # every other process in it has exited.
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(init, signal.SIGKILL)
                await asyncio.to_thread(select.select, [init], [], [], 5)
        finally:
            if init is not None:
                os.close(init)
            if self.egress is not None:
                await self.egress.close()
            if self._channel is not None:
                self._channel.close()
            if self.cgroup is not None:
                await asyncio.to_thread(self.cgroup.remove)
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task


def namespace_init(fd: int) -> tuple[int, int] | None:
    """The host PID and a pidfd of the PID namespace's first process, read from bubblewrap's
    --info-fd `fd` (closed here)."""
    data = b""
    try:
        while select.select([fd], [], [], START_TIMEOUT)[0] and (chunk := os.read(fd, 4096)):
            data += chunk
            with contextlib.suppress(ValueError):
                pid = int(json.loads(data)["child-pid"])
                return pid, os.pidfd_open(pid)
    except (OSError, KeyError, TypeError):
        pass
    finally:
        os.close(fd)
    return None
