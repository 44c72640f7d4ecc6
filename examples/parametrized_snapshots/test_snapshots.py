"""One test, run once per snapshot: ``pytest.param(..., marks=pytest.mark.daytona(snapshot=...))``.

Each parameter carries its own ``daytona`` marker, so each case gets a sandbox made from its
snapshot; ``id=`` names the case in the report (``test_toolchain_of_the_snapshot[py311]``).
A session factory gives one sandbox per snapshot for the whole run, shared by several tests.

The snapshots are made through the SDK when missing (`example_snapshots`). On Daytona a
snapshot is usually made once (dashboard, CLI or SDK) and found by name in every later run.
The embedded local server starts empty every run, so there they are made each time: it
builds nothing, but applies the image's ``ENV`` to sandboxes created from the snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from pytest_daytona import DaytonaSandbox, SandboxFactory

if TYPE_CHECKING:
    from daytona import Daytona, Image

#: The snapshots. Each image sets TOOLCHAIN, so a test can tell which snapshot its sandbox
#: came from (on Daytona their Python versions differ too; not on the local backend).
STABLE = "pytest-daytona-example-py312"
LEGACY = "pytest-daytona-example-py311"


def images() -> dict[str, Image]:
    from daytona import Image  # imported when needed: the SDK takes a while to load

    return {
        STABLE: Image.debian_slim("3.12").env({"TOOLCHAIN": "py312"}),
        LEGACY: Image.debian_slim("3.11").env({"TOOLCHAIN": "py311"}),
    }


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


@pytest.fixture(scope="session", autouse=True)
def example_snapshots(daytona_client: Daytona) -> None:
    """Make sure the snapshots exist before a test of this module creates a sandbox
    (`daytona_client`: the plugin's SDK client, pointed at the same backend)."""
    for name, image in images().items():
        ensure_snapshot(daytona_client, name, image)


#: The cases: the value the test gets, the marker that picks the snapshot, the id.
SNAPSHOTS = [
    pytest.param(STABLE, "py312", marks=pytest.mark.daytona(snapshot=STABLE), id="py312"),
    pytest.param(LEGACY, "py311", marks=pytest.mark.daytona(snapshot=LEGACY), id="py311"),
]


@pytest.mark.parametrize(("snapshot", "toolchain"), SNAPSHOTS)
def test_toolchain_of_the_snapshot(
    daytona_sandbox: DaytonaSandbox, snapshot: str, toolchain: str
) -> None:
    sb = daytona_sandbox

    assert sb.sdk.snapshot == snapshot  # what Daytona made the sandbox from
    assert sb.run(["printenv", "TOOLCHAIN"]).stdout == f"{toolchain}\n"  # the image's ENV


@pytest.mark.parametrize(("snapshot", "toolchain"), SNAPSHOTS)
@pytest.mark.parametrize(
    "script", ["print(2 ** 10)", "import json; print(json.dumps(1024))"], ids=["power", "json"]
)
def test_script_runs_on_every_snapshot(
    daytona_sandbox: DaytonaSandbox, snapshot: str, toolchain: str, script: str
) -> None:
    """Stacked parametrize: every script on every snapshot (ids like ``[power-py312]``)."""
    result = daytona_sandbox.run(["python3", "-c", script])

    assert result.stdout == "1024\n"
    assert daytona_sandbox.sdk.snapshot == snapshot


@pytest.fixture(scope="session")
def box_for(
    daytona_session_sandbox_factory: SandboxFactory,
) -> Callable[[str], DaytonaSandbox]:
    """One sandbox per snapshot for the whole run, made when a test first asks for it and
    deleted at the end of the run (under pytest-xdist: per worker)."""
    boxes: dict[str, DaytonaSandbox] = {}

    def box(snapshot: str) -> DaytonaSandbox:
        if snapshot not in boxes:
            boxes[snapshot] = daytona_session_sandbox_factory(snapshot=snapshot)
        return boxes[snapshot]

    return box


@pytest.mark.parametrize("snapshot", [STABLE, LEGACY], ids=["py312", "py311"])
@pytest.mark.parametrize("step", ["configure", "build", "check"])
def test_steps_share_the_sandbox_of_their_snapshot(
    box_for: Callable[[str], DaytonaSandbox], snapshot: str, step: str
) -> None:
    """Three steps per snapshot in one sandbox each: the log a sandbox keeps holds its own
    snapshot's steps only, in whatever order (and on whichever worker) they ran."""
    sb = box_for(snapshot)
    sb.run(f'echo "$TOOLCHAIN {step}" >> steps.log', check=True)

    toolchains = {line.split()[0] for line in sb.read_text("steps.log").splitlines()}

    assert sb.sdk.snapshot == snapshot
    assert toolchains == {"py312" if snapshot == STABLE else "py311"}
