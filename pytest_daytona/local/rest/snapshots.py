"""Daytona REST API handlers: snapshots and volumes."""

from __future__ import annotations

import asyncio
import math

from aiohttp import web

from ..builds.builder import BuildFailed
from ..builds.logs import BuildLog, stream_log
from ..context import LOCAL, parse_body
from ..errors import ApiError
from ..lifecycle import Lifecycle
from ..state.snapshots import CreateSnapshotBody, SnapshotRecord, SnapshotState
from ..state.volumes import VolumeRecord, VolumeState

_MAX_SNAPSHOT_PAGE = 200


def _lifecycle(request: web.Request) -> Lifecycle:
    return request.app[LOCAL].lifecycle


async def _prepare(lifecycle: Lifecycle, record: SnapshotRecord, log: BuildLog) -> None:
    """pending -> pulling or building -> active (or error / build_failed), the transition
    delay before each step; the pull or build runs in the pulling/building state."""
    builder = lifecycle.builder
    working = SnapshotState.BUILDING if record.build else SnapshotState.PULLING
    snapshots = lifecycle.snapshots
    try:
        await asyncio.sleep(lifecycle.transition_delay)
        if snapshots.table.get(record.id) is not record:
            return  # deleted meanwhile
        record.set_state(working)
        snapshots.save(record)
        if builder is None:
            raise BuildFailed("this local server has no image store")
        log.append(f"Creating snapshot {record.name}")
        if record.build is not None:
            hashes = record.build.context_hashes or []
            image = await builder.build(record.build.dockerfile_content or "", hashes, log.append)
        else:
            image = await builder.pull(record.image_name or "", log.append)
        await asyncio.sleep(lifecycle.transition_delay)
    except BuildFailed as exc:
        log.append(f"Failed: {exc}")
        if snapshots.table.get(record.id) is record:
            record.error_reason = str(exc)
            failed = SnapshotState.BUILD_FAILED if record.build else SnapshotState.ERROR
            record.set_state(failed)
            snapshots.save(record)
        return
    finally:
        log.close()
    if snapshots.table.get(record.id) is not record:
        return
    record.image = image
    record.set_state(SnapshotState.ACTIVE)
    log.lines.append(f"Snapshot {record.name} is active")
    snapshots.save(record)


def _cached(lifecycle: Lifecycle, record: SnapshotRecord) -> bool:
    build = record.build
    if lifecycle.builder is None or build is None:
        return False
    text, hashes = build.dockerfile_content or "", build.context_hashes or []
    return lifecycle.builder.cached_build(text, hashes) is not None


async def create_snapshot(request: web.Request) -> web.Response:
    """``POST /snapshots``: pull an image or build a declarative one. Without a transition
    delay a pull is answered when it is done (active or failed); a build that is not cached
    is answered ``building`` at once, so the SDK streams its logs, as it does from Daytona."""
    body = await parse_body(request, CreateSnapshotBody)
    lifecycle = _lifecycle(request)
    record = lifecycle.snapshots.create(body)
    log = lifecycle.build_logs[record.id] = BuildLog(record.logs)
    if lifecycle.transition_delay:
        lifecycle.spawn(_prepare(lifecycle, record, log))
    elif record.build is not None and not _cached(lifecycle, record):
        record.set_state(SnapshotState.BUILDING)
        lifecycle.snapshots.save(record)
        lifecycle.spawn(_prepare(lifecycle, record, log))
    else:
        await _prepare(lifecycle, record, log)
    return web.json_response(record.to_api())


async def list_snapshots(request: web.Request) -> web.Response:
    """``GET /snapshots?page=&limit=``: the organization's snapshots, then general ones."""
    try:
        page = int(request.query.get("page", 1))
        limit = min(int(request.query.get("limit", 100)), _MAX_SNAPSHOT_PAGE)
    except ValueError:
        raise ApiError(400, "page and limit must be integers") from None
    if page < 1 or limit < 1:
        raise ApiError(400, "page and limit must not be less than 1")
    records = _lifecycle(request).snapshots.all()
    source = request.query.get("sourceSandboxId")
    if source:
        records = []  # local snapshots are never made from a sandbox
    items = records[(page - 1) * limit : page * limit]
    return web.json_response(
        {
            "items": [r.to_api() for r in items],
            "total": len(records),
            "page": page,
            "totalPages": math.ceil(len(records) / limit),
        }
    )


async def get_snapshot(request: web.Request) -> web.Response:
    """``GET /snapshots/{id}``: by id or name."""
    return web.json_response(_lifecycle(request).snapshots.get(request.match_info["id"]).to_api())


async def delete_snapshot(request: web.Request) -> web.Response:
    """``DELETE /snapshots/{id}`` (an id, not a name)."""
    snapshots = _lifecycle(request).snapshots
    snapshots.remove(snapshots.by_id(request.match_info["id"]))
    return web.Response(status=200)


async def activate_snapshot(request: web.Request) -> web.Response:
    """``POST /snapshots/{id}/activate``."""
    snapshots = _lifecycle(request).snapshots
    record = snapshots.by_id(request.match_info["id"])
    snapshots.activate(record)
    return web.json_response(record.to_api())


async def deactivate_snapshot(request: web.Request) -> web.Response:
    """``POST /snapshots/{id}/deactivate`` (204)."""
    snapshots = _lifecycle(request).snapshots
    record = snapshots.by_id(request.match_info["id"])
    record.set_state(SnapshotState.INACTIVE)
    snapshots.save(record)
    return web.Response(status=204)


async def build_logs_url(request: web.Request) -> web.Response:
    """``GET /snapshots/{id}/build-logs-url``."""
    record = _lifecycle(request).snapshots.get(request.match_info["id"])
    url = f"{request.app[LOCAL].api_url}/snapshots/{record.id}/build-logs"
    return web.json_response({"url": url})


async def build_logs(request: web.Request) -> web.StreamResponse:
    """``GET /snapshots/{id}/build-logs[?follow=true]``: the pull's or build's log; followed,
    each line as it comes until the snapshot is done."""
    lifecycle = _lifecycle(request)
    record = lifecycle.snapshots.get(request.match_info["id"])
    return await stream_log(request, lifecycle.build_logs.get(record.id), record.logs)


# -- volumes --------------------------------------------------------------------------------


async def _ready_later(lifecycle: Lifecycle, record: VolumeRecord) -> None:
    for state in (VolumeState.CREATING, VolumeState.READY):
        await asyncio.sleep(lifecycle.transition_delay)
        if lifecycle.volumes.table.get(record.id) is not record:
            return
        lifecycle.volumes.set_state(record, state)


async def create_volume(request: web.Request) -> web.Response:
    """``POST /volumes`` ``{"name"}``: ``pending_create``, then ``ready``."""
    body = await request.json() if request.body_exists else {}
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str):
        raise ApiError(400, "name must be a string")
    lifecycle = _lifecycle(request)
    record = lifecycle.volumes.create(name)
    if lifecycle.transition_delay:
        lifecycle.spawn(_ready_later(lifecycle, record))
    else:
        lifecycle.volumes.set_state(record, VolumeState.READY)
    return web.json_response(record.to_api())


async def list_volumes(request: web.Request) -> web.Response:
    """``GET /volumes``."""
    return web.json_response([v.to_api() for v in _lifecycle(request).volumes.table])


async def get_volume(request: web.Request) -> web.Response:
    """``GET /volumes/{volumeId}``."""
    volume = _lifecycle(request).volumes.by_id(request.match_info["volumeId"])
    return web.json_response(volume.to_api())


async def get_volume_by_name(request: web.Request) -> web.Response:
    """``GET /volumes/by-name/{name}``."""
    return web.json_response(
        _lifecycle(request).volumes.by_name(request.match_info["name"]).to_api()
    )


async def delete_volume(request: web.Request) -> web.Response:
    """``DELETE /volumes/{volumeId}``: refused while a live sandbox mounts it."""
    lifecycle = _lifecycle(request)
    volume = lifecycle.volumes.by_id(request.match_info["volumeId"])
    lifecycle.volumes.delete(volume, list(lifecycle.store))
    return web.Response(status=200)


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    """Register the snapshot and volume routes under `prefix` (``/api``)."""
    router.add_post(f"{prefix}/snapshots", create_snapshot)
    router.add_get(f"{prefix}/snapshots", list_snapshots)
    router.add_get(f"{prefix}/snapshots/{{id}}", get_snapshot)
    router.add_delete(f"{prefix}/snapshots/{{id}}", delete_snapshot)
    router.add_post(f"{prefix}/snapshots/{{id}}/activate", activate_snapshot)
    router.add_post(f"{prefix}/snapshots/{{id}}/deactivate", deactivate_snapshot)
    router.add_get(f"{prefix}/snapshots/{{id}}/build-logs-url", build_logs_url)
    router.add_get(f"{prefix}/snapshots/{{id}}/build-logs", build_logs)
    router.add_post(f"{prefix}/volumes", create_volume)
    router.add_get(f"{prefix}/volumes", list_volumes)
    router.add_get(f"{prefix}/volumes/by-name/{{name}}", get_volume_by_name)
    router.add_get(f"{prefix}/volumes/{{volumeId}}", get_volume)
    router.add_delete(f"{prefix}/volumes/{{volumeId}}", delete_volume)
