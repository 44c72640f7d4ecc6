"""Snapshots: named images, pulled from a registry or built from a declarative ``Image``.

The pull or build itself is `builds.Builder`'s; a snapshot keeps its state, its logs and,
once active, the image its sandboxes run in. The built-in default snapshot has none: its
sandboxes run on this machine's userland.
"""

from __future__ import annotations

import re
import time
import uuid
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import Field

from ..errors import ApiError
from ..images.root import ImageUse
from .records import _Camel, iso_now, iso_time
from .store import Store
from .tables import Table

DEFAULT_SNAPSHOT = "daytona-local"
HOME = PurePosixPath("/home/daytona")
_NAME = re.compile(r"^[a-zA-Z0-9_.\-:]+(/[a-zA-Z0-9_.\-:]+)*(@sha256:[a-f0-9]{64})?$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class SnapshotState(str, Enum):
    """Snapshot states (Daytona's names)."""

    PENDING = "pending"
    PULLING = "pulling"
    BUILDING = "building"
    ACTIVE = "active"
    INACTIVE = "inactive"
    ERROR = "error"
    BUILD_FAILED = "build_failed"
    REMOVING = "removing"


class BuildSpec(_Camel):
    """What a declarative image was: its Dockerfile and the hashes of its uploaded contexts."""

    dockerfile_content: str | None = None
    context_hashes: list[str] | None = None


class CreateSnapshotBody(_Camel):
    """``POST /snapshots`` body (unknown fields are ignored)."""

    name: str
    image_name: str | None = None
    entrypoint: list[str] | None = None
    cpu: int | None = Field(default=None, gt=0)
    gpu: int | None = Field(default=None, ge=0)
    memory: int | None = Field(default=None, gt=0)
    disk: int | None = Field(default=None, gt=0)
    build_info: BuildSpec | None = None


class SnapshotRecord(_Camel):
    """One snapshot (`SnapshotDto` on the wire)."""

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    organization_id: str = "local"
    general: bool = False
    name: str
    image_name: str | None = None
    state: SnapshotState = SnapshotState.PENDING
    entrypoint: list[str] | None = None
    cpu: int = 1
    gpu: int = 0
    mem: int = 1
    disk: int = 3
    error_reason: str | None = None
    build: BuildSpec | None = None
    #: What sandboxes from it run in, once pulled or built (None: this machine's userland).
    image: ImageUse | None = None
    logs: list[str] = Field(default_factory=list)
    created_at: str = Field(default_factory=iso_now)
    updated_at: str = Field(default_factory=iso_now)
    updated_ts: float = Field(default_factory=time.time)
    last_used_at: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The snapshot as the REST API returns it."""
        data = self.model_dump(
            by_alias=True,
            mode="json",
            exclude={"build", "logs", "updated_ts", "image"},
        )
        data.update(size=None, sourceSandboxId=None, regionIds=["local"], ref=f"local/{self.id}")
        if self.build is not None:
            data["buildInfo"] = {
                "dockerfileContent": self.build.dockerfile_content,
                "contextHashes": self.build.context_hashes,
                "createdAt": self.created_at,
                "updatedAt": self.updated_at,
                "snapshotRef": f"local/{self.id}",
            }
        return data

    def set_state(self, state: SnapshotState) -> None:
        """Move to `state`, stamping the update time."""
        self.state = state
        self.updated_at = iso_now()
        self.updated_ts = time.time()


class Snapshots:
    """The server's snapshots (plus the built-in default one, which is general)."""

    def __init__(self, store: Store, *, minute: float = 60.0) -> None:
        self.store = store
        self.minute = minute
        self.table: Table[SnapshotRecord] = Table(
            store.data_dir / "records" / "snapshots", SnapshotRecord
        )
        self.default = SnapshotRecord(
            id="00000000-0000-4000-8000-000000000000",
            name=DEFAULT_SNAPSHOT,
            general=True,
            image_name=DEFAULT_SNAPSHOT,
            state=SnapshotState.ACTIVE,
            created_at=iso_time(0),
        )

    def all(self) -> list[SnapshotRecord]:
        """The organization's snapshots, newest first, then the general ones."""
        own = sorted(self.table, key=lambda s: (s.created_at, s.id), reverse=True)
        return [*own, self.default]

    def find(self, id_or_name: str) -> SnapshotRecord | None:
        """A snapshot by name, or by id when `id_or_name` is a UUID."""
        for record in self.all():
            if record.name == id_or_name or (_UUID.match(id_or_name) and record.id == id_or_name):
                return record
        return None

    def get(self, id_or_name: str) -> SnapshotRecord:
        """A snapshot or Daytona's 404."""
        record = self.find(id_or_name)
        if record is None:
            raise ApiError(404, f"Snapshot {id_or_name} not found")
        return record

    def by_id(self, snapshot_id: str) -> SnapshotRecord:
        """A snapshot by id (a UUID, else 400 as Nest's ParseUUIDPipe), or a 404."""
        if not _UUID.match(snapshot_id):
            raise ApiError(400, "Validation failed (uuid is expected)")
        record = next((s for s in self.all() if s.id == snapshot_id), None)
        if record is None:
            raise ApiError(404, f"Snapshot {snapshot_id} not found")
        return record

    def create(self, body: CreateSnapshotBody) -> SnapshotRecord:
        """Record a new snapshot in ``pending`` (the caller moves it on)."""
        if not _NAME.match(body.name):
            raise ApiError(
                400,
                "Invalid snapshot name format. May contain letters, digits, dots, colons, "
                "and dashes",
            )
        if body.build_info is None:
            _check_image_name(body.image_name)
        if self.find(body.name) is not None:
            raise ApiError(
                409, f'Snapshot with name "{body.name}" already exists for this organization'
            )
        record = SnapshotRecord(
            name=body.name,
            image_name=body.image_name,
            entrypoint=[c for c in body.entrypoint or [] if c.strip()] or None,
            cpu=body.cpu or 1,
            gpu=body.gpu or 0,
            mem=body.memory or 1,
            disk=body.disk or 3,
            build=body.build_info,
        )
        if body.build_info is not None:
            record.image_name = f"local/{record.id}"
        self.table.save(record)
        return record

    def save(self, record: SnapshotRecord) -> None:
        """Persist a changed snapshot."""
        if record is not self.default:
            self.table.save(record)

    def remove(self, record: SnapshotRecord) -> None:
        """Delete a snapshot (general ones cannot be)."""
        if record.general:
            raise ApiError(403, "You cannot delete a general snapshot")
        self.table.remove(record)

    def activate(self, record: SnapshotRecord) -> None:
        """Activate an inactive snapshot, as the API allows it."""
        if record.state is SnapshotState.ACTIVE:
            raise ApiError(400, f"Snapshot {record.id} is already active")
        if record.state is not SnapshotState.INACTIVE:
            raise ApiError(
                400,
                f"Snapshot {record.id} cannot be activated - it is in {record.state.value} state",
            )
        if time.time() - record.updated_ts < 10 * self.minute:
            raise ApiError(
                400,
                "Snapshot deactivation is still in progress. Please try again in a few minutes.",
            )
        record.set_state(SnapshotState.ACTIVE)
        self.save(record)

    def usable(self, id_or_name: str | None) -> SnapshotRecord:
        """The active snapshot a sandbox is created from, or the API's 400."""
        ref = id_or_name.strip() if id_or_name and id_or_name.strip() else DEFAULT_SNAPSHOT
        record = self.find(ref)
        if record is None:
            raise ApiError(
                400, f"Snapshot {ref} not found. Did you add it through the Daytona Dashboard?"
            )
        if record.state is not SnapshotState.ACTIVE:
            raise ApiError(400, f"Snapshot {ref} is {record.state.value}")
        record.last_used_at = iso_now()
        self.save(record)
        return record

    def contexts(self, hashes: list[str]) -> list[Path]:
        """The uploaded build-context archives of `hashes`."""
        root = self.store.objects_dir()
        return [p for h in hashes or [] for p in sorted(root.glob(f"*/*/{h}/context.tar"))]


def _check_image_name(name: str | None) -> None:
    if not name:
        raise ApiError(400, "Must specify an image name")
    if "@sha256:" in name:
        image, digest = name.split("@sha256:", 1)
        if not image or not re.fullmatch(r"[a-f0-9]{64}", digest):
            raise ApiError(400, "Invalid digest format. Must be image@sha256:64_hex_characters")
        return
    if ":" not in name or name.rstrip().endswith(":"):
        raise ApiError(
            400, "Image name must include a tag (e.g., ubuntu:22.04) or digest (@sha256:...)"
        )
    if name.endswith(":latest"):
        raise ApiError(400, 'Images with tag ":latest" are not allowed')
    if not _NAME.match(name):
        raise ApiError(
            400,
            "Invalid image name format. Must be lowercase, may contain digits, dots, dashes, "
            "and single slashes between components",
        )
