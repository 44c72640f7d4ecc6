"""Image references (``name:tag``, ``host:port/ns/name@sha256:...``) as the registry sees them."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import ImageError

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


@dataclass(frozen=True)
class Reference:
    """A parsed reference: registry host, repository, and a tag or a digest."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def target(self) -> str:
        """What the manifest is asked for by: the digest, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def canonical(self) -> str:
        """``registry/repository@digest`` when pinned, else ``registry/repository:tag``."""
        if self.digest:
            return f"{self.registry}/{self.repository}@{self.digest}"
        return f"{self.registry}/{self.repository}:{self.tag}"

    def pinned(self, digest: str) -> Reference:
        """The same repository at `digest`."""
        return Reference(self.registry, self.repository, None, digest)


def parse(text: str, default_registry: str | None) -> Reference:
    """Parse `text`; a short name (no registry host) resolves against `default_registry`."""
    name = text.strip()
    digest = None
    if "@" in name:
        name, digest = name.split("@", 1)
        if not _DIGEST.match(digest):
            raise ImageError(400, text, "the digest must be sha256: and 64 hex characters")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        if not _TAG.match(tag):
            raise ImageError(400, text, f"invalid tag {tag!r}")
    if digest is None and tag is None:
        tag = "latest"
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        if not default_registry:
            raise ImageError(
                400,
                text,
                "the name has no registry host and this local server has no default "
                "registry: use a fully qualified name (host[:port]/repository:tag) or start "
                "the server with a default registry (--default-registry, or "
                "PYTEST_DAYTONA_LOCAL_DEFAULT_REGISTRY)",
            )
        registry = default_registry.rstrip("/")
        repository = name if "/" in name else f"library/{name}"
    for component in repository.split("/"):
        if not _COMPONENT.match(component):
            raise ImageError(400, text, f"invalid repository name {repository!r}")
    return Reference(registry, repository, tag, digest)


def is_loopback(registry: str) -> bool:
    """Whether the registry host is this machine (plain HTTP is allowed there)."""
    host = registry
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
