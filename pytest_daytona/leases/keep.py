"""Kept sandboxes: labelled and stopped instead of deleted, for a look after the run.

A kept sandbox's lease record is dropped like a deleted one's; the end-of-run sweep leaves
sandboxes with `KEPT_LABEL` alone, and a TTL counted from when it was kept bounds its life.
"""

from __future__ import annotations

import warnings
import weakref
from typing import TYPE_CHECKING, Literal

from ..errors import BackendCallError, SandboxWarning
from . import lease, reuse
from .create_params import LABEL_PREFIX

if TYPE_CHECKING:
    from daytona import Sandbox

    from ..api.client import Api
    from ..config.settings import Settings
    from ..handle.sandbox import DaytonaSandbox

KEPT_LABEL = f"{LABEL_PREFIX}-kept"
#: Minutes a kept sandbox lives from when it was kept, unless the ``ttl`` setting says.
KEPT_TTL = 24 * 60
_POLICIES: weakref.WeakKeyDictionary[DaytonaSandbox, str] = weakref.WeakKeyDictionary()


def set_policy(sandbox: DaytonaSandbox, settings: Settings) -> None:
    """Remember the ``keep`` setting `sandbox` was made with (for `policy`)."""
    _POLICIES[sandbox] = settings.keep


def policy(sandbox: DaytonaSandbox) -> str:
    """The ``keep`` setting of `sandbox`: ``never``, ``failed`` or ``always``."""
    return _POLICIES.get(sandbox, "never")


def kept_ttl(settings: Settings) -> int:
    """Minutes a kept sandbox lives from now: the ``ttl`` setting (0: no TTL), else a day."""
    return settings.ttl if settings.ttl is not None else KEPT_TTL


def is_kept(sandbox: Sandbox) -> bool:
    """Whether `sandbox` carries the kept label."""
    return (sandbox.labels or {}).get(KEPT_LABEL) == "true"


def keep(api: Api, sandbox: Sandbox, settings: Settings) -> Literal["kept", "deleted"]:
    """Label `sandbox` kept, give it `kept_ttl` minutes from now, then stop it. One that
    cannot be labelled is deleted (unlabelled, the end-of-run sweep would delete it anyway);
    one that cannot be stopped stays running until Daytona's auto-stop, and one whose TTL
    could not be set keeps the TTL it was created with. Raises `BackendCallError` when it
    could not be deleted. Returns how it ended."""
    target = lease.describe(sandbox)
    try:
        reuse.set_labels(api, sandbox, settings, {**(sandbox.labels or {}), KEPT_LABEL: "true"})
    except BackendCallError as exc:
        warnings.warn(
            SandboxWarning(f"could not label {target} kept ({exc}); deleting it"), stacklevel=2
        )
        lease.destroy(api, sandbox, settings)
        return "deleted"
    ttl = kept_ttl(settings)
    if ttl:
        try:
            api.call(
                "set the TTL of",
                lambda a: sandbox.set_ttl(ttl, request_timeout=a.limit),
                settings,
                target=target,
            )
        except BackendCallError as exc:  # its TTL from creation still bounds its life
            warnings.warn(SandboxWarning(f"kept {target}: {exc}"), stacklevel=2)
    try:
        lease.stop(api, sandbox, settings)
    except BackendCallError as exc:
        warnings.warn(SandboxWarning(f"kept {target} not stopped: {exc}"), stacklevel=2)
    return "kept"
