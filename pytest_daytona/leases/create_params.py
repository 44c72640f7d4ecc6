"""What a create sends: the sandbox's labels and name, its TTL and auto-stop interval, and the
SDK's create params built from the settings."""

from __future__ import annotations

import math
import secrets
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ..config.settings import Settings

if TYPE_CHECKING:
    from daytona import CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams

Scope = Literal["session", "function"]
CreateParams: TypeAlias = "CreateSandboxFromImageParams | CreateSandboxFromSnapshotParams"

LABEL_PREFIX = "pytest-daytona"
SIGNATURE_LABEL = f"{LABEL_PREFIX}-signature"
RUN_ID_LABEL = f"{LABEL_PREFIX}-run-id"
DEFAULT_HOME = "/home/daytona"
#: Default TTLs in minutes (see `default_ttl`).
SESSION_TTL = 24 * 60
REUSE_TTL = 7 * 24 * 60
MIN_FUNCTION_TTL = 60
#: Daytona's own default auto-stop interval, in minutes.
AUTO_STOP_MINUTES = 15


def build_labels(settings: Settings, *, run_id: str, worker: str, scope: Scope) -> dict[str, str]:
    """The sandbox's labels: the user's extra labels, then the plugin's own (which win)."""
    return {
        **settings.labels,
        LABEL_PREFIX: "true",
        RUN_ID_LABEL: run_id,
        f"{LABEL_PREFIX}-worker": worker,
        f"{LABEL_PREFIX}-scope": scope,
        f"{LABEL_PREFIX}-reuse": "true" if settings.reuse else "false",
        SIGNATURE_LABEL: settings.signature(),
    }


def new_name(run_id: str, worker: str) -> str:
    """A fresh unique sandbox name for one create attempt (so a half-done create can be found)."""
    return f"pytest-{run_id[:8]}-{worker}-{secrets.token_hex(4)}"


def default_ttl(settings: Settings, scope: Scope) -> int:
    """Minutes after which Daytona destroys the sandbox whatever happens to this run.

    The ``ttl`` setting wins (0: none). Otherwise a function-scoped sandbox gets ten times the
    ``timeout`` (at least an hour), the session sandbox a day, a reused one a week (renewed on
    each resume, so a reuse key nobody uses any more expires).
    """
    if settings.ttl is not None:
        return settings.ttl
    if scope == "session":
        return REUSE_TTL if settings.reuse else max(SESSION_TTL, _minutes(10 * settings.timeout))
    return max(MIN_FUNCTION_TTL, _minutes(10 * settings.timeout))


def default_auto_stop(settings: Settings) -> int:
    """Idle minutes before Daytona stops the sandbox: the setting, else Daytona's 15 minutes
    or twice the ``timeout`` when that is longer (a long command must not be stopped)."""
    if settings.auto_stop_interval is not None:
        return settings.auto_stop_interval
    return max(AUTO_STOP_MINUTES, _minutes(2 * settings.timeout))


def _minutes(seconds: float) -> int:
    return math.ceil(seconds / 60)


def build_create_params(
    settings: Settings, labels: dict[str, str], name: str, scope: Scope = "function"
) -> CreateParams:
    """The SDK's create params, as the driver builds them (resources go with an image)."""
    from daytona import CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams, Resources

    ttl = default_ttl(settings, scope)
    common: dict[str, Any] = {
        "name": name,
        "labels": labels,
        "language": settings.language,
        "env_vars": dict(settings.env),
        "auto_stop_interval": default_auto_stop(settings),
        "auto_archive_interval": settings.auto_archive_interval,
        "auto_delete_interval": settings.auto_delete_interval,
        "ttl_minutes": ttl or None,
    }
    if settings.image:
        resources = None
        if any(v is not None for v in (settings.cpu, settings.memory, settings.disk, settings.gpu)):
            resources = Resources(
                cpu=settings.cpu, memory=settings.memory, disk=settings.disk, gpu=settings.gpu
            )
        return CreateSandboxFromImageParams(image=settings.image, resources=resources, **common)
    return CreateSandboxFromSnapshotParams(snapshot=settings.snapshot, **common)
