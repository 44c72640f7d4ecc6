"""Connections to a sandbox that has a network of its own: this machine cannot reach its
ports, so its agent connects inside and hands the socket over (one per request)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

Dial = Callable[[], Awaitable[socket.socket]]


class DialConnector(aiohttp.BaseConnector):
    """An aiohttp connector whose every connection is a socket `dial` returns (it replaces
    the TCP connect of the default connector, as aiohttp's own UnixConnector does)."""

    def __init__(self, dial: Dial) -> None:
        super().__init__(force_close=True)
        self._dial = dial

    async def _create_connection(
        self, req: aiohttp.ClientRequest, traces: list[Any], timeout: aiohttp.ClientTimeout
    ) -> ResponseHandler:
        try:
            sock = await asyncio.wait_for(self._dial(), timeout.sock_connect)
        except (OSError, asyncio.TimeoutError) as exc:
            raise aiohttp.ClientConnectionError(str(exc)) from exc
        _, proto = await self._loop.create_connection(self._factory, sock=sock)
        return proto
