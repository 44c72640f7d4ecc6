"""TTL (destroyed whatever the state), late completion after a gateway fault, ``*`` latency.

All through the unmodified SDK over HTTP; time is shrunk with ``LocalServer(minute=...)`` and
waited on with bounded polls, never measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daytona import (
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaConfig,
    DaytonaConflictError,
    DaytonaError,
    DaytonaNotFoundError,
    DaytonaTimeoutError,
    DaytonaValidationError,
    Sandbox,
)
from daytona_api_client import SandboxState

from pytest_daytona.local import LocalServer
from tests.local.conftest import close_client, http_json, route_count

TTL_ROUTE = "POST /sandbox/{sandboxIdOrName}/ttl/{ttlMinutes}"


def _eventually(condition: Callable[[], bool], within: float = 15.0) -> bool:
    """Poll `condition` until it holds or `within` seconds pass (a bound, not a measurement)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _late_done(server: LocalServer, creates: int) -> bool:
    """Whether `creates` sandboxes were created and no late completion is pending."""
    stats = server.stats()
    return bool(stats["creates"] == creates and stats["late_pending"] == 0)


def _alive(server: LocalServer, sandbox_id: str) -> bool:
    return sandbox_id in server.stats()["states"]


@pytest.fixture
def fast_server(data_dir: Path) -> Iterator[LocalServer]:
    """A server whose Daytona "minute" lasts 0.2 s, reaping every 0.02 s."""
    with LocalServer(data_dir, minute=0.2, reaper_tick=0.02) as srv:
        yield srv


@pytest.fixture
def fast_client(fast_server: LocalServer) -> Iterator[Daytona]:
    daytona = Daytona(DaytonaConfig(api_key=fast_server.token, api_url=fast_server.api_url))
    yield daytona
    close_client(daytona)


# -- TTL ----------------------------------------------------------------------------------


def test_ttl_destroys_sandboxes_whatever_their_state(
    fast_server: LocalServer, fast_client: Daytona
) -> None:
    started = fast_client.create(
        CreateSandboxFromSnapshotParams(ttl_minutes=2, auto_stop_interval=0)
    )
    assert started.auto_destroy_at is not None
    stopped = fast_client.create()
    stopped.stop()
    archived = fast_client.create()
    archived.stop()
    archived.archive()
    errored = fast_client.create()
    fast_server.force_error(errored.id, recoverable=False)
    for sandbox in (stopped, archived, errored):
        sandbox.set_ttl(1)  # set after the state change, so the TTL cannot win the race
    keep = fast_client.create(CreateSandboxFromSnapshotParams(auto_stop_interval=0))
    assert keep.auto_destroy_at is None  # no TTL unless asked for

    doomed = [started.id, stopped.id, archived.id, errored.id]
    assert _eventually(lambda: not any(_alive(fast_server, i) for i in doomed))
    assert fast_server.stats()["states"] == {keep.id: "started"}
    with pytest.raises(DaytonaNotFoundError):
        fast_client.get(archived.id)
    assert route_count(fast_server, TTL_ROUTE) == 3


def test_set_ttl_reanchors_from_now_and_zero_disables(
    fast_server: LocalServer, fast_client: Daytona
) -> None:
    kept = fast_client.create(CreateSandboxFromSnapshotParams(ttl_minutes=5, auto_stop_interval=0))
    clock = fast_client.create(CreateSandboxFromSnapshotParams(ttl_minutes=5))  # created later
    # Re-anchoring keeps `kept` alive past the moment `clock`, created after it with the same
    # TTL, is destroyed; counted from creation, `kept` would have gone first.
    deadline = time.monotonic() + 15  # a bound on the loop, not a measurement
    while _alive(fast_server, clock.id):
        kept.set_ttl(5)
        assert _alive(fast_server, kept.id)
        assert time.monotonic() < deadline, "the clock sandbox never expired"
    assert _alive(fast_server, kept.id)

    kept.set_ttl(0)
    kept.refresh_data()
    assert kept.auto_destroy_at is None
    clock = fast_client.create(CreateSandboxFromSnapshotParams(ttl_minutes=1))
    assert _eventually(lambda: not _alive(fast_server, clock.id))
    assert fast_server.stats()["states"] == {kept.id: "started"}  # 0 = lives on


def test_negative_or_malformed_ttl_is_rejected(server: LocalServer, client: Daytona) -> None:
    sb = client.create()
    with pytest.raises(DaytonaValidationError):
        sb.set_ttl(-1)
    with pytest.raises(DaytonaValidationError):
        client.create(CreateSandboxFromSnapshotParams(ttl_minutes=-1))
    # The server rejects what the SDK would not send, in Daytona's error shape.
    for value in ("-1", "1.5", "soon"):
        status, body = http_json(server, "POST", f"/sandbox/{sb.id}/ttl/{value}", server.token)
        assert status == 400, value
        assert (body["statusCode"], body["error"], body["source"]) == (
            400,
            "Bad Request",
            "DAYTONA_API",
        )
        assert "non-negative integer" in body["message"]
    status, body = http_json(server, "POST", "/sandbox", server.token, {"ttlMinutes": -1})
    assert status == 400 and "ttlMinutes" in body["message"]
    status, body = http_json(server, "POST", "/sandbox/nope/ttl/5", server.token)
    assert status == 404
    sb.refresh_data()
    assert sb.auto_destroy_at is None  # nothing was set
    assert server.stats()["creates"] == 1


def test_ttl_survives_a_restart(data_dir: Path) -> None:
    def client(srv: LocalServer) -> Daytona:
        return Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))

    with LocalServer(data_dir, token="t") as first:
        daytona = client(first)
        try:
            doomed = daytona.create(CreateSandboxFromSnapshotParams(name="doomed", ttl_minutes=1))
            survivor = daytona.create(
                CreateSandboxFromSnapshotParams(name="survivor", ttl_minutes=100_000)
            )
            survivor.stop()
        finally:
            close_client(daytona)
    with LocalServer(data_dir, token="t") as second:  # same clock: same deadlines
        daytona = client(second)
        try:
            assert daytona.get("doomed").auto_destroy_at == doomed.auto_destroy_at
            again = daytona.get("survivor")
            assert again.auto_destroy_at == survivor.auto_destroy_at
            assert again.state == SandboxState.STOPPED
        finally:
            close_client(daytona)
    # With a minute shrunk to 10 ms, the TTL persisted for "doomed" ran out long ago.
    with LocalServer(data_dir, token="t", minute=0.01, reaper_tick=0.02) as third:
        assert _eventually(lambda: not _alive(third, doomed.id))
        assert third.stats()["states"] == {survivor.id: "stopped"}


# -- late completion after a fault -------------------------------------------------------


@pytest.mark.quick
def test_create_that_timed_out_at_the_gateway_still_happens(
    server: LocalServer, client: Daytona
) -> None:
    server.inject_fault("POST /sandbox", 504, complete_after=0.1)
    params = CreateSandboxFromSnapshotParams(name="late", labels={"suite": "late"})
    with pytest.raises(DaytonaTimeoutError):
        client.create(params)
    assert _eventually(lambda: _late_done(server, creates=1))
    late = client.get("late")
    assert late.labels["suite"] == "late"
    # The server's word, not the SDK object's (its state follows events that may still arrive).
    assert server.stats()["states"][late.id] == "started"
    with pytest.raises(DaytonaConflictError):
        client.create(params)  # a blind retry collides with the late one
    assert route_count(server, "POST /sandbox") == 2  # each call counted once


def test_late_completion_of_toolbox_calls_with_bodies(
    server: LocalServer, sandbox: Sandbox
) -> None:
    sb = sandbox
    server.inject_fault("POST /process/execute", 504, complete_after=0)
    server.inject_fault("POST /files/bulk-upload", 504, complete_after=0)
    with pytest.raises(DaytonaError):
        sb.process.exec("touch ran-late")
    with pytest.raises(DaytonaError):
        sb.fs.upload_file(b"uploaded late", "late.txt")
    assert _eventually(lambda: server.stats()["late_pending"] == 0)
    names = {f.name for f in sb.fs.list_files(".")}
    assert {"ran-late", "late.txt"} <= names
    assert sb.fs.download_file("late.txt") == b"uploaded late"


def test_pending_late_completions_are_cancelled_on_stop(data_dir: Path) -> None:
    with LocalServer(data_dir, token="t") as srv:
        daytona = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        try:
            srv.inject_fault("POST /sandbox", 504, complete_after=120)
            with pytest.raises(DaytonaTimeoutError):
                daytona.create(CreateSandboxFromSnapshotParams(name="never"))
            assert srv.stats()["late_pending"] == 1
        finally:
            close_client(daytona)
    with LocalServer(data_dir, token="t") as again:
        assert again.stats()["live"] == 0  # cancelled, not carried out


def test_complete_after_over_http(server: LocalServer, client: Daytona) -> None:
    fault = {"route": "POST /sandbox", "status": 504, "complete_after": 0}
    status, body = http_json(server, "POST", "/_local/faults", server.token, fault)
    assert status == 200 and body["complete_after"] == 0
    status, body = http_json(server, "POST", "/sandbox", server.token, {"name": "raw"})
    assert (status, body["statusCode"]) == (504, 504)
    assert _eventually(lambda: _late_done(server, creates=1))
    assert client.get("raw").name == "raw"
    for bad in (-1, "soon"):
        status, _ = http_json(
            server, "POST", "/_local/faults", server.token, {**fault, "complete_after": bad}
        )
        assert status == 400, bad


# -- latency on every route --------------------------------------------------------------


def test_star_latency_delays_every_route_unless_it_has_its_own(
    server: LocalServer, client: Daytona, sandbox: Sandbox
) -> None:
    sb = sandbox
    server.set_latency("*", 60)
    server.set_latency("GET /sandbox/{sandboxIdOrName}", 0.01)  # a route's own rule wins
    assert client.get(sb.id, request_timeout=30).id == sb.id
    # Every other route waits a minute: a client that waits one second gives up.
    with pytest.raises(DaytonaError, match=r"(?i)timed out"):
        sb.set_ttl(5, request_timeout=1)
    with pytest.raises(DaytonaError, match=r"(?i)timed out"):
        sb.fs.create_folder("slow", "755", request_timeout=1)
    assert route_count(server, TTL_ROUTE) == 1
    assert route_count(server, "POST /files/folder") == 1

    status, _ = http_json(
        server, "POST", "/_local/latency", server.token, {"route": "*", "seconds": 0}
    )
    assert status == 200
    sb.set_ttl(5, request_timeout=1)
    sb.fs.create_folder("fast", "755", request_timeout=1)
    for seconds, expected in ((120, 200), (121, 400)):
        status, _ = http_json(
            server, "POST", "/_local/latency", server.token, {"route": "*", "seconds": seconds}
        )
        assert status == expected, seconds
