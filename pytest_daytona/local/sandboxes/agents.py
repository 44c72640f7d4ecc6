"""Starting the agents of started sandboxes: confined (their own view, network and limits)
under bubblewrap, or as plain processes; one agent per sandbox, ended when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..agent.procs import PR_SET_PDEATHSIG, prctl
from ..errors import ApiError
from .agent_client import Agent, namespace_init
from .agent_runtime import agent_runtime
from .cgroups import Cgroup, CgroupTree
from .confinement import Confinement
from .egress import RESOLV_CONF, open_egress
from .image_sandbox import ImageLaunch
from .runner import Runner, user_namespace

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
#: Where the package is bound read-only inside an isolated sandbox: wherever it is installed
#: (a venv under /tmp or /home, which the sandbox does not see), the agent finds it here.
_AGENT_ROOT = "/.daytona-agent"
#: The interpreter itself, not a venv's link to it (the agent needs the standard library only).
_PYTHON = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from pytest_daytona.local.agent.main import main; "
    "main(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])"
)


@dataclass(frozen=True)
class _Child:
    """What the agent's process does before it execs: join its control group and die with
    the server."""

    cgroup: Cgroup | None

    def __call__(self) -> None:
        if self.cgroup is not None:
            self.cgroup.join()
        # bubblewrap's --die-with-parent covers what runs inside; this covers bwrap itself
        # (and a plain agent) when the server dies without stopping its sandboxes.
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Start:
    """One sandbox's agent as it is asked for: where its files are and how it is confined."""

    sandbox_id: str
    home: Path
    tmp: Path
    mounts: list[tuple[Path, str]]
    files: list[tuple[Path, str]] = field(default_factory=list)
    image: ImageLaunch | None = None
    confinement: Confinement = field(default_factory=Confinement)


class Agents:
    """The agents of all started sandboxes of one server."""

    def __init__(self, runner: Runner, cgroups: CgroupTree | None = None) -> None:
        self.runner = runner
        self.cgroups = cgroups
        self._agents: dict[str, Agent] = {}
        self._starting: dict[str, asyncio.Future[Agent]] = {}

    @property
    def isolated(self) -> bool:
        """Whether sandboxes run under bubblewrap."""
        return self.runner.isolated

    def running(self, sandbox_id: str) -> Agent | None:
        """The sandbox's agent if it runs."""
        agent = self._agents.get(sandbox_id)
        return agent if agent is not None and agent.alive else None

    async def current(self, sandbox_id: str) -> Agent | None:
        """The sandbox's agent once a start in flight has ended; None when none runs."""
        pending = self._starting.get(sandbox_id)
        if pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
        return self.running(sandbox_id)

    async def get(self, start: Start) -> Agent:
        """The sandbox's agent, started as `start` says if it is not running."""
        agent = self.running(start.sandbox_id)
        if agent is not None:
            return agent
        sandbox_id = start.sandbox_id
        pending = self._starting.get(sandbox_id)
        if pending is None:
            pending = asyncio.ensure_future(self._start(start))
            self._starting[sandbox_id] = pending
            pending.add_done_callback(lambda _: self._starting.pop(sandbox_id, None))
        return await asyncio.shield(pending)

    def _argv(
        self, start: Start, boot: list[str], userns: int | None, info: int | None
    ) -> list[str]:
        network = start.confinement.network
        package = (Path(_PACKAGE_ROOT) / "pytest_daytona", f"{_AGENT_ROOT}/pytest_daytona")
        files = [*start.files, package]
        if network.allow:
            resolv = start.tmp.parent / "resolv.conf"
            resolv.write_text(RESOLV_CONF)
            files.append((resolv, "/etc/resolv.conf"))
        if start.image is not None and self.runner.bwrap is not None:
            return start.image.argv(
                self.runner.bwrap,
                [*agent_runtime().python, *boot],
                binds=start.mounts,
                ro_files=files,
                info_fd=info,
                own_network=network.own,
            )
        if not self.runner.isolated:
            return [_PYTHON, *boot]
        self.runner.own(start.home, *(source for source, _ in start.mounts))
        runtime = agent_runtime()
        return self.runner.launch_argv(
            [*runtime.python, *boot],
            home=start.home,
            tmp=start.tmp,
            userns=userns,
            mounts=start.mounts,
            files=files,
            keep=runtime.binds,
            info_fd=info,
            own_network=network.own,
        )

    async def _start(self, start: Start) -> Agent:
        sandbox_id, image = start.sandbox_id, start.image
        if image is not None and not self.runner.images_supported:
            raise ApiError(
                400,
                f"sandbox {sandbox_id}: image {image.image.name} cannot run here: images need "
                "bubblewrap (apt-get install bubblewrap) and overlayfs in a user namespace "
                "(Linux 5.11 or newer)",
            )
        isolated = self.runner.isolated
        if start.confinement.network.own and not isolated:
            raise ApiError(
                400,
                f"sandbox {sandbox_id}: network_block_all / network_allow_list cannot be "
                "enforced without bubblewrap (apt-get install bubblewrap); unset them or "
                "isolate the local server",
            )
        limits = start.confinement.limits
        rlimits = limits.rlimits()
        if not isolated:  # a plain process counts against every process of this user
            del rlimits["RLIMIT_NPROC"]
        cgroup = None
        if self.cgroups is not None:
            cgroup = await asyncio.to_thread(self.cgroups.create, sandbox_id, limits)
        ours, theirs = socket.socketpair()
        channel, their_channel = socket.socketpair()
        info_read, info_write = os.pipe() if isolated else (None, None)
        userns = None
        settings: dict[str, object] = {"rlimits": rlimits}
        boot = ["-I", "-S", "-c", _BOOT, _AGENT_ROOT if isolated else _PACKAGE_ROOT]
        try:
            if self.runner.host_uid is not None and image is None:
                userns = await asyncio.to_thread(user_namespace, self.runner.host_uid)
                settings["user"] = 1000
            boot += [str(theirs.fileno()), str(their_channel.fileno()), json.dumps(settings)]
            argv = self._argv(start, boot, userns, info_write)
            extra = [fd for fd in (userns, info_write) if fd is not None]
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                pass_fds=[theirs.fileno(), their_channel.fileno(), *extra],
                cwd="/" if isolated else start.home,
                env=None if isolated else self.runner.environment(start.home, start.tmp),
                start_new_session=True,
                preexec_fn=_Child(cgroup),
            )
        except (ValueError, OSError) as exc:
            ours.close()
            channel.close()
            if info_read is not None:
                os.close(info_read)
            if cgroup is not None:
                cgroup.remove()
            if isinstance(exc, ValueError):
                raise ApiError(400, f"sandbox {sandbox_id}: {exc}") from None
            raise ApiError(500, f"sandbox {sandbox_id}: agent did not start: {exc}") from None
        finally:
            theirs.close()
            their_channel.close()
            if userns is not None:
                os.close(userns)
            if info_write is not None:
                os.close(info_write)
        init = None if info_read is None else await asyncio.to_thread(namespace_init, info_read)
        agent = Agent(
            sandbox_id,
            proc,
            ours,
            isolated=isolated,
            init=None if init is None else init[1],
            channel=channel,
            cgroup=cgroup,
        )
        agent.network = start.confinement.network
        await agent.connect()
        await self._open_egress(agent, start, None if init is None else init[0])
        old = self._agents.pop(sandbox_id, None)
        if old is not None:
            await old.close()
        self._agents[sandbox_id] = agent
        return agent

    async def _open_egress(self, agent: Agent, start: Start, pid: int | None) -> None:
        allow = start.confinement.network.allow
        if not allow:
            return
        try:
            if pid is None:
                raise RuntimeError("its network namespace is not known")
            agent.egress = await asyncio.to_thread(open_egress, pid, allow)
        except RuntimeError as exc:
            await agent.close()
            raise ApiError(
                400, f"sandbox {start.sandbox_id}: network_allow_list cannot be enforced: {exc}"
            ) from None

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
        sandboxes = {*self._agents, *self._starting}  # a start in flight ends here too
        await asyncio.gather(*(self.stop(sid) for sid in sandboxes))
        if self.cgroups is not None:
            self.cgroups.remove()
