"""Sandbox operations beyond start/stop: fork, resize, public, activity, network, env."""

from __future__ import annotations

import ipaddress
import re

from aiohttp import web
from pydantic import Field

from ..builds.logs import stream_log
from ..context import LOCAL, parse_body
from ..errors import ApiError
from ..sandboxes.confinement import Network
from ..state.records import SandboxRecord, _Camel, iso_now

SANDBOX = "/sandbox/{sandboxIdOrName}"
_DOMAIN = re.compile(r"^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,}$")


class ForkBody(_Camel):
    """``POST /sandbox/{id}/fork`` body."""

    name: str | None = None


class ResizeBody(_Camel):
    """``POST /sandbox/{id}/resize`` body."""

    cpu: int | None = Field(default=None, ge=1)
    memory: int | None = Field(default=None, ge=1)
    disk: int | None = Field(default=None, ge=1)


class NetworkBody(_Camel):
    """``POST /sandbox/{id}/network-settings`` body."""

    network_block_all: bool | None = None
    network_allow_list: str | None = None
    domain_allow_list: str | None = None


def _sandbox(request: web.Request, key: str = "sandboxIdOrName") -> SandboxRecord:
    return request.app[LOCAL].lifecycle.lookup(request.match_info[key])


def _answer(request: web.Request, record: SandboxRecord) -> web.Response:
    return web.json_response(request.app[LOCAL].lifecycle.dto(record))


def _save(request: web.Request, record: SandboxRecord) -> web.Response:
    record.updated_at = iso_now()
    request.app[LOCAL].lifecycle.store.save(record)
    return _answer(request, record)


async def fork_sandbox(request: web.Request) -> web.Response:
    """``POST /sandbox/{sandboxIdOrName}/fork``: a started copy with the same files."""
    body = await parse_body(request, ForkBody)
    record = await request.app[LOCAL].lifecycle.fork(_sandbox(request), body.name)
    return _answer(request, record)


async def resize_sandbox(request: web.Request) -> web.Response:
    """``POST /sandbox/{sandboxIdOrName}/resize``: record new cpu, memory and disk."""
    body = await parse_body(request, ResizeBody)
    lifecycle = request.app[LOCAL].lifecycle
    record = await lifecycle.resize(_sandbox(request), body.cpu, body.memory, body.disk)
    return _answer(request, record)


async def set_public(request: web.Request) -> web.Response:
    """``POST /sandbox/{sandboxIdOrName}/public/{isPublic}``."""
    raw = request.match_info["isPublic"].lower()
    if raw not in ("true", "false"):
        raise ApiError(400, "Validation failed (boolean string is expected)")
    record = _sandbox(request)
    record.public = raw == "true"
    return _save(request, record)


async def update_last_activity(request: web.Request) -> web.Response:
    """``POST /sandbox/{sandboxId}/last-activity``: reset the auto-stop clock (201, no body)."""
    record = _sandbox(request, "sandboxId")
    record.touch()
    request.app[LOCAL].lifecycle.store.save(record)
    return web.Response(status=201)


def _check_networks(value: str) -> None:
    networks = [n.strip() for n in value.split(",")]
    for network in filter(None, networks):
        address, _, prefix = network.partition("/")
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise ApiError(
                400,
                f'Invalid IP address: "{address}" in network "{network}". '
                "Must be a valid IPv4 address",
            ) from None
        if not prefix:
            raise ApiError(
                400,
                f'Invalid network format: "{network}". Missing CIDR prefix length (e.g., /24)',
            )
        if not prefix.isdigit() or not 0 <= int(prefix) <= 32:
            raise ApiError(
                400, f"Invalid CIDR prefix length: {network}. Prefix must be between 0 and 32"
            )
    if len(networks) > 10:
        raise ApiError(400, "Network allow list cannot contain more than 10 networks")


def _check_domains(value: str) -> None:
    domains = [d.strip() for d in value.split(",")]
    for domain in filter(None, domains):
        if not _DOMAIN.match(domain):
            raise ApiError(400, f'Invalid domain: "{domain}". Must be a valid domain name')
    if len(domains) > 10:
        raise ApiError(400, "Domain allow list cannot contain more than 10 domains")


async def update_network_settings(request: web.Request) -> web.Response:
    """``POST /sandbox/{sandboxIdOrName}/network-settings``: stored, and enforced from the
    sandbox's next start on. A started sandbox keeps the network namespace it started in, so
    a change of its network is refused while it runs (stop it, update, start it)."""
    body = await parse_body(request, NetworkBody)
    record = _sandbox(request)
    running = await request.app[LOCAL].agents.current(record.id)
    before = (record.network_block_all, record.network_allow_list)
    if body.domain_allow_list is not None:
        if body.domain_allow_list.strip():
            _check_domains(body.domain_allow_list)
        record.domain_allow_list = (
            body.domain_allow_list if body.domain_allow_list.strip() else None
        )
    if body.network_block_all is not None:
        record.network_block_all = body.network_block_all
        if body.network_block_all:
            record.network_allow_list = None
    if body.network_allow_list is not None:
        if body.network_allow_list.strip():
            _check_networks(body.network_allow_list)
            record.network_allow_list = body.network_allow_list
            record.network_block_all = False
        else:
            record.network_allow_list = None
    elif body.network_block_all is False:
        record.network_allow_list = None
    new = Network.of(record.network_block_all, record.network_allow_list)
    if running is not None and new != running.network:
        record.network_block_all, record.network_allow_list = before
        raise ApiError(
            409,
            f"sandbox {record.id} is started with {running.network.describe}; the local "
            f"backend cannot switch a running sandbox to {new.describe}: stop the sandbox, "
            "update its network settings, then start it (its processes end on stop)",
            code="CONFLICT",
        )
    return _save(request, record)


async def build_logs_url(request: web.Request) -> web.Response:
    """``GET /sandbox/{id}/build-logs-url``: where the build of its image is followed."""
    record = _sandbox(request)
    return web.json_response(
        {"url": f"{request.app[LOCAL].api_url}/sandbox/{record.id}/build-logs"}
    )


async def build_logs(request: web.Request) -> web.StreamResponse:
    """``GET /sandbox/{id}/build-logs[?follow=true]``: the pull or build of its image."""
    record = _sandbox(request)
    log = request.app[LOCAL].lifecycle.build_logs.get(record.id)
    return await stream_log(request, log, [])


async def push_access(request: web.Request) -> web.Response:
    """``GET /object-storage/push-access``: refused, saying why (build contexts cannot reach
    this server: see the README's Local backend section)."""
    raise ApiError(
        400,
        "the local server cannot take build contexts (Image.add_local_file, add_local_dir, "
        "pip_install_from_requirements/pyproject): the daytona SDK uploads them with its "
        "object-storage client (obstore's S3Store), which it builds in an emptied environment "
        "without allow_http, so it refuses this server's plain http:// address. Put the files "
        "into the image another way (RUN steps, a base image that has them), or upload them "
        "into the sandbox with sandbox.fs.upload_file after it starts",
    )


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    """Register these routes under `prefix` (``/api``)."""
    router.add_post(f"{prefix}{SANDBOX}/fork", fork_sandbox)
    router.add_post(f"{prefix}{SANDBOX}/resize", resize_sandbox)
    router.add_post(f"{prefix}{SANDBOX}/public/{{isPublic}}", set_public)
    router.add_post(f"{prefix}/sandbox/{{sandboxId}}/last-activity", update_last_activity)
    router.add_post(f"{prefix}{SANDBOX}/network-settings", update_network_settings)
    router.add_get(f"{prefix}{SANDBOX}/build-logs-url", build_logs_url)
    router.add_get(f"{prefix}{SANDBOX}/build-logs", build_logs)
    router.add_get(f"{prefix}/object-storage/push-access", push_access)
