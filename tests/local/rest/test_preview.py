"""Preview links through the real SDK: tokens, public sandboxes, signed URLs, the proxy itself.

Most tests run their listener on the host from the test (`preview_upstream`), on a port bound
to 0: sandboxes share the host's network, and a host listener can hold a stream open or echo a
websocket on cue. Two serve from inside the sandbox: one in the foreground of an exec, one in
the background (`&`), which outlives its exec since the per-sandbox agent."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import httpx
import pytest
from daytona import (
    AsyncDaytona,
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaConfig,
    DaytonaError,
    DaytonaNotFoundError,
    Sandbox,
)

from pytest_daytona.local import LocalServer
from pytest_daytona.local.rest.preview import TOKEN_HEADER, TOKEN_QUERY
from tests.local.conftest import http_json, route_count
from tests.local.preview_upstream import Upstream, running_upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with running_upstream() as state:
        yield state


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _echo(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def _is_proxy_401(response: httpx.Response) -> bool:
    body = response.json()
    return response.status_code == 401 and body["code"] == "UNAUTHORIZED" and "path" in body


def test_private_link_needs_its_token(
    server: LocalServer, sandbox: Sandbox, upstream: Upstream
) -> None:
    link = sandbox.get_preview_link(upstream.port)
    assert link.sandbox_id == sandbox.id
    origin = server.api_url.removesuffix("/api")
    assert link.url == f"{origin}/preview/{sandbox.id}/{upstream.port}"
    assert len(link.token) == 32

    assert _is_proxy_401(httpx.get(f"{link.url}/x"))
    assert _is_proxy_401(httpx.get(f"{link.url}/x", headers={TOKEN_HEADER: "wrong"}))
    seen = _echo(httpx.get(f"{link.url}/a/b%20c?q=1&q=2", headers={TOKEN_HEADER: link.token}))
    assert seen["path"] == "/a/b%20c?q=1&q=2"
    assert TOKEN_HEADER.lower() not in seen["headers"]
    assert seen["headers"]["host"] == f"localhost:{upstream.port}"
    assert _echo(httpx.get(link.url, headers={TOKEN_HEADER: link.token}))["path"] == "/"


def test_api_key_or_query_token_also_open_a_private_link(
    server: LocalServer, sandbox: Sandbox, upstream: Upstream
) -> None:
    link = sandbox.get_preview_link(upstream.port)
    by_key = _echo(httpx.get(link.url, headers={"Authorization": f"Bearer {server.token}"}))
    assert "authorization" not in by_key["headers"]  # the API key never reaches the sandbox
    by_query = _echo(httpx.get(f"{link.url}/p", params={TOKEN_QUERY: link.token, "keep": "1"}))
    assert by_query["path"] == "/p?keep=1"
    assert _is_proxy_401(httpx.get(link.url, params={TOKEN_QUERY: "wrong"}))


def test_public_sandbox_needs_no_token(client: Daytona, upstream: Upstream) -> None:
    sandbox = client.create(CreateSandboxFromSnapshotParams(public=True))
    assert sandbox.public is True
    url = sandbox.get_preview_link(upstream.port).url
    assert _echo(httpx.get(f"{url}/open"))["path"] == "/open"
    # Daytona's toolbox port (2280) needs credentials even on a public sandbox.
    assert _is_proxy_401(httpx.get(sandbox.get_preview_link(2280).url))


def test_signed_url_works_alone_until_expired(sandbox: Sandbox, upstream: Upstream) -> None:
    signed = sandbox.create_signed_preview_url(upstream.port, expires_in_seconds=3600)
    assert signed.port == upstream.port and signed.sandbox_id == sandbox.id
    assert signed.url.endswith(f"/preview/{signed.token}/{upstream.port}")
    assert _echo(httpx.get(f"{signed.url}/s"))["path"] == "/s"
    sandbox.expire_signed_preview_url(upstream.port, signed.token)
    assert _is_proxy_401(httpx.get(signed.url))

    other_port = sandbox.create_signed_preview_url(_free_port(), expires_in_seconds=3600)
    wrong = other_port.url.replace(f"/{other_port.port}", f"/{upstream.port}")
    assert _is_proxy_401(httpx.get(wrong))  # a signed token opens its own port only

    short = sandbox.create_signed_preview_url(upstream.port, expires_in_seconds=1)
    assert httpx.get(short.url).status_code == 200
    deadline = time.monotonic() + 15
    while httpx.get(short.url).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _is_proxy_401(httpx.get(short.url))


@pytest.mark.parametrize("seconds", [0, 24 * 60 * 60 + 1])
def test_signed_url_lifetime_is_bounded(sandbox: Sandbox, seconds: int) -> None:
    with pytest.raises(DaytonaError, match="between 1 second and 24 hours"):
        sandbox.create_signed_preview_url(3000, expires_in_seconds=seconds)


def test_methods_bodies_headers_redirects_and_cookies(sandbox: Sandbox, upstream: Upstream) -> None:
    link = sandbox.get_preview_link(upstream.port)
    auth = {TOKEN_HEADER: link.token, "X-Custom": "kept"}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        seen = _echo(
            httpx.request(method, f"{link.url}/m", headers=auth, content=b"body-" + method.encode())
        )
        assert (seen["method"], seen["body"]) == (method, f"body-{method}")
        assert seen["headers"]["x-custom"] == "kept"
        assert seen["headers"]["x-forwarded-host"].startswith("127.0.0.1:")
    head = httpx.head(f"{link.url}/h", headers=auth)
    assert head.status_code == 200 and head.headers["X-Upstream"] == "yes" and head.content == b""

    moved = httpx.get(f"{link.url}/redirect", headers=auth)
    assert moved.status_code == 302
    assert moved.headers["Location"] == f"/preview/{sandbox.id}/{upstream.port}/echo?from=redirect"

    cookies = httpx.get(f"{link.url}/cookies", headers=auth)
    assert cookies.headers.get_list("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]


def test_bodies_stream_both_ways(sandbox: Sandbox, upstream: Upstream) -> None:
    link = sandbox.get_preview_link(upstream.port)
    auth = {TOKEN_HEADER: link.token}
    with httpx.stream("GET", f"{link.url}/stream", headers=auth, timeout=20) as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"first;"  # arrives while the upstream still holds the rest
        upstream.release_second_chunk.set()
        assert b"".join(chunks) == b"second"

    def body() -> Iterator[bytes]:
        yield b"x" * 1000
        # Only a proxy that streams the request body lets the upstream see this chunk now.
        assert upstream.first_upload_chunk.wait(10), "the proxy held the request body back"
        yield b"y" * 500

    uploaded = httpx.post(f"{link.url}/upload", headers=auth, content=body(), timeout=20)
    assert uploaded.status_code == 200 and uploaded.text == "1000+500"


def test_websocket_through_the_link(sandbox: Sandbox, upstream: Upstream) -> None:
    link = sandbox.get_preview_link(upstream.port)

    async def talk() -> tuple[str | None, str, bytes]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                f"{link.url.replace('http', 'ws', 1)}/ws",
                headers={TOKEN_HEADER: link.token},
                protocols=("echo.v1",),
            ) as ws,
        ):
            await ws.send_str("hi")
            text = await ws.receive_str(timeout=10)
            await ws.send_bytes(b"\x01\x02\x03")
            data = await ws.receive_bytes(timeout=10)
            return ws.protocol, text, data

    assert asyncio.run(talk()) == ("echo.v1", "echo:hi", b"\x03\x02\x01")


def test_host_form_of_the_link(server: LocalServer, sandbox: Sandbox, upstream: Upstream) -> None:
    link = sandbox.get_preview_link(upstream.port)
    origin = server.api_url.removesuffix("/api")
    host = {"Host": f"{upstream.port}-{sandbox.id}.preview.localhost"}
    assert _is_proxy_401(httpx.get(f"{origin}/x", headers=host))
    seen = _echo(httpx.get(f"{origin}/x?y=1", headers={**host, TOKEN_HEADER: link.token}))
    assert seen["path"] == "/x?y=1"
    signed = sandbox.create_signed_preview_url(upstream.port, expires_in_seconds=60)
    by_token = {"Host": f"{upstream.port}-{signed.token}.preview.localhost"}
    assert _echo(httpx.get(f"{origin}/z", headers=by_token))["path"] == "/z"


def test_errors_answer_like_daytonas_proxy(
    server: LocalServer, client: Daytona, sandbox: Sandbox, upstream: Upstream
) -> None:
    link = sandbox.get_preview_link(upstream.port)
    auth = {TOKEN_HEADER: link.token}
    unknown = link.url.replace(sandbox.id, "0" * 32)
    assert _is_proxy_401(httpx.get(unknown, headers=auth))  # no telling unknown from private

    dead = sandbox.get_preview_link(_free_port())
    refused = httpx.get(dead.url, headers={TOKEN_HEADER: dead.token})
    assert (refused.status_code, refused.content) == (502, b"")

    sandbox.stop()
    stopped = httpx.get(link.url, headers=auth)
    assert stopped.status_code == 400
    assert "Is the Sandbox started?" in stopped.json()["message"]

    sandbox.start()
    assert _is_proxy_401(httpx.get(link.url, headers=auth))  # a start issues a new token
    fresh = sandbox.get_preview_link(upstream.port)
    assert fresh.token != link.token
    assert httpx.get(fresh.url, headers={TOKEN_HEADER: fresh.token}).status_code == 200

    client.delete(sandbox)
    assert _is_proxy_401(httpx.get(fresh.url, headers={TOKEN_HEADER: fresh.token}))


@pytest.mark.quick
def test_link_calls_validate_and_are_counted(
    server: LocalServer, client: Daytona, sandbox: Sandbox
) -> None:
    for port in (0, 65536):
        with pytest.raises(DaytonaError, match="Invalid port"):
            sandbox.get_preview_link(port)
    by_name = client.get(sandbox.name).get_preview_link(8080)
    assert by_name.sandbox_id == sandbox.id and f"/{sandbox.id}/" in by_name.url
    status, body = http_json(server, "GET", "/sandbox/nope/ports/80/preview-url", server.token)
    assert (status, body["statusCode"]) == (404, 404)
    with pytest.raises(DaytonaNotFoundError):
        client.get("nope").get_preview_link(80)
    assert http_json(server, "GET", f"/sandbox/{sandbox.id}/ports/80/preview-url", None)[0] == 401
    assert route_count(server, "GET /sandbox/{sandboxIdOrName}/ports/{port}/preview-url") == 4


def test_async_sdk_links(server: LocalServer, upstream: Upstream) -> None:
    async def scenario() -> tuple[int, int, int]:
        config = DaytonaConfig(api_key=server.token, api_url=server.api_url)
        async with AsyncDaytona(config) as daytona:
            sandbox = await daytona.create()
            link = await sandbox.get_preview_link(upstream.port)
            signed = await sandbox.create_signed_preview_url(upstream.port, expires_in_seconds=60)
            async with httpx.AsyncClient() as http:
                private = await http.get(link.url, headers={TOKEN_HEADER: link.token})
                before = await http.get(signed.url)
                await sandbox.expire_signed_preview_url(upstream.port, signed.token)
                after = await http.get(signed.url)
            return private.status_code, before.status_code, after.status_code

    assert asyncio.run(scenario()) == (200, 200, 401)


ONE_SHOT_SERVER = """\
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.getcwd().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", {port}), H).handle_request()
"""


def test_link_reaches_a_server_inside_the_sandbox(iso_sandbox: Sandbox) -> None:
    """A server started by `process.exec` (in the foreground: it answers one request)."""
    port = _free_port()
    iso_sandbox.fs.upload_file(ONE_SHOT_SERVER.format(port=port).encode(), "one_shot.py")
    link = iso_sandbox.get_preview_link(port)
    with ThreadPoolExecutor(1) as pool:
        served = pool.submit(iso_sandbox.process.exec, "python3 one_shot.py", timeout=30)
        deadline = time.monotonic() + 30
        response = httpx.get(link.url, headers={TOKEN_HEADER: link.token})
        while response.status_code == 502 and time.monotonic() < deadline and not served.done():
            time.sleep(0.1)
            response = httpx.get(link.url, headers={TOKEN_HEADER: link.token})
        assert response.status_code == 200, response.text
        assert response.text == iso_sandbox.get_work_dir()
        assert served.result(timeout=30).exit_code == 0


def test_link_reaches_a_background_server_started_with_exec(iso_sandbox: Sandbox) -> None:
    """`python3 -m http.server ... &` outlives its exec, and the sandbox's stop ends it."""
    port = _free_port()
    iso_sandbox.fs.upload_file(b"served from the sandbox", "hello.txt")
    started = iso_sandbox.process.exec(
        f"python3 -m http.server {port} --bind 127.0.0.1 > server.log 2>&1 &"
    )
    assert started.exit_code == 0
    link = iso_sandbox.get_preview_link(port)
    url, auth = f"{link.url}/hello.txt", {TOKEN_HEADER: link.token}
    deadline = time.monotonic() + 30
    response = httpx.get(url, headers=auth)
    while response.status_code == 502 and time.monotonic() < deadline:
        time.sleep(0.1)
        response = httpx.get(url, headers=auth)
    assert (response.status_code, response.text) == (200, "served from the sandbox")
    iso_sandbox.stop()
    assert httpx.get(url, headers=auth).status_code == 400
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/hello.txt")  # the server died with the sandbox
