"""Daytona-shaped errors, fault and latency injection, counters, and bearer-token enforcement."""

from __future__ import annotations

import pytest
from daytona import (
    Daytona,
    DaytonaAuthenticationError,
    DaytonaConfig,
    DaytonaNotFoundError,
    DaytonaRateLimitError,
    DaytonaServiceUnavailableError,
    Sandbox,
)

from pytest_daytona.local import LocalServer
from tests.local.conftest import close_client, http_json, route_count


def test_rate_limit_maps_to_sdk_error_with_retry_after(
    server: LocalServer, client: Daytona
) -> None:
    server.inject_fault("POST /sandbox", 429, retry_after=7)
    with pytest.raises(DaytonaRateLimitError) as info:
        client.create()
    assert info.value.status_code == 429
    assert info.value.headers is not None and info.value.headers.get("Retry-After") == "7"
    assert client.create().id  # the fault was for one call only
    assert server.stats()["creates"] == 1


def test_fault_applies_to_the_next_n_calls_of_a_route(server: LocalServer, client: Daytona) -> None:
    sb = client.create()
    server.inject_fault("POST /process/execute", 503, count=2)
    for _ in range(2):
        with pytest.raises(DaytonaServiceUnavailableError):
            sb.process.exec("true")
    assert sb.process.exec("echo ok").result == "ok\n"
    assert route_count(server, "POST /process/execute") == 3


def test_faults_and_latency_overhttp_json(server: LocalServer, client: Daytona) -> None:
    status, _ = http_json(
        server, "POST", "/_local/faults", server.token, {"route": "GET /sandbox", "status": 500}
    )
    assert status == 200
    status, _ = http_json(
        server, "POST", "/_local/latency", server.token, {"route": "GET /sandbox", "seconds": 0.01}
    )
    assert status == 200
    status, body = http_json(server, "GET", "/sandbox", server.token)
    assert (status, body["statusCode"], body["source"]) == (500, 500, "DAYTONA_API")
    status, body = http_json(server, "GET", "/sandbox", server.token)
    assert status == 200 and body["items"] == []
    status, _ = http_json(
        server, "POST", "/_local/faults", server.token, {"route": "x", "status": 200}
    )
    assert status == 400  # a "fault" must be an error status


def test_stats_counts_requests_by_route(server: LocalServer, client: Daytona) -> None:
    sb = client.create()
    sb.process.exec("true")
    sb.process.exec("true")
    status, stats = http_json(server, "GET", "/_local/stats", server.token)
    assert status == 200
    assert stats["creates"] == 1 and stats["live"] == 1
    assert stats["by_route"]["POST /sandbox"] == 1
    assert stats["by_route"]["POST /process/execute"] == 2
    assert stats["requests"] == sum(stats["by_route"].values())
    assert not any(route.startswith(("GET /_local", "POST /_local")) for route in stats["by_route"])


def test_forced_error_overhttp_json(server: LocalServer, client: Daytona) -> None:
    sb = client.create()
    status, body = http_json(
        server,
        "POST",
        f"/_local/sandbox/{sb.id}/error",
        server.token,
        {"recoverable": False, "reason": "boom"},
    )
    assert status == 200 and body["state"] == "error" and body["errorReason"] == "boom"


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_wrong_or_missing_token_gets_401_and_nothing_runs(
    server: LocalServer, client: Daytona, token: str | None
) -> None:
    sb = client.create()
    before = server.stats()
    cases = [
        ("POST", "/sandbox", {}),
        ("GET", "/sandbox", None),
        ("DELETE", f"/sandbox/{sb.id}", None),
        ("POST", f"/toolbox/{sb.id}/process/execute", {"command": "touch pwned"}),
        ("GET", "/_local/stats", None),
        ("POST", "/_local/faults", {"route": "POST /sandbox", "status": 500}),
    ]
    for method, path, body in cases:
        status, answer = http_json(server, method, path, token, body)
        assert status == 401, path
        assert answer["statusCode"] == 401
    after = server.stats()
    assert (after["creates"], after["live"], after["requests"]) == (
        before["creates"],
        before["live"],
        before["requests"],
    )
    assert sb.fs.list_files(".") == []  # the execute never ran


@pytest.mark.quick
def test_sdk_with_wrong_key_raises_authentication_error(server: LocalServer) -> None:
    daytona = Daytona(DaytonaConfig(api_key="not-the-token", api_url=server.api_url))
    try:
        with pytest.raises(DaytonaAuthenticationError):
            daytona.create()
    finally:
        close_client(daytona)
    assert server.stats()["creates"] == 0


def test_bad_create_body_is_a_400_naming_the_field(server: LocalServer) -> None:
    status, body = http_json(server, "POST", "/sandbox", server.token, {"cpu": -1})
    assert status == 400
    assert "cpu" in body["message"]
    assert server.stats()["creates"] == 0


def test_toolbox_errors_carry_what_the_sdks_error_model_requires(
    server: LocalServer, sandbox: Sandbox
) -> None:
    """The toolbox client validates error bodies (`ErrorResponse`: `path`, `timestamp`); a body
    without them would first fail that validation inside the SDK."""
    status, body = http_json(
        server, "DELETE", f"/toolbox/{sandbox.id}/files?path=nothing-here", server.token
    )
    assert status == 404
    assert body["path"] == f"/api/toolbox/{sandbox.id}/files"
    assert body["method"] == "DELETE" and body["timestamp"].endswith("Z")
    with pytest.raises(DaytonaNotFoundError) as info:
        sandbox.fs.delete_file("nothing-here")
    chained, seen = info.value.__context__, []
    while chained is not None:
        seen.append(type(chained).__name__)
        chained = chained.__context__
    assert "ValidationError" not in seen
