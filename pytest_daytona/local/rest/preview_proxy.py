"""Forwarding a preview request to a port on this machine: HTTP, streamed both ways, and
websockets. Answers as Daytona's proxy does: 502 with no body when nothing listens."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from ..state.records import iso_now
from .preview_dial import Dial, DialConnector

UPSTREAM_HOST = "127.0.0.1"
CONNECT_TIMEOUT = 10.0

#: Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
#: Set by the websocket client itself for the upstream handshake.
_WS_HANDSHAKE = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions"}
    | {"sec-websocket-protocol", "sec-websocket-accept"}
)
#: Headers aiohttp adds on its own; only what the caller sent goes upstream.
_NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")

if TYPE_CHECKING:
    # [bool]: before Python 3.11 aiohttp types `ws_connect` without its `decode_text` default.
    _WebSocket = web.WebSocketResponse[bool] | aiohttp.ClientWebSocketResponse[bool]


def proxy_error(request: web.Request, status: int, message: str, code: str) -> web.Response:
    """An error in the shape Daytona's proxy answers with (not the REST API's shape)."""
    body = {
        "statusCode": status,
        "message": message,
        "code": code,
        "timestamp": iso_now(),
        "path": request.path,
        "method": request.method,
    }
    return web.json_response(body, status=status)


def _forwarded(request: web.Request, headers: CIMultiDict[str], port: int) -> CIMultiDict[str]:
    named = {h.strip().lower() for h in request.headers.get("Connection", "").split(",")}
    out: CIMultiDict[str] = CIMultiDict(
        (k, v) for k, v in headers.items() if k.lower() not in _HOP_BY_HOP | named
    )
    out["Host"] = f"localhost:{port}"
    out["X-Forwarded-Host"] = request.host
    peer = request.remote or ""
    prior = out.get("X-Forwarded-For")
    out["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    return out


class Upstream:
    """One client session for all forwarded requests (made on first use, in the server loop)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = _session()
        return self._session

    async def close(self) -> None:
        """Close the session (on server shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @contextlib.asynccontextmanager
    async def _session_for(self, dial: Dial | None) -> AsyncIterator[aiohttp.ClientSession]:
        """The shared session, or one of its own for the connections `dial` makes."""
        if dial is None:
            yield self._client()
            return
        async with _session(DialConnector(dial)) as session:
            yield session

    async def forward(
        self,
        request: web.Request,
        port: int,
        path: str,
        query_string: str,
        headers: CIMultiDict[str],
        mount: str,
        dial: Dial | None = None,
    ) -> web.StreamResponse:
        """Send `request` to ``127.0.0.1:port`` + `path`, stream the answer back; through
        the connections `dial` makes when given (a sandbox with a network of its own)."""
        async with self._session_for(dial) as session:
            return await self._forward(session, request, port, path, query_string, headers, mount)

    async def _forward(
        self,
        session: aiohttp.ClientSession,
        request: web.Request,
        port: int,
        path: str,
        query_string: str,
        headers: CIMultiDict[str],
        mount: str,
    ) -> web.StreamResponse:
        url = URL.build(
            scheme="http",
            host=UPSTREAM_HOST,
            port=port,
            path=path,
            query_string=query_string,
            encoded=True,
        )
        out = _forwarded(request, headers, port)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(session, request, url, out)
        try:
            upstream = await session.request(
                request.method,
                url,
                headers=out,
                data=request.content if request.body_exists else None,
                allow_redirects=False,
                skip_auto_headers=_NO_AUTO_HEADERS,
            )
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
            return web.Response(status=502)
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    response.headers.add(name, value)
            location = response.headers.get("Location", "")
            if mount and location.startswith("/") and not location.startswith("//"):
                response.headers["Location"] = mount + location
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except aiohttp.ClientError:  # upstream broke off: so does the answer
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write_eof()
            return response

    async def _websocket(
        self,
        session: aiohttp.ClientSession,
        request: web.Request,
        url: URL,
        headers: CIMultiDict[str],
    ) -> web.StreamResponse:
        asked = request.headers.get("Sec-WebSocket-Protocol", "")
        protocols = [p.strip() for p in asked.split(",") if p.strip()]
        clean = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _WS_HANDSHAKE)
        try:
            upstream = await session.ws_connect(url, headers=clean, protocols=protocols)
        except aiohttp.WSServerHandshakeError as exc:
            return web.Response(status=exc.status)
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
            return web.Response(status=502)
        async with upstream:
            client = web.WebSocketResponse(
                protocols=[upstream.protocol] if upstream.protocol else ()
            )
            await client.prepare(request)
            await asyncio.gather(_pump(client, upstream), _pump(upstream, client))
            return client


def _session(connector: aiohttp.BaseConnector | None = None) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )


async def _pump(source: _WebSocket, sink: _WebSocket) -> None:
    """Copy messages from `source` to `sink` until `source` closes, then close `sink`."""
    message: Any
    async for message in source:
        if message.type is WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await sink.send_bytes(message.data)
    await sink.close(code=source.close_code or 1000)
