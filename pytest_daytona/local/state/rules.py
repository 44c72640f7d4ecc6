"""Daytona's rules for sandbox operations: which states each may start from, resize checks,
the auto-archive interval as the API stores it."""

from __future__ import annotations

from ..errors import ApiError
from .records import SandboxRecord, State

#: Per-operation: states it may start from, the transitional state, the settled state.
OPS: dict[str, tuple[frozenset[State], State, State]] = {
    "start": (
        frozenset({State.STOPPED, State.ARCHIVED, State.STARTED}),
        State.STARTING,
        State.STARTED,
    ),
    "stop": (
        frozenset({State.STARTED, State.STOPPED, State.PAUSED}),
        State.STOPPING,
        State.STOPPED,
    ),
    "recover": (frozenset({State.ERROR}), State.STARTING, State.STARTED),
    "archive": (frozenset({State.STOPPED}), State.ARCHIVING, State.ARCHIVED),
    "pause": (frozenset({State.STARTED}), State.PAUSING, State.PAUSED),
}
OPS["start"] = (OPS["start"][0] | {State.PAUSED}, State.STARTING, State.STARTED)


#: Daytona's default ``maxAutoArchiveInterval`` (minutes): what an auto-archive interval of 0 means.
MAX_AUTO_ARCHIVE_MINUTES = 43200


def resolve_auto_archive(minutes: int) -> int:
    """An auto-archive interval as the API stores it: 0 is the maximum, more is capped to it."""
    if minutes < 0:
        raise ApiError(400, "Auto-archive interval must be non-negative")
    return MAX_AUTO_ARCHIVE_MINUTES if minutes == 0 else min(minutes, MAX_AUTO_ARCHIVE_MINUTES)


def check_resize(
    record: SandboxRecord, cpu: int | None, memory: int | None, disk: int | None
) -> None:
    """Daytona's resize rules: started (cpu and memory up only) or stopped, disk never down."""
    if record.state not in (State.STARTED, State.STOPPED):
        raise ApiError(400, "Sandbox must be in started or stopped state to resize")
    if cpu is None and memory is None and disk is None:
        raise ApiError(
            400, "No resource changes specified - sandbox is already at the desired configuration"
        )
    if disk is not None and record.state is not State.STOPPED:
        raise ApiError(400, "Disk resize can only be performed on a stopped sandbox")
    if record.state is State.STARTED and cpu is not None and cpu < record.cpu:
        raise ApiError(400, "Sandbox must be in stopped state to decrease the number of CPU cores")
    if record.state is State.STARTED and memory is not None and memory < record.memory:
        raise ApiError(400, "Sandbox must be in stopped state to decrease memory")
    if disk is not None and disk < record.disk:
        raise ApiError(400, "Sandbox disk size cannot be decreased")
    if (cpu or record.cpu, memory or record.memory, disk or record.disk) == (
        record.cpu,
        record.memory,
        record.disk,
    ):
        raise ApiError(
            400, "No resource changes specified - sandbox is already at the desired configuration"
        )
