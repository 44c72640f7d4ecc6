"""Control-plane operations through the real SDK: fork, pause, env, public, activity, resize,
network, intervals, list filters and order, unknown routes, and creates racing their events."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from daytona import (
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaBadRequestError,
    DaytonaNotFoundError,
    ListSandboxesQuery,
    Resources,
    Sandbox,
)
from daytona_api_client import SandboxListSortDirection, SandboxListSortField, SandboxState

from pytest_daytona.local import LocalServer
from tests.local.conftest import http_json
from tests.sdk_version import requires_sdk, volume_error

needs_fork = requires_sdk("0.202.0", reason="Sandbox.fork() appeared in daytona 0.202.0")


@needs_fork
def test_fork_copies_files_and_settings(client: Daytona) -> None:
    source = client.create(
        CreateSandboxFromSnapshotParams(name="src", env_vars={"K": "v"}, labels={"l": "1"})
    )
    source.process.exec("mkdir -p proj && echo original > proj/data.txt")
    fork = source.fork(name="forked")
    assert fork.state == SandboxState.STARTED
    assert (fork.name, fork.env, fork.labels["l"]) == ("forked", {"K": "v"}, "1")
    assert fork.id != source.id
    assert fork.process.exec("cat proj/data.txt").result.strip() == "original"
    fork.process.exec("echo changed > proj/data.txt")
    assert source.process.exec("cat proj/data.txt").result.strip() == "original"


@needs_fork
def test_fork_needs_a_started_sandbox_and_a_free_name(client: Daytona, sandbox: Sandbox) -> None:
    client.create(CreateSandboxFromSnapshotParams(name="taken"))
    with pytest.raises(DaytonaBadRequestError, match="started state to fork") as _:
        sandbox.stop()
        sandbox.fork()
    sandbox.start()
    with pytest.raises(Exception, match="already exists"):
        sandbox.fork(name="taken")


def test_pause_then_start_resumes(client: Daytona, sandbox: Sandbox) -> None:
    sandbox.pause()
    assert sandbox.state == SandboxState.PAUSED
    assert client.get(sandbox.id).desired_state == "paused"
    with pytest.raises(DaytonaBadRequestError, match="started state to pause"):
        sandbox.pause()
    sandbox.start()
    assert sandbox.state == SandboxState.STARTED
    assert sandbox.process.exec("echo back").result.strip() == "back"


def test_update_env_is_seen_by_later_commands(iso_sandbox: Sandbox) -> None:
    iso_sandbox.update_env({"NEW_VAR": "hello"}, unset=["FROM_CREATE"])
    out = iso_sandbox.process.exec('echo "$NEW_VAR-${FROM_CREATE:-unset}"').result
    assert out.strip() == "hello-unset"


@requires_sdk("0.223.1", reason="Sandbox.set_public() appeared in daytona 0.223.1")
def test_public_is_recorded(client: Daytona, sandbox: Sandbox) -> None:
    assert client.get(sandbox.id).public is False
    sandbox.set_public(True)
    assert client.get(sandbox.id).public is True


def test_activity_and_network_are_recorded(client: Daytona, sandbox: Sandbox) -> None:
    before = client.get(sandbox.id).last_activity_at
    sandbox.refresh_activity()
    sandbox.stop()  # a started sandbox keeps the network it started with (see test_network)
    sandbox.update_network_settings(network_allow_list="10.0.0.0/8,192.168.1.0/24")
    fresh = client.get(sandbox.id)
    assert (fresh.last_activity_at or "") >= (before or "")
    assert (fresh.network_block_all, fresh.network_allow_list) == (
        False,
        "10.0.0.0/8,192.168.1.0/24",
    )
    sandbox.update_network_settings(network_block_all=True)
    fresh = client.get(sandbox.id)
    assert (fresh.network_block_all, fresh.network_allow_list) == (True, None)
    with pytest.raises(DaytonaBadRequestError, match="Missing CIDR prefix"):
        sandbox.update_network_settings(network_allow_list="10.0.0.1")
    with pytest.raises(DaytonaBadRequestError, match="valid domain name"):
        sandbox.update_network_settings(domain_allow_list="not a domain")


def test_resize_follows_the_api_rules(client: Daytona, sandbox: Sandbox) -> None:
    sandbox.resize(Resources(cpu=2, memory=2))
    assert (sandbox.cpu, sandbox.memory) == (2, 2)
    with pytest.raises(DaytonaBadRequestError, match="decrease the number of CPU"):
        sandbox.resize(Resources(cpu=1))
    with pytest.raises(DaytonaBadRequestError, match="stopped sandbox"):
        sandbox.resize(Resources(disk=10))
    sandbox.stop()
    sandbox.resize(Resources(cpu=1, disk=10))
    assert (client.get(sandbox.id).cpu, client.get(sandbox.id).disk) == (1, 10)
    with pytest.raises(DaytonaBadRequestError, match="cannot be decreased"):
        sandbox.resize(Resources(disk=5))


@pytest.mark.quick
def test_intervals_as_the_api_stores_them(client: Daytona, sandbox: Sandbox) -> None:
    sandbox.set_auto_archive_interval(0)
    sandbox.set_autostop_interval(0)
    sandbox.set_auto_delete_interval(30)
    fresh = client.get(sandbox.id)
    assert fresh.auto_archive_interval == 43200  # 0 means the maximum
    assert (fresh.auto_stop_interval, fresh.auto_delete_interval) == (0, 30)
    sandbox.set_auto_archive_interval(10**6)
    assert client.get(sandbox.id).auto_archive_interval == 43200


def test_list_filters_and_order(client: Daytona) -> None:
    small = client.create(CreateSandboxFromSnapshotParams(name="Alpha-1"))
    client.create(CreateSandboxFromSnapshotParams(name="alpha-2", public=True))
    client.create(CreateSandboxFromSnapshotParams(name="beta"))
    small.refresh_activity()  # most recent activity: listed first by default
    assert next(s.name for s in client.list()) == "Alpha-1"
    names = [s.name for s in client.list(ListSandboxesQuery(name="ALPHA"))]
    assert sorted(names) == ["Alpha-1", "alpha-2"]
    assert [s.id for s in client.list(ListSandboxesQuery(id=small.id[:6].upper()))] == [small.id]
    assert [s.name for s in client.list(ListSandboxesQuery(is_public=True))] == ["alpha-2"]
    by_name = ListSandboxesQuery(sort=SandboxListSortField.NAME, order=SandboxListSortDirection.ASC)
    assert [s.name for s in client.list(by_name)] == ["Alpha-1", "alpha-2", "beta"]
    assert [s.name for s in client.list(ListSandboxesQuery(min_cpu=2))] == []
    assert len(list(client.list(ListSandboxesQuery(max_cpu=1, max_memory_gib=1)))) == 3
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert list(client.list(ListSandboxesQuery(created_at_after=future))) == []
    assert len(list(client.list(ListSandboxesQuery(last_activity_before=future)))) == 3
    paged = ListSandboxesQuery(limit=1, sort=SandboxListSortField.NAME)
    assert [s.name for s in client.list(paged)] == ["beta", "alpha-2", "Alpha-1"]


def test_list_items_omit_what_the_api_omits(client: Daytona, sandbox: Sandbox) -> None:
    (listed,) = client.list()
    assert listed.id == sandbox.id and listed.env is None
    listed.refresh_data()
    assert listed.env == {}


def test_unknown_routes_answer_daytona_404(server: LocalServer, client: Daytona) -> None:
    for method, path in (("GET", "/no/such/route"), ("DELETE", "/sandbox"), ("PATCH", "/volumes")):
        status, body = http_json(server, method, path, server.token)
        assert status == 404, (method, path)
        assert body["statusCode"] == 404 and body["source"] == "DAYTONA_API"
    with pytest.raises(volume_error(DaytonaNotFoundError)):
        client.volume.get("missing")
    with pytest.raises(DaytonaNotFoundError):
        client.snapshot.get("missing")


def test_creates_from_threads_answer_started(client: Daytona) -> None:
    """100 creates from 4 threads: each answer is started and stays so (events agree)."""
    states: list[object] = []
    made: list[Sandbox] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            for _ in range(25):
                sb = client.create(CreateSandboxFromSnapshotParams())
                with lock:
                    states.append(sb.state)
                    made.append(sb)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    assert len(states) == 100
    assert [s for s in states if s != SandboxState.STARTED] == []
    # Events handled after the answers (the SDK handles each in a thread of its own) agree.
    assert client.get(made[-1].id).state == SandboxState.STARTED  # one more round trip
    assert [sb.id for sb in made if sb.state != SandboxState.STARTED] == []
