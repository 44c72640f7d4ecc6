"""One test, run once per snapshot: ``pytest.param(..., marks=pytest.mark.daytona(snapshot=...))``.

Each parameter carries its own ``daytona`` marker, so each case gets a sandbox made from its
snapshot; ``id=`` names the case in the report (``test_toolchain_of_the_snapshot[py311]``).
A session factory gives one sandbox per snapshot for the whole run, shared by several tests.

The snapshots are made through the SDK when missing (`example_snapshots`), from declarative
images on `example_base_image` (examples/conftest.py: ``python:3.12-slim`` on Daytona, a small
image from a registry on loopback on the local backend). On Daytona a snapshot is usually made
once (dashboard, CLI or SDK) and found by name in every later run. The embedded local server
starts empty every run, so there they are made each time (pulled and built in a moment).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from example_snapshots import ensure_snapshot

from pytest_daytona import DaytonaSandbox, SandboxFactory

if TYPE_CHECKING:
    from daytona import Daytona, Image

#: The snapshots. Each image sets TOOLCHAIN, so a test can tell which snapshot its sandbox
#: came from.
STABLE = "pytest-daytona-example-py312"
LEGACY = "pytest-daytona-example-py311"


def images(base: str) -> dict[str, Image]:
    from daytona import Image  # imported when needed: the SDK takes a while to load

    return {
        STABLE: Image.base(base).env({"TOOLCHAIN": "py312"}),
        LEGACY: Image.base(base).env({"TOOLCHAIN": "py311"}),
    }


@pytest.fixture(scope="session", autouse=True)
def example_snapshots(daytona_client: Daytona, example_base_image: str) -> None:
    """Make sure the snapshots exist before a test of this module creates a sandbox
    (`daytona_client`: the plugin's SDK client, pointed at the same backend)."""
    for name, image in images(example_base_image).items():
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
    "script", ["echo $((1 << 10))", "printf '%d\\n' 0x400"], ids=["shift", "hex"]
)
def test_script_runs_on_every_snapshot(
    daytona_sandbox: DaytonaSandbox, snapshot: str, toolchain: str, script: str
) -> None:
    """Stacked parametrize: every script on every snapshot (ids like ``[shift-py312]``)."""
    result = daytona_sandbox.run(script)

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
