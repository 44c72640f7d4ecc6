"""A sandbox that runs in an image: the image's layers as its root, the image's user, env and
work dir, applied as Daytona's runner applies them.

Daytona's runner (``apps/runner/pkg/docker/container_configs.go``, v0.190.0) creates the
container with the image's own ``User`` (it sets none of its own), the sandbox's env after the
image's ``Env``, the image's ``WorkingDir`` as the daemon's work dir (the user's home when the
image sets none), and its daemon bound read-only into the container.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from ..errors import ApiError


class ImageUse(BaseModel):
    """What a sandbox runs in: an image's layers (host directories) and its config."""

    name: str
    #: Host directories of the image's layers, lowest first (each an overlay lower dir).
    layers: list[str]
    env: list[str] = Field(default_factory=list)
    working_dir: str | None = None
    user: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None

    def env_dict(self) -> dict[str, str]:
        """The image config's ``Env`` as a mapping (later entries win, as in Docker)."""
        pairs = (entry.partition("=") for entry in self.env)
        return {key: value for key, _, value in pairs if key}

    def find(self, path: str) -> Path | None:
        """The host file behind in-image `path` (top layer first), None if absent or
        whited out."""
        relative = path.lstrip("/")
        for layer in reversed(self.layers):
            candidate = Path(layer) / relative
            if candidate.is_symlink() or candidate.exists():
                # An overlay whiteout (a 0/0 character device) hides the lower layers' file.
                return None if candidate.is_char_device() else candidate
        return None


class Identity(BaseModel):
    """The user a sandbox's processes run as, resolved in the image."""

    uid: int
    gid: int
    name: str
    home: str


def resolve_user(image: ImageUse, override: str | None = None) -> Identity:
    """The image's ``User`` (``name``, ``uid``, ``name:group``, ``uid:gid``) as ids and home,
    read from the image's ``/etc/passwd`` and ``/etc/group``; no ``User`` is root."""
    spec = (override or image.user or "").strip() or "0"
    user, _, group = spec.partition(":")
    passwd = _table(image, "/etc/passwd")
    entry = next((row for row in passwd if user in (row[0], row[2])), None)
    if entry is None and not user.isdigit():
        raise ApiError(400, f"image {image.name}: user {user!r} is not in the image's /etc/passwd")
    uid = int(entry[2]) if entry else int(user)
    gid = int(entry[3]) if entry and len(entry) > 3 and entry[3].isdigit() else uid
    if group:
        groups = _table(image, "/etc/group")
        found = next((row for row in groups if group in (row[0], row[2])), None)
        if found is None and not group.isdigit():
            raise ApiError(
                400, f"image {image.name}: group {group!r} is not in the image's /etc/group"
            )
        gid = int(found[2]) if found else int(group)
    name = entry[0] if entry else str(uid)
    home = entry[5] if entry and len(entry) > 5 and entry[5] else ("/root" if uid == 0 else "/")
    return Identity(uid=uid, gid=gid, name=name, home=home)


def _table(image: ImageUse, path: str) -> list[list[str]]:
    found = image.find(path)
    if found is None or not found.is_file():
        return []
    rows = (line.split(":") for line in found.read_text(errors="replace").splitlines())
    return [row for row in rows if len(row) >= 3 and row[2].isdigit()]


def work_dir(image: ImageUse, identity: Identity) -> str:
    """The daemon's work dir: the image's ``WorkingDir``, else the user's home."""
    return image.working_dir or identity.home
