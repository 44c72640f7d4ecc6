"""``GET /sandbox``: Daytona's filters (prefixes, ranges, dates), sort order and cursor pages."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timezone
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from ..context import LOCAL
from ..errors import ApiError
from ..state.records import SandboxRecord, State, parse_iso

_DEFAULT_PAGE = 100
_MAX_PAGE = 200

#: Sort fields the API offers, and how each orders a record.
SORT_KEYS: dict[str, Callable[[SandboxRecord], Any]] = {
    "name": lambda r: r.name,
    "cpu": lambda r: r.cpu,
    "memoryGib": lambda r: r.memory,
    "diskGib": lambda r: r.disk,
    "lastActivityAt": lambda r: r.last_activity_ts,
    "createdAt": lambda r: r.created_at,
}
_RANGES: dict[str, Callable[[SandboxRecord], int]] = {
    "Cpu": lambda r: r.cpu,
    "MemoryGiB": lambda r: r.memory,
    "DiskGiB": lambda r: r.disk,
    "Gpu": lambda r: r.gpu,
}
#: Fields a list item does not carry (the SDK says: call refresh_data() for them).
_NOT_LISTED = ("env", "volumes", "buildInfo", "kvm")


def _labels(query: MultiMapping[str]) -> dict[str, Any]:
    if not query.get("labels"):
        return {}
    try:
        labels = json.loads(query["labels"])
    except json.JSONDecodeError:
        raise ApiError(400, "Invalid labels JSON format") from None
    if not isinstance(labels, dict):
        raise ApiError(400, "Invalid labels JSON format")
    return labels


def _int(query: MultiMapping[str], name: str, minimum: int) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer number") from None
    if value < minimum:
        raise ApiError(400, f"{name} must not be less than {minimum}")
    return value


def _bool(query: MultiMapping[str], name: str) -> bool | None:
    raw = query.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise ApiError(400, f"{name} must be a boolean value")
    return raw.lower() == "true"


def query_time(query: MultiMapping[str], name: str) -> float | None:
    """Query parameter `name` as an ISO 8601 instant (POSIX seconds), None when absent."""
    raw = query.get(name)
    if not raw:
        return None
    try:
        moment = parse_iso(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name} must be a valid ISO 8601 date string") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _ts(iso: str) -> float:
    return parse_iso(iso.replace("Z", "+00:00")).timestamp()


def matcher(query: MultiMapping[str], minute: float) -> Callable[[SandboxRecord], bool]:
    """The filter a list query asks for, checked before anything is read."""
    labels = _labels(query)
    states = set(query.getall("states", []))
    unknown = states - {s.value for s in State}
    if unknown:
        raise ApiError(400, f"unknown states: {', '.join(sorted(unknown))}")
    id_prefix = query.get("id", "").lower()
    name_prefix = query.get("name", "").lower()
    snapshots = set(query.getall("snapshots", []))
    regions = set(query.getall("regionIds", []))
    ranges = [
        (getter, _int(query, f"min{key}", 1), _int(query, f"max{key}", 1))
        for key, getter in _RANGES.items()
    ]
    public, recoverable = _bool(query, "isPublic"), _bool(query, "isRecoverable")
    times: list[tuple[Callable[[SandboxRecord], float | None], float | None, float | None]] = [
        (
            lambda r: _ts(r.created_at),
            query_time(query, "createdAtAfter"),
            query_time(query, "createdAtBefore"),
        ),
        (
            lambda r: r.last_activity_ts,
            query_time(query, "lastEventAfter"),
            query_time(query, "lastEventBefore"),
        ),
        (
            lambda r: r.destroy_at(minute),
            query_time(query, "autoDestroyAtAfter"),
            query_time(query, "autoDestroyAtBefore"),
        ),
    ]

    def matches(r: SandboxRecord) -> bool:
        if r.state is State.DESTROYED or (states and r.state.value not in states):
            return False
        if not r.id.lower().startswith(id_prefix) or not r.name.lower().startswith(name_prefix):
            return False
        if any(r.labels.get(k) != v for k, v in labels.items()):
            return False
        if (snapshots and r.snapshot not in snapshots) or (regions and r.target not in regions):
            return False
        if public is not None and r.public != public:
            return False
        if recoverable is not None and bool(r.recoverable) != recoverable:
            return False
        for getter, low, high in ranges:
            if (low is not None and getter(r) < low) or (high is not None and getter(r) > high):
                return False
        for when, after, before in times:
            value = when(r)
            if (after is not None or before is not None) and value is None:
                return False
            if value is not None and (
                (after is not None and value < after) or (before is not None and value > before)
            ):
                return False
        return True

    return matches


async def list_sandboxes(request: web.Request) -> web.Response:
    """``GET /sandbox``: filtered, sorted (default ``lastActivityAt`` newest first), in pages."""
    query = request.query
    lifecycle = request.app[LOCAL].lifecycle
    matches = matcher(query, lifecycle.minute)
    sort = query.get("sort", "lastActivityAt")
    order = query.get("order", "desc")
    if sort not in SORT_KEYS:
        raise ApiError(400, f"sort must be one of the following values: {', '.join(SORT_KEYS)}")
    if order not in ("asc", "desc"):
        raise ApiError(400, "order must be one of the following values: asc, desc")
    try:
        limit = min(int(query.get("limit", _DEFAULT_PAGE)), _MAX_PAGE)
        offset = int(query.get("cursor") or 0)
    except ValueError:
        raise ApiError(400, "limit and cursor must be integers") from None
    if limit < 1 or offset < 0:
        raise ApiError(400, "limit must be positive and cursor non-negative")
    key = SORT_KEYS[sort]
    found = sorted(
        (r for r in lifecycle.store if matches(r)),
        key=lambda r: (key(r), r.id),
        reverse=order == "desc",
    )
    page = found[offset : offset + limit]
    more = offset + limit < len(found)
    items = []
    for record in page:
        item = lifecycle.dto(record)
        for name in _NOT_LISTED:
            item.pop(name, None)
        items.append(item)
    return web.json_response({"items": items, "nextCursor": str(offset + limit) if more else None})
