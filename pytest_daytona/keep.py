"""Kept sandboxes: labelled and stopped instead of deleted, for a look after the run.

A kept sandbox's lease record is dropped like a deleted one's; the end-of-run sweep leaves
sandboxes with `KEPT_LABEL` alone, and their TTL still bounds their life.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from . import lease, reuse
from .errors import BackendCallError, SandboxWarning
from .lease import LABEL_PREFIX

if TYPE_CHECKING:
    from daytona import Sandbox

    from .lease import Api
    from .settings import Settings

KEPT_LABEL = f"{LABEL_PREFIX}-kept"


def is_kept(sandbox: Sandbox) -> bool:
    """Whether `sandbox` carries the kept label."""
    return (sandbox.labels or {}).get(KEPT_LABEL) == "true"


def keep(api: Api, sandbox: Sandbox, settings: Settings) -> None:
    """Label `sandbox` kept, then stop it. One that cannot be labelled is deleted (unlabelled,
    the end-of-run sweep would delete it anyway); one that cannot be stopped stays running
    until Daytona's auto-stop. Raises `BackendCallError` when it could not be deleted."""
    try:
        reuse.set_labels(api, sandbox, settings, {**(sandbox.labels or {}), KEPT_LABEL: "true"})
    except BackendCallError as exc:
        warnings.warn(
            SandboxWarning(f"could not label {lease.describe(sandbox)} kept ({exc}); deleting it"),
            stacklevel=2,
        )
        lease.destroy(api, sandbox, settings)
        return
    try:
        lease.stop(api, sandbox, settings)
    except BackendCallError as exc:
        message = f"kept {lease.describe(sandbox)} not stopped: {exc}"
        warnings.warn(SandboxWarning(message), stacklevel=2)
