"""A client of the OCI distribution protocol (Docker registry v2): manifests and blobs, with
the token and basic auth registries ask for, over HTTPS (plain HTTP only where allowed)."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from .errors import ImageError
from .reference import Reference

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
#: Seconds to connect, and between two reads of one answer.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
CHUNK = 1 << 20


def docker_credentials(registry: str, config: Path | None = None) -> tuple[str, str] | None:
    """User and password for `registry` from a Docker config file (``auths``), if any."""
    if config is None:
        home = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
        config = Path(home) / "config.json"
    try:
        auths = json.loads(config.read_text()).get("auths") or {}
    except (OSError, ValueError, AttributeError):
        return None
    for key in (registry, f"https://{registry}", f"http://{registry}"):
        entry = auths.get(key) or auths.get(key + "/v1/") or auths.get(key + "/v2/")
        if not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except ValueError:
                return None
            return user, password
        if entry.get("username"):
            return str(entry["username"]), str(entry.get("password", ""))
    return None


class RegistryClient:
    """One repository of one registry; use as an async context manager."""

    def __init__(
        self, ref: Reference, image: str, *, plain_http: bool, credentials: tuple[str, str] | None
    ) -> None:
        self.ref = ref
        self.image = image
        self._base = f"{'http' if plain_http else 'https'}://{ref.registry}/v2/{ref.repository}"
        self._credentials = credentials
        self._auth: str | None = None
        self._session: aiohttp.ClientSession | None = None
        #: Requests by kind ("manifest", "blob"): what the store's cache saved is countable.
        self.requests: dict[str, int] = {}

    async def __aenter__(self) -> RegistryClient:
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
        self._session = aiohttp.ClientSession(timeout=timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def manifest(self, target: str) -> tuple[bytes, str]:
        """The manifest (or index) at `target` (a tag or digest): its bytes and media type."""
        async with self._get(f"/manifests/{target}", "manifest", {"Accept": _ACCEPT}) as resp:
            body = await resp.read()
            media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if not media or media == "application/json":
            media = str(json.loads(body).get("mediaType") or OCI_MANIFEST)
        return body, media

    async def blob(self, digest: str) -> AsyncIterator[bytes]:
        """The blob's bytes, in chunks."""
        async with self._get(f"/blobs/{digest}", "blob", {}) as resp:
            async for chunk in resp.content.iter_chunked(CHUNK):
                yield chunk

    def _get(self, path: str, kind: str, headers: dict[str, str]) -> _Answer:
        return _Answer(self, path, kind, headers)

    async def _open(self, path: str, kind: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        assert self._session is not None
        self.requests[kind] = self.requests.get(kind, 0) + 1
        for attempt in range(2):
            sent = dict(headers)
            if self._auth:
                sent["Authorization"] = self._auth
            try:
                resp = await self._session.get(self._base + path, headers=sent)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise ImageError(
                    502, self.image, f"registry {self.ref.registry} unreachable: {_cause(exc)}"
                ) from None
            if resp.status == 401 and attempt == 0:
                challenge = resp.headers.get("WWW-Authenticate", "")
                resp.release()
                await self._authenticate(challenge)
                continue
            if resp.status >= 400:
                text = (await resp.text(errors="replace"))[:300]
                resp.release()
                raise _answer_error(self, kind, resp.status, text)
            return resp
        raise ImageError(401, self.image, f"registry {self.ref.registry} refused the credentials")

    async def _authenticate(self, challenge: str) -> None:
        scheme, _, rest = challenge.partition(" ")
        params = dict(_CHALLENGE.findall(rest))
        basic = None
        if self._credentials is not None:
            user, password = self._credentials
            basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if scheme.lower() == "basic":
            if basic is None:
                raise ImageError(
                    401, self.image, f"registry {self.ref.registry} needs credentials (none found)"
                )
            self._auth = basic
            return
        if scheme.lower() != "bearer" or "realm" not in params:
            raise ImageError(401, self.image, f"registry {self.ref.registry}: unknown auth")
        query = {"scope": params.get("scope") or f"repository:{self.ref.repository}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        assert self._session is not None
        try:
            async with self._session.get(
                params["realm"], params=query, headers={"Authorization": basic} if basic else {}
            ) as resp:
                if resp.status >= 400:
                    raise ImageError(
                        401,
                        self.image,
                        f"token service of {self.ref.registry} answered {resp.status}",
                    )
                data: dict[str, Any] = await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise ImageError(
                502, self.image, f"token service of {self.ref.registry}: {_cause(exc)}"
            ) from None
        token = data.get("token") or data.get("access_token")
        if not token:
            raise ImageError(502, self.image, f"token service of {self.ref.registry} sent none")
        self._auth = f"Bearer {token}"


class _Answer:
    """An answer of the registry as an async context manager (released on exit)."""

    def __init__(self, client: RegistryClient, path: str, kind: str, headers: dict[str, str]):
        self._args = (client, path, kind, headers)
        self._resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        client, path, kind, headers = self._args
        self._resp = await client._open(path, kind, headers)
        return self._resp

    async def __aexit__(self, *exc: object) -> None:
        if self._resp is not None:
            self._resp.release()


def _answer_error(client: RegistryClient, kind: str, status: int, text: str) -> ImageError:
    host = client.ref.registry
    if status == 404 and kind == "manifest":
        return ImageError(
            400, client.image, f"not found in registry {host} ({client.ref.repository})"
        )
    if status in (401, 403):
        return ImageError(401, client.image, f"registry {host} denied access ({status})")
    return ImageError(502, client.image, f"registry {host} answered {status} for a {kind}: {text}")


def _cause(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
