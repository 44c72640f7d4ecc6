"""Frames between the server and a sandbox's agent over one stream socket.

A frame is a 4-byte big-endian length, a JSON header of that length, then ``header["len"]``
bytes of payload (none when absent). Requests carry ``id``, ``op`` and ``params``; answers
carry the request's ``id``, ``ok``, ``data`` or ``error`` and ``more`` (more frames follow).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

_LEN = struct.Struct(">I")
#: Largest header accepted; payloads carry the bulk.
MAX_HEADER = 64 << 20

Header = dict[str, Any]


def encode(header: Header, payload: bytes = b"") -> bytes:
    """One frame: header (with ``len`` set from `payload`) and payload."""
    if payload:
        header = {**header, "len": len(payload)}
    raw = json.dumps(header, separators=(",", ":")).encode()
    return _LEN.pack(len(raw)) + raw + payload


def _header(raw: bytes) -> Header:
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError("frame header is not a JSON object")
    return header


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> tuple[Header, bytes] | None:
    """The next frame from a blocking socket, or None at end of stream."""
    raw_len = _recv_exact(sock, _LEN.size)
    if raw_len is None:
        return None
    (size,) = _LEN.unpack(raw_len)
    if size > MAX_HEADER:
        raise ValueError(f"frame header of {size} bytes")
    raw = _recv_exact(sock, size)
    if raw is None:
        return None
    header = _header(raw)
    payload = _recv_exact(sock, int(header.get("len", 0))) if header.get("len") else b""
    if payload is None:
        return None
    return header, payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[Header, bytes] | None:
    """The next frame from an asyncio stream, or None at end of stream."""
    try:
        (size,) = _LEN.unpack(await reader.readexactly(_LEN.size))
        if size > MAX_HEADER:
            raise ValueError(f"frame header of {size} bytes")
        header = _header(await reader.readexactly(size))
        length = int(header.get("len", 0))
        payload = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError:
        return None
    return header, payload
