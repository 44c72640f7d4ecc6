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
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..agent import wire
from ..agent.procs import PR_SET_PDEATHSIG, prctl
from ..errors import ApiError, daemon_error
from .agent_runtime import agent_runtime
from .image_sandbox import ImageLaunch
from .runner import Runner

log = logging.getLogger(__name__)

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
#: Where the package is bound read-only inside an isolated sandbox: wherever it is installed
#: (a venv under /tmp or /home, which the sandbox does not see), the agent finds it here.
_AGENT_ROOT = "/.daytona-agent"
#: The interpreter itself, not a venv's link to it (the agent needs the standard library only).
_PYTHON = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from pytest_daytona.local.agent.main import main; main(int(sys.argv[2]))"
)
#: Seconds an agent may take to answer its first call before the sandbox counts as broken.
START_TIMEOUT = 30.0


def _die_with_server() -> None:
    # bubblewrap's --die-with-parent covers what runs inside; this covers bwrap itself (and a
    # plain agent) when the server dies without stopping its sandboxes.
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


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
        info: int | None = None,
    ) -> None:
        self.sandbox_id = sandbox_id
        self.proc = proc
        self._isolated = isolated
        self._info = info
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

    async def close(self) -> None:
        """End the agent and every process of the sandbox; return once they are all gone."""
        self._closing = True
        init = await asyncio.to_thread(self._namespace_init)
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
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task

    def _namespace_init(self) -> int | None:
        """A pidfd of the PID namespace's first process, read from bubblewrap's --info-fd."""
        if self._info is None:
            return None
        fd, self._info = self._info, None
        data = b""
        try:
            while select.select([fd], [], [], 5)[0] and (chunk := os.read(fd, 4096)):
                data += chunk
                with contextlib.suppress(ValueError):
                    return os.pidfd_open(int(json.loads(data)["child-pid"]))
        except (OSError, KeyError, TypeError):
            pass
        finally:
            os.close(fd)
        return None


class Agents:
    """The agents of all started sandboxes of one server."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._agents: dict[str, Agent] = {}
        self._starting: dict[str, asyncio.Future[Agent]] = {}

    @property
    def isolated(self) -> bool:
        """Whether sandboxes run under bubblewrap."""
        return self.runner.isolated

    async def get(
        self,
        sandbox_id: str,
        home: Path,
        tmp: Path,
        mounts: list[tuple[Path, str]],
        files: list[tuple[Path, str]] | None = None,
        image: ImageLaunch | None = None,
    ) -> Agent:
        """The sandbox's agent, started if it is not running (in `image` when given)."""
        agent = self._agents.get(sandbox_id)
        if agent is not None and agent.alive:
            return agent
        pending = self._starting.get(sandbox_id)
        if pending is None:
            pending = asyncio.ensure_future(
                self._start(sandbox_id, home, tmp, mounts, files, image)
            )
            self._starting[sandbox_id] = pending
            pending.add_done_callback(lambda _: self._starting.pop(sandbox_id, None))
        return await asyncio.shield(pending)

    async def _start(
        self,
        sandbox_id: str,
        home: Path,
        tmp: Path,
        mounts: list[tuple[Path, str]],
        files: list[tuple[Path, str]] | None,
        image: ImageLaunch | None = None,
    ) -> Agent:
        if image is not None and not self.runner.images_supported:
            raise ApiError(
                400,
                f"sandbox {sandbox_id}: image {image.image.name} cannot run here: images need "
                "bubblewrap (apt-get install bubblewrap) and overlayfs in a user namespace "
                "(Linux 5.11 or newer)",
            )
        ours, theirs = socket.socketpair()
        info_read, info_write = os.pipe() if self.runner.isolated else (None, None)
        passed = [fd for fd in (theirs.fileno(), info_write) if fd is not None]
        try:
            isolated = self.runner.isolated
            root = _AGENT_ROOT if isolated else _PACKAGE_ROOT
            package = (Path(_PACKAGE_ROOT) / "pytest_daytona", f"{_AGENT_ROOT}/pytest_daytona")
            boot = ["-I", "-S", "-c", _BOOT, root, str(theirs.fileno())]
            if image is not None and self.runner.bwrap is not None:
                argv = image.argv(
                    self.runner.bwrap,
                    [*agent_runtime().python, *boot],
                    binds=mounts,
                    ro_files=[*(files or []), package],
                    info_fd=info_write,
                )
            else:
                argv = self.runner.launch_argv(
                    [_PYTHON, *boot],
                    home=home,
                    tmp=tmp,
                    mounts=mounts,
                    files=[*(files or []), package],
                    keep=(os.path.dirname(_PYTHON),),
                    info_fd=info_write,
                )
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                pass_fds=passed,
                cwd=None if self.runner.isolated else home,
                env=None if self.runner.isolated else self.runner.environment(home, tmp),
                start_new_session=True,
                preexec_fn=_die_with_server,
            )
        except (ValueError, OSError) as exc:
            ours.close()
            if info_read is not None:
                os.close(info_read)
            if isinstance(exc, ValueError):
                raise ApiError(400, f"sandbox {sandbox_id}: {exc}") from None
            raise ApiError(500, f"sandbox {sandbox_id}: agent did not start: {exc}") from None
        finally:
            theirs.close()
            if info_write is not None:
                os.close(info_write)
        agent = Agent(sandbox_id, proc, ours, isolated=self.runner.isolated, info=info_read)
        await agent.connect()
        old = self._agents.pop(sandbox_id, None)
        if old is not None:
            await old.close()
        self._agents[sandbox_id] = agent
        return agent

    async def stop(self, sandbox_id: str) -> None:
        """End the sandbox's agent and all its processes (no-op when none runs)."""
        pending = self._starting.get(sandbox_id)
        if pending is not None:
            with contextlib.suppress(Exception):
                await pending
        agent = self._agents.pop(sandbox_id, None)
        if agent is not None:
            await agent.close()

    async def close(self) -> None:
        """End every agent."""
        await asyncio.gather(*(self.stop(sid) for sid in list(self._agents)))
