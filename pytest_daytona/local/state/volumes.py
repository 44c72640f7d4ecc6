"""Volumes: named host directories that sandboxes mount, as Daytona's volume service keeps them."""

from __future__ import annotations

import re
import shutil
import uuid
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import Field

from ..errors import ApiError
from .records import SandboxRecord, VolumeMountBody, _Camel, iso_now
from .store import Store
from .tables import Table

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_SYSTEM_DIRS = ("/proc", "/sys", "/dev", "/boot", "/etc", "/bin", "/sbin", "/lib", "/lib64")


class VolumeState(str, Enum):
    """Volume states (Daytona's names)."""

    PENDING_CREATE = "pending_create"
    CREATING = "creating"
    READY = "ready"
    PENDING_DELETE = "pending_delete"
    DELETING = "deleting"
    DELETED = "deleted"
    ERROR = "error"


class VolumeRecord(_Camel):
    """One volume (`VolumeDto` on the wire)."""

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    name: str
    organization_id: str = "local"
    state: VolumeState = VolumeState.PENDING_CREATE
    created_at: str = Field(default_factory=iso_now)
    updated_at: str = Field(default_factory=iso_now)
    last_used_at: str | None = None
    error_reason: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The volume as the REST API returns it."""
        return self.model_dump(by_alias=True, mode="json")


class Volumes:
    """The server's volumes: records on disk, one host directory each."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.table: Table[VolumeRecord] = Table(
            store.data_dir / "records" / "volumes", VolumeRecord
        )

    def create(self, name: str) -> VolumeRecord:
        """A new volume in ``pending_create`` (`set_state` moves it on)."""
        if not name:
            raise ApiError(400, "name should not be empty")
        if any(v.name == name for v in self.table):
            raise ApiError(400, f"Volume with name {name} already exists")
        record = VolumeRecord(name=name)
        self.store.volume_dir(record.id).mkdir(parents=True, exist_ok=True)
        self.table.save(record)
        return record

    def set_state(self, record: VolumeRecord, state: VolumeState) -> None:
        """Move a volume to `state` and persist it."""
        record.state = state
        record.updated_at = iso_now()
        self.table.save(record)

    def by_id(self, volume_id: str) -> VolumeRecord:
        """A volume by id, or Daytona's 404."""
        record = self.table.get(volume_id)
        if record is None or record.id != volume_id:
            raise ApiError(404, f"Volume with ID {volume_id} not found")
        return record

    def by_name(self, name: str) -> VolumeRecord:
        """A volume by name, or Daytona's 404."""
        record = next((v for v in self.table if v.name == name), None)
        if record is None:
            raise ApiError(404, f"Volume with name {name} not found")
        return record

    def delete(self, record: VolumeRecord, sandboxes: list[SandboxRecord]) -> None:
        """Delete a ready (or failed) volume no live sandbox mounts, files and all."""
        if record.state not in (VolumeState.READY, VolumeState.ERROR):
            raise ApiError(400, "Volume must be in 'ready' or 'error' state in order to be deleted")
        user = next(
            (s for s in sandboxes if any(m.volume_id == record.id for m in s.volumes)), None
        )
        if user is not None:
            raise ApiError(
                409,
                "Volume cannot be deleted because it is in use by one or more sandboxes "
                f"(e.g. {user.name})",
            )
        self.table.remove(record)
        shutil.rmtree(self.store.volume_dir(record.id), ignore_errors=True)

    def resolve_mounts(self, mounts: list[VolumeMountBody]) -> list[VolumeMountBody]:
        """Validate a create's mounts and name each volume by its id, as the API does."""
        resolved: list[VolumeMountBody] = []
        for mount in mounts:
            ref = mount.volume_id
            volume = self.table.get(ref.lower() if _UUID.match(ref) else ref)
            if volume is None:
                raise ApiError(404, f"Volume '{ref}' not found")
            if volume.state is not VolumeState.READY:
                raise ApiError(
                    400,
                    f"Volume '{volume.name}' is not in a ready state. "
                    f"Current state: {volume.state.value}",
                )
            resolved.append(mount.model_copy(update={"volume_id": volume.id}))
        problems = [p for m in resolved for p in [_mount_path_problem(m.mount_path)] if p]
        if problems:
            raise ApiError(400, ", ".join(problems))
        problems = [p for m in resolved for p in [_subpath_problem(m.subpath)] if p]
        if problems:
            raise ApiError(400, ", ".join(problems))
        return resolved


def _mount_path_problem(path: str) -> str | None:
    if not path.startswith("/"):
        return f"Invalid mount path {path} (must be absolute)"
    if path in ("/", "//"):
        return f"Invalid mount path {path} (cannot mount to the root directory)"
    if "/../" in path or "/./" in path or path.endswith(("/..", "/.")):
        return f"Invalid mount path {path} (cannot contain relative path components)"
    if "//" in path[1:]:
        return f"Invalid mount path {path} (cannot contain consecutive slashes)"
    if any(path == d or path.startswith(d + "/") for d in _SYSTEM_DIRS):
        return f"Invalid mount path {path} (cannot mount to system directory)"
    return None


def _subpath_problem(subpath: str | None) -> str | None:
    if not subpath:
        return None
    if subpath.startswith("/"):
        return f'Invalid subpath "{subpath}" (S3 key prefixes cannot start with /)'
    if ".." in subpath:
        return f'Invalid subpath "{subpath}" (cannot contain .. for security)'
    if "//" in subpath:
        return f'Invalid subpath "{subpath}" (cannot contain consecutive slashes)'
    return None


def volume_mounts(store: Store, record: SandboxRecord) -> list[tuple[Path, str]]:
    """(host directory, in-sandbox mount path) of each volume `record` mounts.

    A mount with a subpath gets that directory of the volume (created if missing).
    """
    pairs: list[tuple[Path, str]] = []
    for mount in record.volumes:
        host = store.volume_dir(mount.volume_id)
        if mount.subpath:
            host = host / mount.subpath.strip("/")
        host.mkdir(parents=True, exist_ok=True)
        pairs.append((host, mount.mount_path.rstrip("/") or "/"))
    return pairs
