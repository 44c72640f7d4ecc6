"""What one sandbox may reach and use: its network and its resource limits."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

GIB = 1 << 30
#: Processes (threads count too) one sandbox may have at once, unless the server says.
DEFAULT_MAX_PROCESSES = 4096


@dataclass(frozen=True)
class Network:
    """A sandbox's network: this machine's (`own` False, as Daytona's default: outbound
    allowed), or a network namespace of its own where only `allow` is routed (nothing:
    only its own loopback)."""

    own: bool = False
    allow: tuple[str, ...] = ()

    @classmethod
    def of(cls, block_all: bool, allow_list: str | None) -> Network:
        """The network that a sandbox's ``network_block_all`` and ``network_allow_list``
        give (block_all wins, as on Daytona)."""
        if block_all:
            return cls(own=True)
        networks = tuple(
            str(ipaddress.ip_network(part.strip(), strict=False))
            for part in (allow_list or "").split(",")
            if part.strip()
        )
        return cls(own=True, allow=networks) if networks else cls()

    @property
    def describe(self) -> str:
        """How the network is, in a message."""
        if not self.own:
            return "this machine's network"
        return f"only {', '.join(self.allow)}" if self.allow else "no network"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox: its ``cpu`` (cores), ``memory`` and ``disk`` (GiB)
    settings and the server's process limit."""

    cpu: int = 1
    memory_gib: int = 1
    disk_gib: int = 3
    processes: int = DEFAULT_MAX_PROCESSES

    def rlimits(self) -> dict[str, int]:
        """Per-process limits the agent sets on itself (its commands inherit them):
        processes of the sandbox, writable memory of one process, size of one file."""
        return {
            "RLIMIT_NPROC": self.processes,
            "RLIMIT_DATA": self.memory_gib * GIB,
            "RLIMIT_FSIZE": self.disk_gib * GIB,
        }


@dataclass(frozen=True)
class Confinement:
    """A sandbox's network and limits, as it starts."""

    network: Network = Network()
    limits: Limits = Limits()
