"""Preview links: the REST calls that hand them out and the proxy that serves them.

Daytona serves port P of a sandbox at ``https://P-<sandboxId>.<proxy domain>``. Without
wildcard DNS this server serves it at ``<origin>/preview/<sandboxId>/P/...``, and also
accepts Daytona's host form (``Host: P-<sandboxId>.<anything>``). A signed URL puts its token
where the sandbox id goes, as on Daytona. Requests reach ``127.0.0.1:P`` on this machine, where
a sandbox's processes listen (sandboxes share the host's network).
"""

from __future__ import annotations

import functools
import hmac
import re
import secrets
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict, MultiDict

from ..context import LOCAL, LocalContext
from ..errors import ApiError
from ..state.records import SandboxRecord, State
from .preview_proxy import Upstream, proxy_error

PROXY_PREFIX = "/preview"
TOKEN_HEADER = "X-Daytona-Preview-Token"
TOKEN_QUERY = "DAYTONA_SANDBOX_AUTH_KEY"
SKIP_ACTIVITY_HEADER = "X-Daytona-Skip-Last-Activity-Update"
#: Terminal, toolbox and recording ports need credentials even on a public sandbox.
ALWAYS_PRIVATE_PORTS = frozenset({22222, 2280, 33333})
SIGNED_DEFAULT_SECONDS = 60
SIGNED_MAX_SECONDS = 24 * 60 * 60
NOT_STARTED = (
    "failed to resolve container IP after 3 attempts: no IP address found. Is the Sandbox started?"
)

_HOST_FORM = re.compile(r"^(\d{1,5})-([A-Za-z0-9]+)\.")
_SIGNED_CHARS = string.ascii_lowercase + string.digits
_PORTS = "/sandbox/{sandboxIdOrName}/ports/{port}"


@dataclass
class SignedLinks:
    """Live signed-preview tokens: (port, token) -> (sandbox id, monotonic expiry)."""

    _links: dict[tuple[int, str], tuple[str, float]] = field(default_factory=dict)

    def issue(self, sandbox_id: str, port: int, seconds: int) -> str:
        """A new 16-character token for `port` of `sandbox_id`, valid for `seconds`."""
        now = time.monotonic()
        self._links = {key: v for key, v in self._links.items() if v[1] > now}
        token = "".join(secrets.choice(_SIGNED_CHARS) for _ in range(16))
        self._links[(port, token)] = (sandbox_id, now + seconds)
        return token

    def sandbox_id(self, port: int, token: str) -> str | None:
        """The sandbox a live token opens `port` of, else None."""
        entry = self._links.get((port, token))
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def expire(self, port: int, token: str) -> None:
        """End a token now (unknown tokens are ignored, as on Daytona)."""
        self._links.pop((port, token), None)


@dataclass
class Previews:
    """What the preview routes share: the API prefix, signed links, the upstream client."""

    api: str
    links: SignedLinks = field(default_factory=SignedLinks)
    upstream: Upstream = field(default_factory=Upstream)

    def url(self, ctx: LocalContext, target: str, port: int) -> str:
        """The link for `port` of the sandbox (or signed token) `target`."""
        return f"{ctx.api_url.removesuffix(self.api)}{PROXY_PREFIX}/{target}/{port}"


PREVIEWS = web.AppKey("pytest_daytona_previews", Previews)


# -- REST: hand out links ----------------------------------------------------------------


def _port(request: web.Request) -> int:
    try:
        port = int(request.match_info["port"])
    except ValueError:
        raise ApiError(400, "Invalid port") from None
    if not 1 <= port <= 65535:
        raise ApiError(400, "Invalid port")
    return port


def _sandbox(request: web.Request) -> SandboxRecord:
    return request.app[LOCAL].lifecycle.lookup(request.match_info["sandboxIdOrName"])


async def preview_url(request: web.Request) -> web.Response:
    """``GET /sandbox/{sandboxIdOrName}/ports/{port}/preview-url``."""
    port = _port(request)
    record = _sandbox(request)
    url = request.app[PREVIEWS].url(request.app[LOCAL], record.id, port)
    return web.json_response({"sandboxId": record.id, "url": url, "token": record.auth_token})


async def signed_preview_url(request: web.Request) -> web.Response:
    """``GET /sandbox/{sandboxIdOrName}/ports/{port}/signed-preview-url?expiresInSeconds=``."""
    port = _port(request)
    raw = request.query.get("expiresInSeconds")
    try:
        seconds = SIGNED_DEFAULT_SECONDS if raw is None else int(raw)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= SIGNED_MAX_SECONDS:
        raise ApiError(400, "expiresInSeconds must be between 1 second and 24 hours")
    record = _sandbox(request)
    previews = request.app[PREVIEWS]
    token = previews.links.issue(record.id, port, seconds)
    url = previews.url(request.app[LOCAL], token, port)
    return web.json_response({"sandboxId": record.id, "port": port, "token": token, "url": url})


async def expire_signed_preview_url(request: web.Request) -> web.Response:
    """``POST /sandbox/{sandboxIdOrName}/ports/{port}/signed-preview-url/{token}/expire``."""
    _sandbox(request)
    try:
        port = int(request.match_info["port"])
    except ValueError:
        raise ApiError(400, "Invalid port") from None
    request.app[PREVIEWS].links.expire(port, request.match_info["token"])
    return web.Response()


# -- the proxy: check the caller, then forward -------------------------------------------


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def authenticate(
    ctx: LocalContext,
    links: SignedLinks,
    target: str,
    port: int,
    headers: CIMultiDict[str],
    query: MultiDict[str],
) -> tuple[SandboxRecord | None, list[str]]:
    """The sandbox a request may reach, and why not when None.

    In Daytona's proxy's order: public sandbox, API key as bearer, preview token header,
    preview token query parameter, signed token in place of the id. Credentials that
    worked are removed from `headers`/`query`; the preview token header always is.
    """
    record = ctx.lifecycle.store.get(target)
    if record is not None and record.id != target:
        record = None  # links name sandboxes by id, never by name
    if record is not None and record.public and port not in ALWAYS_PRIVATE_PORTS:
        return record, []
    problems: list[str] = []
    scheme, _, bearer = headers.get("Authorization", "").partition(" ")
    if scheme == "Bearer" and bearer.strip():
        if record is not None and _same(bearer.strip(), ctx.token):
            del headers["Authorization"]
            return record, []
        problems.append("Bearer token is invalid")
    header_key = headers.popall(TOKEN_HEADER, [""])[0]
    if header_key:
        if record is not None and _same(header_key, record.auth_token):
            return record, []
        problems.append("Auth key header is invalid")
    query_key = query.get(TOKEN_QUERY, "")
    if query_key:
        if record is not None and _same(query_key, record.auth_token):
            del query[TOKEN_QUERY]
            return record, []
        problems.append("Auth key query parameter is invalid")
    signed_for = links.sandbox_id(port, target)
    signed = None if signed_for is None else ctx.lifecycle.store.get(signed_for)
    if signed is not None:
        return signed, []
    problems.append("Invalid or expired token")
    return None, problems


async def serve(request: web.Request, target: str, port: int, mount: str) -> web.StreamResponse:
    """Check the caller, then forward the request to ``127.0.0.1:port``.

    `mount` is the path prefix the link adds (empty for the host form); the rest of the path
    goes upstream, and upstream redirects to absolute paths are put back under it.
    """
    ctx = request.app[LOCAL]
    previews = request.app[PREVIEWS]
    headers = CIMultiDict(request.headers)
    path, _, query_string = request.raw_path.partition("?")
    query = MultiDict(request.query)
    record, problems = authenticate(ctx, previews.links, target, port, headers, query)
    if record is None:
        message = f"authentication failed: {','.join(problems)}"
        return proxy_error(request, 401, message, "UNAUTHORIZED")
    if record.state is not State.STARTED:
        return proxy_error(request, 400, NOT_STARTED, "BAD_REQUEST")
    if headers.popall(SKIP_ACTIVITY_HEADER, [""])[0] != "true":
        record.touch()
    if TOKEN_QUERY in request.query and TOKEN_QUERY not in query:  # it was the credential
        parts = query_string.split("&")
        query_string = "&".join(p for p in parts if p.partition("=")[0] != TOKEN_QUERY)
    upstream_path = path[len(mount) :] or "/"
    dial = None
    if ctx.confinement(record).network.own:
        agent = await ctx.agent(record)
        dial = functools.partial(agent.connect_port, port)
    return await previews.upstream.forward(
        request, port, upstream_path, query_string, headers, mount, dial
    )


async def by_path(request: web.Request) -> web.StreamResponse:
    """``* /preview/{target}/{port}[/...]``: the path form of a preview link."""
    mount = "/".join(request.raw_path.partition("?")[0].split("/", 4)[:4])
    return await serve(
        request, request.match_info["target"], int(request.match_info["port"]), mount
    )


@web.middleware
async def by_host(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Daytona's host form, ``Host: <port>-<sandboxId or token>.<domain>``, before routing."""
    match = _HOST_FORM.match(request.host)
    if match is None:
        return await handler(request)
    return await serve(request, match[2], int(match[1]), "")


def setup(app: web.Application, api: str) -> None:
    """Register the link routes under `api` and the proxy under ``/preview``."""
    previews = Previews(api)
    app[PREVIEWS] = previews
    app.router.add_get(f"{api}{_PORTS}/preview-url", preview_url)
    app.router.add_get(f"{api}{_PORTS}/signed-preview-url", signed_preview_url)
    app.router.add_post(
        f"{api}{_PORTS}/signed-preview-url/{{token}}/expire", expire_signed_preview_url
    )
    app.router.add_route("*", f"{PROXY_PREFIX}/{{target}}/{{port:\\d+}}{{tail:(?:/.*)?}}", by_path)

    async def close(_: web.Application) -> None:
        await previews.upstream.close()

    app.on_cleanup.append(close)
