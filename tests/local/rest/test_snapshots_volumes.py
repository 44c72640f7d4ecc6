"""Snapshots and volumes through the real SDK, and the volume mounts handed to the runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daytona import (
    CreateSandboxFromSnapshotParams,
    CreateSnapshotParams,
    Daytona,
    DaytonaBadRequestError,
    DaytonaConfig,
    DaytonaConflictError,
    DaytonaNotFoundError,
    Image,
    VolumeMount,
)
from daytona_api_client import SandboxState, SnapshotState, VolumeState
from daytona_api_client.exceptions import BadRequestException

from pytest_daytona.local import LocalServer
from pytest_daytona.local.state.store import Store
from pytest_daytona.local.state.volumes import volume_mounts
from tests.local.conftest import close_client, http_json
from tests.sdk_version import volume_error


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[LocalServer]:
    """Transitions take 0.3 s, so the states in between can be seen."""
    with LocalServer(tmp_path / "slow", transition_delay=0.3, minute=0.05) as srv:
        yield srv


@pytest.fixture
def slow_client(slow_server: LocalServer) -> Iterator[Daytona]:
    daytona = Daytona(DaytonaConfig(api_key=slow_server.token, api_url=slow_server.api_url))
    yield daytona
    close_client(daytona)


@pytest.mark.usefixtures("stand_in_registry")  # short image names
def test_snapshot_from_image_name(client: Daytona) -> None:
    snap = client.snapshot.create(CreateSnapshotParams(name="py-312", image="python:3.12-slim"))
    assert (snap.state, snap.image_name) == (SnapshotState.ACTIVE, "python:3.12-slim")
    assert client.snapshot.get("py-312").id == snap.id
    assert client.snapshot.get(snap.id).name == "py-312"
    page = client.snapshot.list()
    assert [s.name for s in page.items][:1] == ["py-312"] and page.total == len(page.items)
    sb = client.create(CreateSandboxFromSnapshotParams(snapshot="py-312"))
    assert (sb.state, sb.snapshot) == (SandboxState.STARTED, "py-312")
    with pytest.raises(DaytonaConflictError):
        client.snapshot.create(CreateSnapshotParams(name="py-312", image="python:3.12-slim"))
    with pytest.raises(DaytonaBadRequestError, match=":latest"):
        client.snapshot.create(CreateSnapshotParams(name="x", image="python:latest"))
    client.snapshot.delete(snap)
    with pytest.raises(DaytonaNotFoundError):
        client.snapshot.get("py-312")


def test_unknown_snapshot_at_create_is_the_clouds_400(client: Daytona) -> None:
    with pytest.raises(DaytonaBadRequestError, match=r"Snapshot nope not found\. Did you add it"):
        client.create(CreateSandboxFromSnapshotParams(snapshot="nope"))


@pytest.mark.usefixtures("stand_in_registry")  # short image names
def test_declarative_image_steps_run_and_env_applies(client: Daytona) -> None:
    image = (
        Image.base("debian:12")
        .run_commands("echo built > /etc/built-by-run")
        .env({"APP_MODE": "local test", "OTHER": "2"})
        .workdir("/home/daytona/app")
    )
    logs: list[str] = []
    snap = client.snapshot.create(
        CreateSnapshotParams(name="declared", image=image), on_logs=logs.append
    )
    assert snap.state == SnapshotState.ACTIVE
    assert snap.build_info is not None and "RUN echo built" in (
        snap.build_info.dockerfile_content or ""
    )
    assert any("Created snapshot declared" in line for line in logs)
    sb = client.create(
        CreateSandboxFromSnapshotParams(snapshot="declared", env_vars={"OTHER": "3"})
    )
    # The image's ENV is in the sandbox's environment, not in the sandbox's own env field.
    assert sb.env == {"OTHER": "3"}
    out = sb.process.exec('echo "$APP_MODE/$OTHER/$(pwd)/$(cat /etc/built-by-run)"')
    assert out.result.strip() == "local test/3//home/daytona/app/built"


@pytest.mark.usefixtures("stand_in_registry")  # short image names
def test_snapshot_states_and_build_logs_with_a_transition_delay(tmp_path: Path) -> None:
    logs: list[str] = []
    image = Image.base("debian:12").run_commands("echo step-output-line")
    # The SDK polls a snapshot once a second: each state lasts longer than that here.
    with LocalServer(tmp_path / "slower", transition_delay=1.5) as srv:
        daytona = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        try:
            snap = daytona.snapshot.create(
                CreateSnapshotParams(name="slow", image=image), on_logs=logs.append
            )
        finally:
            close_client(daytona)
    assert snap.state == SnapshotState.ACTIVE
    states = [line.lower() for line in logs if line.startswith("Creating snapshot slow")]
    assert states[0].endswith("pending)") and any(s.endswith("building)") for s in states)
    # The SDK hands over the log in the chunks it read, several lines to a chunk at times.
    assert "step-output-line" in "\n".join(logs).splitlines()


@pytest.mark.usefixtures("stand_in_registry")  # short image names
def test_snapshot_activate_and_deactivate(slow_server: LocalServer, slow_client: Daytona) -> None:
    snap = slow_client.snapshot.create(CreateSnapshotParams(name="act", image="alpine:3.20"))
    # The SDK's activate has no error translation: the generated client's exception comes out.
    with pytest.raises(BadRequestException, match="already active"):
        slow_client.snapshot.activate(snap)
    status, _ = http_json(
        slow_server, "POST", f"/snapshots/{snap.id}/deactivate", slow_server.token
    )
    assert status == 204
    with pytest.raises(DaytonaBadRequestError, match="Snapshot act is inactive"):
        slow_client.create(CreateSandboxFromSnapshotParams(snapshot="act"))
    status, body = http_json(
        slow_server, "POST", f"/snapshots/{snap.id}/activate", slow_server.token
    )
    assert (status, body["message"]) == (
        400,
        "Snapshot deactivation is still in progress. Please try again in a few minutes.",
    )


@pytest.mark.quick
def test_volumes_create_get_list_delete(client: Daytona) -> None:
    vol = client.volume.get("data", create=True)
    assert (vol.name, vol.state) == ("data", VolumeState.READY)
    assert client.volume.get("data").id == vol.id
    assert [v.name for v in client.volume.list()] == ["data"]
    with pytest.raises(volume_error(DaytonaBadRequestError), match="already exists"):
        client.volume.create("data")
    client.volume.delete(vol)
    with pytest.raises(volume_error(DaytonaNotFoundError)):
        client.volume.get("data")


def test_volume_mounts_are_checked_and_recorded(server: LocalServer, client: Daytona) -> None:
    vol = client.volume.create("shared")
    with pytest.raises(DaytonaNotFoundError, match="Volume 'missing' not found"):
        client.create(
            CreateSandboxFromSnapshotParams(
                volumes=[VolumeMount(volume_id="missing", mount_path="/data")]
            )
        )
    with pytest.raises(DaytonaBadRequestError, match="cannot mount to system directory"):
        client.create(
            CreateSandboxFromSnapshotParams(
                volumes=[VolumeMount(volume_id=vol.id, mount_path="/etc/x")]
            )
        )
    sb = client.create(
        CreateSandboxFromSnapshotParams(
            volumes=[
                VolumeMount(volume_id="shared", mount_path="/home/daytona/shared"),
                VolumeMount(volume_id=vol.id, mount_path="/mnt/part/", subpath="team/a"),
            ]
        )
    )
    fresh = client.get(sb.id)
    assert [(v.volume_id, v.mount_path, v.subpath) for v in fresh.volumes or []] == [
        (vol.id, "/home/daytona/shared", None),
        (vol.id, "/mnt/part/", "team/a"),
    ]
    store = Store(server.data_dir)  # reads what the server persisted
    record = store.get(sb.id)
    assert record is not None
    pairs = volume_mounts(store, record)
    base = server.data_dir / "volumes" / vol.id
    assert pairs == [(base, "/home/daytona/shared"), (base / "team" / "a", "/mnt/part")]
    assert (base / "team" / "a").is_dir()
    with pytest.raises(volume_error(DaytonaConflictError), match="in use by one or more sandboxes"):
        client.volume.delete(vol)
    sb.delete()
    client.volume.delete(vol)


def test_volume_must_be_ready(slow_client: Daytona) -> None:
    vol = slow_client.volume.create("later")
    assert vol.state == VolumeState.PENDING_CREATE
    with pytest.raises(DaytonaBadRequestError, match="not in a ready state"):
        slow_client.create(
            CreateSandboxFromSnapshotParams(
                volumes=[VolumeMount(volume_id="later", mount_path="/v")]
            )
        )
