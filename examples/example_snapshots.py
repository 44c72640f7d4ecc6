"""Snapshots the example suites need, made through the SDK when missing (examples/ is on
``sys.path`` through its conftest.py, so suites import this as ``example_snapshots``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daytona import Daytona, Image


def ensure_snapshot(daytona: Daytona, name: str, image: Image, wait: float = 600) -> None:
    """Make snapshot `name` from `image` unless it exists; wait until it is active."""
    from daytona import CreateSnapshotParams, DaytonaError, DaytonaNotFoundError

    try:
        daytona.snapshot.get(name)
    except DaytonaNotFoundError:
        try:
            daytona.snapshot.create(CreateSnapshotParams(name=name, image=image))  # waits
            return
        except DaytonaError:  # another pytest-xdist worker made it first: wait for it below
            pass
    deadline = time.monotonic() + wait
    while (state := getattr(daytona.snapshot.get(name).state, "value", "")) != "active":
        assert state not in ("error", "build_failed"), f"snapshot {name}: {state}"
        assert time.monotonic() < deadline, f"snapshot {name} still {state} after {wait}s"
        time.sleep(1)
