"""Pydantic records of the embedded server: what a sandbox is, on disk and on the wire."""

from __future__ import annotations

import re
import secrets
import string
import sys
import time
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..images.root import ImageUse


class State(str, Enum):
    """Sandbox states the local server uses (a subset of Daytona's)."""

    CREATING = "creating"
    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ARCHIVING = "archiving"
    ARCHIVED = "archived"
    ERROR = "error"
    PAUSING = "pausing"
    PAUSED = "paused"
    RESUMING = "resuming"
    RESIZING = "resizing"
    FORKING = "forking"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"
    PENDING_BUILD = "pending_build"
    BUILD_FAILED = "build_failed"


#: Where a transitional state settles when the server restarts mid-transition.
SETTLED_AFTER_RESTART: dict[State, State] = {
    State.CREATING: State.STARTED,
    State.STARTING: State.STARTED,
    State.STOPPING: State.STOPPED,
    State.ARCHIVING: State.ARCHIVED,
    State.PAUSING: State.PAUSED,
    State.RESUMING: State.STARTED,
    State.RESIZING: State.STARTED,
    State.FORKING: State.STARTED,
    State.DESTROYING: State.DESTROYED,
    State.PENDING_BUILD: State.BUILD_FAILED,  # the build died with the server
}

DEFAULT_AUTO_STOP_MINUTES = 15
DEFAULT_AUTO_ARCHIVE_MINUTES = 7 * 24 * 60
DEFAULT_AUTO_DELETE_MINUTES = -1


def iso_time(ts: float) -> str:
    """A Unix time in the ISO 8601 UTC form Daytona uses."""
    moment = datetime.fromtimestamp(ts, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_now() -> str:
    """The current UTC time in the ISO 8601 form Daytona uses."""
    return iso_time(time.time())


#: The ISO 8601 forms `parse_iso` reads before Python 3.11: date, time, fraction, offset.
_ISO = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})"
    r"(?:[T ](\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?"
)


def iso_before_311(text: str) -> datetime:
    """`parse_iso` before Python 3.11, whose `datetime.fromisoformat` reads only its own
    output: not the SDK's ``+0000`` offsets (it formats ``%Y-%m-%dT%H:%M:%S.%f%z``), ``Z``,
    nor a fraction of other than 3 or 6 digits."""
    match = _ISO.fullmatch(text)
    if match is None:
        return datetime.fromisoformat(text)  # its ValueError, or the forms only it reads
    *fields, fraction, offset = match.groups()
    year, month, day, hour, minute, second = (int(field or 0) for field in fields)
    tzinfo = None
    if offset == "Z":
        tzinfo = timezone.utc
    elif offset:
        digits = offset[1:].replace(":", "").ljust(6, "0")
        span = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4]), seconds=int(digits[4:]))
        tzinfo = timezone(-span if offset[0] == "-" else span)
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    return datetime(year, month, day, hour, minute, second, micros, tzinfo)


#: An ISO 8601 date and time, read as Python 3.11's `datetime.fromisoformat` reads it.
parse_iso = datetime.fromisoformat if sys.version_info >= (3, 11) else iso_before_311


def new_sandbox_id() -> str:
    """A fresh sandbox id (UUID-like hex, as Daytona's ids are opaque strings)."""
    return secrets.token_hex(16)


def new_auth_token() -> str:
    """A sandbox's preview token, shaped like Daytona's ``authToken`` (32 lowercase chars)."""
    return "".join(secrets.choice(_TOKEN_CHARS) for _ in range(32))


_TOKEN_CHARS = string.ascii_lowercase + string.digits


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class BuildInfoBody(_Camel):
    """The image a sandbox was asked to be built from."""

    dockerfile_content: str | None = None
    context_hashes: list[str] | None = None


class VolumeMountBody(_Camel):
    """One volume mount of a sandbox (`SandboxVolume` on the wire)."""

    volume_id: str
    mount_path: str
    subpath: str | None = None


class CreateSandboxBody(_Camel):
    """`POST /sandbox` body, as the SDK sends it (unknown fields are ignored)."""

    name: str | None = None
    snapshot: str | None = None
    user: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    public: bool | None = None
    network_block_all: bool | None = None
    network_allow_list: str | None = None
    domain_allow_list: str | None = None
    volumes: list[VolumeMountBody] = Field(default_factory=list)
    target: str | None = None
    cpu: int | None = Field(default=None, gt=0)
    memory: int | None = Field(default=None, gt=0)
    disk: int | None = Field(default=None, gt=0)
    gpu: int | None = Field(default=None, ge=0)
    auto_stop_interval: int | None = Field(default=None, ge=0)
    auto_archive_interval: int | None = Field(default=None, ge=0)
    auto_delete_interval: int | None = None
    ttl_minutes: int | None = Field(default=None, ge=0)
    build_info: BuildInfoBody | None = None
    linked_sandbox: str | None = None


class SandboxRecord(_Camel):
    """One sandbox as the server stores it (`state.json` in its directory)."""

    id: str
    name: str
    organization_id: str = "local"
    user: str = "daytona"
    snapshot: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    public: bool = False
    network_block_all: bool = False
    network_allow_list: str | None = None
    domain_allow_list: str | None = None
    volumes: list[VolumeMountBody] = Field(default_factory=list)
    target: str = "local"
    cpu: int = 1
    gpu: int = 0
    memory: int = 1
    disk: int = 3
    state: State = State.CREATING
    error_reason: str | None = None
    recoverable: bool | None = None
    auto_stop_interval: int = DEFAULT_AUTO_STOP_MINUTES
    auto_archive_interval: int = DEFAULT_AUTO_ARCHIVE_MINUTES
    auto_delete_interval: int = DEFAULT_AUTO_DELETE_MINUTES
    # Time to live: destroyed `ttl_minutes` after `ttl_anchor_ts` whatever its state (0 = none).
    ttl_minutes: int = 0
    ttl_anchor_ts: float | None = None
    build_info: BuildInfoBody | None = None
    # The image the sandbox runs in (None: this machine's userland).
    image: ImageUse | None = None
    # The sandbox this one is linked to (`linkedSandbox` at create): its name resolves here.
    linked_sandbox_id: str | None = None
    created_at: str = Field(default_factory=iso_now)
    updated_at: str = Field(default_factory=iso_now)
    last_activity_at: str = Field(default_factory=iso_now)
    # Monotonic-free wall clock seconds, for the reaper (survives restarts).
    last_activity_ts: float = Field(default_factory=time.time)
    stopped_ts: float | None = None
    # Preview token (`X-Daytona-Preview-Token`); Daytona issues a new one at every start.
    auth_token: str = Field(default_factory=new_auth_token)

    def set_ttl(self, minutes: int) -> None:
        """Live `minutes` from now, whatever the state (0 disables the TTL)."""
        self.ttl_minutes = minutes
        self.ttl_anchor_ts = time.time() if minutes else None

    def destroy_at(self, minute: float) -> float | None:
        """Wall-clock second the TTL runs out, with `minute` seconds a minute (None: no TTL)."""
        if not self.ttl_minutes or self.ttl_anchor_ts is None:
            return None
        return self.ttl_anchor_ts + self.ttl_minutes * minute

    def touch(self) -> None:
        """Record activity now (resets the auto-stop clock)."""
        self.last_activity_ts = time.time()
        self.last_activity_at = iso_now()

    def set_state(self, state: State) -> None:
        """Move to `state`, stamping the times the reaper reads."""
        self.state = state
        self.updated_at = iso_now()
        if state is State.STOPPED:
            self.stopped_ts = time.time()
        elif state is State.STARTED:
            self.stopped_ts = None
            self.auth_token = new_auth_token()
            self.touch()

    def to_api(self, toolbox_proxy_url: str, *, minute: float = 60.0) -> dict[str, Any]:
        """The sandbox as Daytona's REST API returns it (camelCase JSON).

        `minute` is the server's length of a minute, for ``autoDestroyAt``.
        """
        data = self.model_dump(by_alias=True, exclude=_INTERNAL_FIELDS, mode="json")
        destroy_at = self.destroy_at(minute)
        data["autoDestroyAt"] = None if destroy_at is None else iso_time(destroy_at)
        data["kvm"] = False
        data["desiredState"] = _desired_state(self.state)
        data["toolboxProxyUrl"] = toolbox_proxy_url
        if self.build_info is None:
            data.pop("buildInfo")
        else:
            data["buildInfo"] = {
                "dockerfileContent": self.build_info.dockerfile_content,
                "createdAt": self.created_at,
                "updatedAt": self.updated_at,
                "snapshotRef": f"local-build-{self.id[:12]}",
            }
        return data


#: Bookkeeping the record keeps on disk but the REST API does not return.
_INTERNAL_FIELDS = {
    "last_activity_ts",
    "stopped_ts",
    "ttl_minutes",
    "ttl_anchor_ts",
    "auth_token",
    "image",
}


def _desired_state(state: State) -> str:
    if state in (State.STOPPING, State.STOPPED):
        return "stopped"
    if state in (State.ARCHIVING, State.ARCHIVED):
        return "archived"
    if state in (State.DESTROYING, State.DESTROYED):
        return "destroyed"
    if state in (State.PAUSING, State.PAUSED):
        return "paused"
    return "started"
