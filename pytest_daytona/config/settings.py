"""The settings model of a test's sandbox, and how it is shown (`resolve.py` builds it)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .durations import is_number, to_unit
from .options import FIELD_SPECS, local_for_missing_key

__all__ = ["Settings", "missing_api_key_message"]

ENV_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
EnvKey = Annotated[str, StringConstraints(pattern=ENV_KEY_PATTERN)]
LabelKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: A reuse key travels as a label value: keep it short and plain.
ReuseKey = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
]

_INT_FIELDS = (
    *("ttl", "cpu", "memory", "disk", "gpu"),
    *("auto_stop_interval", "auto_archive_interval", "auto_delete_interval", "prewarm"),
)
#: The time settings: a number alone counts in the setting's unit, as it always did; text
#: with units (``2h``, ``30s``) is converted to it (`durations`).
_DURATION_FIELDS = tuple(name for name, spec in FIELD_SPECS.items() if spec.unit is not None)
#: Default of the ``prewarm`` setting (see README, "Performance").
DEFAULT_PREWARM = 8
CONFLICT = "cannot be combined with snapshot"
_SIGNATURE_FIELDS = (
    *("image", "snapshot", "language", "target", "cpu", "memory", "disk", "gpu"),
    *("auto_stop_interval", "auto_archive_interval", "auto_delete_interval", "env", "labels"),
)


class Settings(BaseModel):
    """Everything that decides how a test's sandbox is made and reached.

    Build it with `resolve_settings`; constructing it directly validates the same way but
    records no sources. The API key is a `SecretStr`: it never shows in repr, str or errors.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    api_key: SecretStr | None = None
    api_url: str | None = None
    target: str | None = None
    snapshot: str | None = None
    image: str | None = None
    language: str | None = None
    timeout: float = Field(default=300.0, ge=0.001, le=86400, allow_inf_nan=False)
    retry_budget: float = Field(default=30.0, ge=0, le=3600, allow_inf_nan=False)
    ttl: int | None = Field(default=None, ge=0)
    cpu: int | None = Field(default=None, gt=0)
    memory: int | None = Field(default=None, gt=0)
    disk: int | None = Field(default=None, gt=0)
    gpu: int | None = Field(default=None, gt=0)
    auto_stop_interval: int | None = Field(default=None, ge=0)
    auto_archive_interval: int | None = Field(default=None, ge=0)
    auto_delete_interval: int | None = Field(default=None, ge=-1)
    reuse: bool = False
    reuse_key: ReuseKey | None = None
    fresh: bool = False
    lock_timeout: float = Field(default=600.0, gt=0, le=86400, allow_inf_nan=False)
    prewarm: int = Field(default=DEFAULT_PREWARM, ge=0, le=64)
    keep: Literal["never", "failed", "always"] = "never"
    backend: Literal["daytona", "local"] = "daytona"
    missing_key: Literal["fail", "skip", "local"] = "fail"
    workspace: str = "pytest-workspace"
    labels: dict[LabelKey, str] = Field(default_factory=dict)
    env: dict[EnvKey, str] = Field(default_factory=dict)

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("api_key", "api_url", "target", "language", "reuse_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("snapshot", "image", "workspace", mode="before")
    @classmethod
    def _strip_required_text(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise ValueError("must not be empty")
        return value

    @field_validator("backend", "keep", "missing_key", mode="before")
    @classmethod
    def _word_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _local_without_key(cls, data: object) -> object:
        """``missing_key = local`` with no key: the embedded server, not the given URL."""
        if isinstance(data, dict) and local_for_missing_key(data):
            return {**data, "backend": "local", "api_url": None, "target": None}
        return data

    @field_validator("language")
    @classmethod
    def _language_case(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None

    @field_validator(*_INT_FIELDS, mode="before")
    @classmethod
    def _no_bool(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("must be a whole number, not a boolean")
        return value

    @field_validator(*_DURATION_FIELDS, mode="before")
    @classmethod
    def _duration(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str) or is_number(value.strip()):
            return value  # validated as before: a number in the setting's own unit
        unit = FIELD_SPECS[str(info.field_name)].unit
        assert unit is not None
        return to_unit(value, unit)

    @field_validator("api_key")
    @classmethod
    def _key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and any(c.isspace() for c in value.get_secret_value()):
            raise ValueError("must not contain whitespace")
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # raises on a malformed port
        except ValueError:
            valid = False
        if not valid:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("image")
    @classmethod
    def _not_with_snapshot(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("snapshot") is not None:
            raise ValueError(CONFLICT)
        return value

    @field_validator("workspace")
    @classmethod
    def _one_directory(cls, value: str) -> str:
        if "/" in value or "\0" in value or value in (".", ".."):
            raise ValueError("must be one directory name, without '/' and not '.' or '..'")
        return value

    def source(self, name: str) -> str:
        """Where the value of setting `name` came from, e.g. ``--daytona-cpu`` or ``default``."""
        return self._sources.get(name, "default")

    def signature(self) -> str:
        """A short stable hash of the settings that define the sandbox itself.

        Two runs whose sandboxes would be created the same way share it, so it can key reuse;
        the API key, URL, timeout, reuse flag, backend and workspace do not enter it.
        """
        payload = {name: getattr(self, name) for name in _SIGNATURE_FIELDS}
        blob = json.dumps(["v1", payload], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def missing_api_key_message(settings: Settings) -> str | None:
    """Why a sandbox cannot be made for lack of an API key, or None when that is no obstacle."""
    if settings.backend != "daytona" or settings.api_key is not None:
        return None
    return (
        "no Daytona API key: set the DAYTONA_API_KEY environment variable (or pass "
        "--daytona-api-key), or run the sandboxes on the embedded server with "
        "--daytona-backend local (or set daytona_missing_key to skip or local for runs "
        "that have no key, such as pull requests from forks)"
    )
