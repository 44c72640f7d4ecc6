"""Sandbox lifecycle through the real SDK: create, get, list, start, stop, recover, delete."""

from __future__ import annotations

import time

import pytest
import socketio
from daytona import (
    CreateSandboxFromImageParams,
    CreateSandboxFromSnapshotParams,
    CreateSnapshotParams,
    Daytona,
    DaytonaConfig,
    DaytonaConflictError,
    DaytonaError,
    DaytonaNotFoundError,
    ListSandboxesQuery,
    Resources,
)
from daytona_api_client import SandboxState

from pytest_daytona.local import LocalServer
from tests.local.conftest import close_client, route_count


@pytest.mark.usefixtures("stand_in_registry")  # short image names
def test_create_from_snapshot_records_everything(client: Daytona) -> None:
    client.snapshot.create(CreateSnapshotParams(name="my-snapshot", image="debian:12.9"))
    sb = client.create(
        CreateSandboxFromSnapshotParams(
            name="lc-snap",
            snapshot="my-snapshot",
            labels={"team": "qa"},
            env_vars={"A": "1"},
            auto_stop_interval=5,
            auto_archive_interval=60,
            auto_delete_interval=120,
        )
    )
    assert sb.state == SandboxState.STARTED
    assert sb.name == "lc-snap"
    assert sb.snapshot == "my-snapshot"
    assert sb.labels["team"] == "qa"
    assert sb.labels["code-toolbox-language"] == "python"  # added by the SDK, kept by us
    assert sb.env == {"A": "1"}
    assert (sb.auto_stop_interval, sb.auto_archive_interval, sb.auto_delete_interval) == (
        5,
        60,
        120,
    )


@pytest.mark.usefixtures("stand_in_registry")  # short image names
def test_create_from_image_records_build_and_resources(client: Daytona) -> None:
    sb = client.create(
        CreateSandboxFromImageParams(
            image="debian:12.9", resources=Resources(cpu=2, memory=4, disk=8), labels={"k": "v"}
        )
    )
    assert (sb.cpu, sb.memory, sb.disk) == (2, 4, 8)
    assert sb.build_info is not None
    assert "FROM debian:12.9" in (sb.build_info.dockerfile_content or "")
    assert sb.snapshot is None


def test_get_by_id_and_by_name(client: Daytona) -> None:
    sb = client.create(CreateSandboxFromSnapshotParams(name="by-name"))
    assert client.get(sb.id).id == sb.id
    assert client.get("by-name").id == sb.id


@pytest.mark.quick
def test_get_missing_raises_not_found(client: Daytona) -> None:
    with pytest.raises(DaytonaNotFoundError):
        client.get("no-such-sandbox")


def test_duplicate_name_conflicts(client: Daytona) -> None:
    client.create(CreateSandboxFromSnapshotParams(name="twice"))
    with pytest.raises(DaytonaConflictError):
        client.create(CreateSandboxFromSnapshotParams(name="twice"))


def test_list_filters_by_labels_and_states(client: Daytona) -> None:
    a = client.create(CreateSandboxFromSnapshotParams(labels={"run": "r1", "role": "db"}))
    b = client.create(CreateSandboxFromSnapshotParams(labels={"run": "r1", "role": "web"}))
    client.create(CreateSandboxFromSnapshotParams(labels={"run": "r2"}))
    b.stop()
    in_run = {s.id for s in client.list(ListSandboxesQuery(labels={"run": "r1"}))}
    assert in_run == {a.id, b.id}
    db = [s.id for s in client.list(ListSandboxesQuery(labels={"run": "r1", "role": "db"}))]
    assert db == [a.id]
    stopped = [s.id for s in client.list(ListSandboxesQuery(states=[SandboxState.STOPPED]))]
    assert stopped == [b.id]


def test_list_paginates_with_cursor(server: LocalServer, client: Daytona) -> None:
    created = {
        client.create(CreateSandboxFromSnapshotParams(labels={"p": "1"})).id for _ in range(5)
    }
    listed = [s.id for s in client.list(ListSandboxesQuery(labels={"p": "1"}, limit=2))]
    assert sorted(listed) == sorted(created)
    assert len(listed) == 5  # nothing repeated across pages
    assert route_count(server, "GET /sandbox") == 3  # pages of 2, 2 and 1


def test_stop_start_delete(server: LocalServer, client: Daytona) -> None:
    sb = client.create()
    sb.stop()
    assert sb.state == SandboxState.STOPPED
    assert client.get(sb.id).state == SandboxState.STOPPED
    sb.start()
    assert client.get(sb.id).state == SandboxState.STARTED
    sb.delete(wait=True)
    with pytest.raises(DaytonaNotFoundError):
        client.get(sb.id)
    assert server.stats()["live"] == 0
    assert server.stats()["creates"] == 1


def test_set_labels_replaces_all(client: Daytona) -> None:
    sb = client.create(CreateSandboxFromSnapshotParams(labels={"old": "1"}))
    assert sb.set_labels({"new": "2"}) == {"new": "2"}
    assert client.get(sb.id).labels == {"new": "2"}


def test_recover_from_recoverable_error(server: LocalServer, client: Daytona) -> None:
    sb = client.create()
    server.force_error(sb.id, recoverable=True, reason="disk full")
    fetched = client.get(sb.id)
    assert fetched.state == SandboxState.ERROR
    assert fetched.recoverable is True
    assert fetched.error_reason == "disk full"
    fetched.recover()
    assert client.get(sb.id).state == SandboxState.STARTED
    assert client.get(sb.id).error_reason is None


def test_unrecoverable_error_refuses_recover(server: LocalServer, client: Daytona) -> None:
    sb = client.create()
    server.force_error(sb.id, recoverable=False, reason="host lost")
    fetched = client.get(sb.id)
    assert (fetched.state, fetched.recoverable) == (SandboxState.ERROR, False)
    with pytest.raises(DaytonaError, match="not recoverable"):
        fetched.recover()


def test_transition_delay_shows_intermediate_states(data_dir: object) -> None:
    with LocalServer(transition_delay=0.5) as srv:
        daytona = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        try:
            sb = daytona.create()
            assert sb.state == SandboxState.STARTED
            sb._sandbox_api.stop_sandbox(sb.id)  # raw call: no waiting
            assert daytona.get(sb.id).state == SandboxState.STOPPING
            sb.wait_for_sandbox_stop()
            assert daytona.get(sb.id).state == SandboxState.STOPPED
            sb.delete()
            assert srv.stats()["states"][sb.id] == "destroying"
        finally:
            close_client(daytona)


def test_state_changes_reach_the_sdk_as_socketio_events(
    server: LocalServer, client: Daytona
) -> None:
    """The SDK's Sandbox object learns of a state change with no GET: only the event tells it."""
    sb = client.create()
    dispatcher = client._event_dispatcher  # the SDK connects in the background; wait for it
    deadline = time.monotonic() + 10
    while dispatcher is not None and not dispatcher.is_connected and time.monotonic() < deadline:
        time.sleep(0.02)
    gets = route_count(server, "GET /sandbox/{sandboxIdOrName}")
    server.force_error(sb.id, recoverable=True, reason="event check")
    deadline = time.monotonic() + 10
    while sb.state != SandboxState.ERROR and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sb.state == SandboxState.ERROR
    assert route_count(server, "GET /sandbox/{sandboxIdOrName}") == gets


def test_socketio_payloads_and_token(server: LocalServer) -> None:
    """A plain Socket.IO client: refused without the token, gets both event shapes with it."""
    events: list[tuple[str, dict[str, object]]] = []
    url = server.api_url.rsplit("/api", 1)[0]
    refused = socketio.Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        refused.connect(
            url,
            socketio_path="/api/socket.io/",
            auth={"token": "wrong"},
            transports=["websocket"],
            wait_timeout=5,
        )
    sio = socketio.Client()
    sio.on("sandbox.created", lambda data: events.append(("sandbox.created", data)))
    sio.on("sandbox.state.updated", lambda data: events.append(("sandbox.state.updated", data)))
    sio.connect(
        url,
        socketio_path="/api/socket.io/",
        auth={"token": server.token},
        transports=["websocket"],
        wait_timeout=5,
    )
    daytona = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    try:
        sb = daytona.create()
        sb.stop()
        deadline = time.monotonic() + 10
        while len(events) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sio.disconnect()
        close_client(daytona)
    names = [name for name, _ in events]
    assert names[:3] == ["sandbox.created", "sandbox.state.updated", "sandbox.state.updated"]
    assert events[0][1]["id"] == sb.id
    assert events[2][1]["newState"] == "stopped"
    assert events[2][1]["sandbox"]["id"] == sb.id  # type: ignore[index]
