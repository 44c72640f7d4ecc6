"""What every handler of the embedded server shares, and small request helpers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import MultipartReader, StreamReader, web
from pydantic import BaseModel, ValidationError

from .control import Control
from .entrypoint import ensure_entrypoint
from .errors import ApiError
from .late import LateCompletions
from .lifecycle import Lifecycle
from .sandboxes.agent_client import Agent, AgentGone
from .sandboxes.agents import Agents, Start
from .sandboxes.confinement import DEFAULT_MAX_PROCESSES, Confinement, Limits, Network
from .sandboxes.image_sandbox import ImageLaunch
from .sandboxes.sandboxfs import SandboxPaths
from .state.records import SandboxRecord
from .state.volumes import volume_mounts

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass
class LocalContext:
    """The server's shared state: sandboxes, command runner, counters and settings."""

    lifecycle: Lifecycle
    agents: Agents
    control: Control
    token: str
    api_url: str = ""
    default_exec_timeout: float | None = None
    max_processes: int = DEFAULT_MAX_PROCESSES
    late: LateCompletions = field(default_factory=LateCompletions)
    _paths: dict[str, SandboxPaths] = field(default_factory=dict)
    _launches: dict[str, ImageLaunch] = field(default_factory=dict)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def toolbox_url(self) -> str:
        """Base URL of the toolbox API (the SDK appends ``/{sandboxId}/...``)."""
        return f"{self.api_url}/toolbox"

    def paths(self, record: SandboxRecord) -> SandboxPaths:
        """In-sandbox ↔ host path mapping of one sandbox."""
        paths = self._paths.get(record.id)
        if paths is None:
            store = self.lifecycle.store
            home, tmp = store.home_dir(record.id), store.tmp_dir(record.id)
            launch = self.image_launch(record)
            if launch is None:
                paths = self.agents.runner.paths(home, tmp)
            else:
                paths = SandboxPaths(
                    home,
                    tmp,
                    isolated=True,
                    work_dir=launch.work_dir,
                    user_home=launch.identity.home,
                )
            self._paths[record.id] = paths
        return paths

    def image_launch(self, record: SandboxRecord) -> ImageLaunch | None:
        """How the sandbox starts in its image; None for this machine's userland. Made once
        per sandbox (its image is set once, when it is built): every toolbox call asks."""
        if record.image is None:
            return None
        launch = self._launches.get(record.id)
        if launch is None:
            base = self.lifecycle.store.sandbox_dir(record.id) / "root"
            launch = self._launches[record.id] = ImageLaunch.of(record.image, base, record.id)
        return launch

    async def agent(self, record: SandboxRecord) -> Agent:
        """The toolbox agent of a started sandbox (started now if it is not running)."""
        store = self.lifecycle.store
        return await self.agents.get(
            Start(
                record.id,
                store.home_dir(record.id),
                store.tmp_dir(record.id),
                self.mounts(record),
                self.files(record),
                self.image_launch(record),
                self.confinement(record),
            )
        )

    def confinement(self, record: SandboxRecord) -> Confinement:
        """The network and limits the sandbox starts with (from its settings)."""
        network = Network.of(record.network_block_all, record.network_allow_list)
        limits = Limits(record.cpu, record.memory, record.disk, self.max_processes)
        return Confinement(network, limits)

    def follow_state(self, sandbox_id: str, state: str) -> None:
        """Start a sandbox's agent when it is started (the lifecycle's `halt` ends it)."""
        if state == "started":
            record = self.lifecycle.store.get(sandbox_id)
            if record is not None:
                self._background(self._boot(record))

    async def _boot(self, record: SandboxRecord) -> None:
        """Start the sandbox's agent and, in it, the sandbox's entrypoint session."""
        await ensure_entrypoint(await self.agent(record), record, self.lifecycle.snapshots)

    def _background(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(_settled(self._tasks))

    def files(self, record: SandboxRecord) -> list[tuple[Path, str]]:
        """(host file, in-sandbox path) bound over the host's: a linked sandbox's /etc/hosts
        resolves the sandbox it is linked to (they share this machine's network)."""
        linked = self.lifecycle.store.get(record.linked_sandbox_id or "")
        if linked is None:
            return []
        hosts = self.lifecycle.store.sandbox_dir(record.id) / "hosts"
        base = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else ""
        hosts.write_text(f"{base.rstrip()}\n127.0.0.1\t{linked.name} {linked.id}\n")
        return [(hosts, "/etc/hosts")]

    def mounts(self, record: SandboxRecord) -> list[tuple[Path, str]]:
        """(host dir, in-sandbox path) of each volume the sandbox mounts."""
        return volume_mounts(self.lifecycle.store, record)


def _settled(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        # The sandbox stopped (or the server did) while its agent was starting: expected.
        level = logging.DEBUG if isinstance(task.exception(), AgentGone) else logging.WARNING
        log.log(level, "sandbox agent: %s", task.exception())

    return done


LOCAL = web.AppKey("pytest_daytona_local", LocalContext)

#: The whole body of a request read ahead of its handler (for a late completion).
READ_AHEAD = web.RequestKey("pytest_daytona_read_ahead", bytes)


async def read_ahead(request: web.Request) -> None:
    """Read the whole body now, so a handler can still parse it after the answer went out."""
    request[READ_AHEAD] = await request.read()


async def multipart_reader(request: web.Request) -> MultipartReader:
    """The multipart body as a stream, also when it was read ahead."""
    raw = request.get(READ_AHEAD)
    if raw is None:
        return await request.multipart()
    stream = StreamReader(request.protocol, len(raw) + 1, loop=asyncio.get_running_loop())
    stream.feed_data(raw)
    stream.feed_eof()
    return MultipartReader(request.headers, stream)


async def parse_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """The JSON body validated against `model`, or a 400 naming what is wrong."""
    try:
        text = await request.text() if request.body_exists else ""  # also when read ahead
        raw = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ApiError(400, problems) from None
