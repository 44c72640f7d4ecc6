"""The sandbox's entrypoint, run in the toolbox's ``entrypoint`` session when it starts.

Daytona runs a snapshot's entrypoint (``sleep infinity`` when it has none) in a session of
that name; its logs are the entrypoint logs of the SDK.
"""

from __future__ import annotations

from .sandboxes.agent_client import Agent
from .state.records import SandboxRecord
from .state.snapshots import Snapshots


def entrypoint_argv(record: SandboxRecord, snapshots: Snapshots) -> list[str] | None:
    """The entrypoint of the sandbox's snapshot; None for the default (``sleep infinity``)."""
    snapshot = snapshots.find(record.snapshot) if record.snapshot else None
    return list(snapshot.entrypoint) if snapshot is not None and snapshot.entrypoint else None


async def ensure_entrypoint(agent: Agent, record: SandboxRecord, snapshots: Snapshots) -> None:
    """Start the entrypoint session in `agent` unless it runs already."""
    argv = entrypoint_argv(record, snapshots)
    await agent.call("sessions.entrypoint", {"argv": argv, "base_env": record.env})
