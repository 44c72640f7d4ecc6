"""A listener on a free loopback port for preview-link tests, run from the test on the host.

Sandboxes share the host's network, so a port bound here is what a process in the sandbox
listening on it would be. It echoes requests, streams in steps the test releases, redirects,
sets cookies and echoes websocket messages.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web


@dataclass
class Upstream:
    """The running listener: its port, and events the streaming routes wait on or set."""

    port: int = 0
    release_second_chunk: threading.Event = field(default_factory=threading.Event)
    first_upload_chunk: threading.Event = field(default_factory=threading.Event)
    loop: asyncio.AbstractEventLoop | None = None


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.raw_path,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": body.decode(errors="replace"),
        },
        headers={"X-Upstream": "yes"},
    )


def _routes(state: Upstream) -> web.Application:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first;")
        released = await asyncio.to_thread(state.release_second_chunk.wait, 10)
        await response.write(b"second" if released else b"never released")
        await response.write_eof()
        return response

    async def upload(request: web.Request) -> web.Response:
        first = await request.content.readany()
        state.first_upload_chunk.set()
        rest = await request.read()
        return web.Response(text=f"{len(first)}+{len(rest)}")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/echo?from=redirect")

    async def cookies(request: web.Request) -> web.Response:
        response = web.Response(text="two cookies")
        response.headers.add("Set-Cookie", "a=1; Path=/")
        response.headers.add("Set-Cookie", "b=2; Path=/")
        return response

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("echo.v1",))
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(f"echo:{message.data}")
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws

    app = web.Application()
    app.router.add_get("/stream", stream)
    app.router.add_post("/upload", upload)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/cookies", cookies)
    app.router.add_get("/ws", websocket)
    app.router.add_route("*", "/{tail:.*}", _echo)
    return app


@contextmanager
def running_upstream() -> Iterator[Upstream]:
    """Serve on a free loopback port (bound to port 0) in a background thread."""
    state = Upstream()
    ready = threading.Event()
    stop: asyncio.Future[None] | None = None

    async def serve() -> None:
        nonlocal stop
        runner = web.AppRunner(_routes(state), access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state.port = runner.addresses[0][1]
        state.loop = asyncio.get_running_loop()
        stop = state.loop.create_future()
        ready.set()
        await stop
        await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10), "upstream did not start"
    try:
        yield state
    finally:
        state.release_second_chunk.set()
        assert state.loop is not None and stop is not None
        state.loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
