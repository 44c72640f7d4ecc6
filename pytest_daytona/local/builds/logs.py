"""Build logs that can be followed while a pull or build runs (``?follow=true``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web


class BuildLog:
    """The lines of one pull or build; followers get each new line until it is closed."""

    def __init__(self, lines: list[str] | None = None) -> None:
        #: Shared with the record that keeps the log (a snapshot's ``logs``).
        self.lines = lines if lines is not None else []
        self.closed = False
        self._changed = asyncio.Event()

    def append(self, line: str) -> None:
        """Add a line (from the server's event loop)."""
        self.lines.append(line)
        self._changed.set()

    def close(self) -> None:
        """No more lines: followers end."""
        self.closed = True
        self._changed.set()

    async def follow(self) -> AsyncIterator[str]:
        """Every line so far, then each new one, until the log is closed."""
        sent = 0
        while True:
            while sent < len(self.lines):
                yield self.lines[sent]
                sent += 1
            if self.closed:
                return
            self._changed.clear()
            if sent < len(self.lines) or self.closed:
                continue
            await self._changed.wait()


async def stream_log(
    request: web.Request, log: BuildLog | None, lines: list[str]
) -> web.StreamResponse:
    """A build log as plain text: all of it, or (``follow=true``) streamed until it closes."""
    if log is None or request.query.get("follow") != "true":
        return web.Response(text="".join(f"{line}\n" for line in (log.lines if log else lines)))
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    async for line in log.follow():
        await response.write(f"{line}\n".encode())
    await response.write_eof()
    return response
