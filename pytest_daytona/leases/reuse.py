"""Reusable session sandboxes across runs and machines: found by labels, claimed by one run.

A reusable sandbox carries its reuse key and the settings signature as labels. A run claims it
by writing its run id into a claim label and reading it back after a short pause: of two runs
claiming at once, the one whose write landed last wins and the other makes its own sandbox.
Release stops the sandbox and then clears the claim. A claim on a sandbox that is not running
and older than a grace period is stale (its run died) and may be taken over.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING

from ..config.settings import Settings
from ..errors import BackendCallError, LeaseError, SandboxWarning
from . import create_params, lease
from .create_params import LABEL_PREFIX, SIGNATURE_LABEL

if TYPE_CHECKING:
    from daytona import Sandbox

    from ..api.client import Api

REUSE_KEY_LABEL = f"{LABEL_PREFIX}-reuse-key"
CLAIM_LABEL = f"{LABEL_PREFIX}-claimed-by"
CLAIMED_AT_LABEL = f"{LABEL_PREFIX}-claimed-at"
#: How long a claimer waits before reading its claim back.
CLAIM_SETTLE_SECONDS = 0.5
_RUNNING = ("started", "starting", "creating", "restoring")


def claim_labels(run_id: str) -> dict[str, str]:
    """Labels that claim a sandbox for run `run_id` now."""
    return {CLAIM_LABEL: run_id, CLAIMED_AT_LABEL: str(int(time.time()))}


def available(sandbox: Sandbox, *, grace: float, now: float | None = None) -> bool:
    """Unclaimed, or claimed by a run that is evidently gone (not running, claim too old)."""
    labels = sandbox.labels or {}
    if not labels.get(CLAIM_LABEL):
        return True
    try:
        claimed_at = float(labels.get(CLAIMED_AT_LABEL, "0"))
    except ValueError:
        claimed_at = 0.0
    age = (time.time() if now is None else now) - claimed_at
    return lease.state_of(sandbox) not in _RUNNING and age > grace


def list_labelled(api: Api, settings: Settings, labels: dict[str, str], what: str) -> list[Sandbox]:
    """Every sandbox carrying `labels` (all pages)."""
    from daytona import ListSandboxesQuery

    query = ListSandboxesQuery(labels=labels)
    return api.call(
        f"list the sandboxes of {what}",
        lambda a: list(api.client.list(query, request_timeout=a.limit)),
        settings,
    )


def candidates(api: Api, settings: Settings, key: str, cached_id: str | None) -> list[Sandbox]:
    """Sandboxes of reuse key `key`: the one remembered on this machine first, if it is one."""
    if cached_id:
        cached = lease.get(api, settings, cached_id)
        if cached is not None and (cached.labels or {}).get(REUSE_KEY_LABEL) == key:
            return [cached]
    return list_labelled(api, settings, {REUSE_KEY_LABEL: key}, f"reuse key {key}")


def set_labels(api: Api, sandbox: Sandbox, settings: Settings, labels: dict[str, str]) -> None:
    """Replace the labels of `sandbox`."""
    api.call(
        "set the labels of",
        lambda a: sandbox.set_labels(labels, request_timeout=a.limit),
        settings,
        target=lease.describe(sandbox),
    )


def claim(api: Api, sandbox: Sandbox, settings: Settings, run_id: str, *, grace: float) -> bool:
    """Try to claim `sandbox` for `run_id`; True when the claim held."""
    if not lease.refresh(api, sandbox, settings):  # a GET is authoritative, a list may be stale
        return False
    if not available(sandbox, grace=grace):
        return False
    set_labels(api, sandbox, settings, {**(sandbox.labels or {}), **claim_labels(run_id)})
    time.sleep(CLAIM_SETTLE_SECONDS)
    if not lease.refresh(api, sandbox, settings):
        return False
    return (sandbox.labels or {}).get(CLAIM_LABEL) == run_id


def find_and_claim(
    api: Api, settings: Settings, key: str, run_id: str, cached_id: str | None
) -> Sandbox | None:
    """A claimed, started sandbox of `key` made with these settings, or None.

    Available sandboxes of `key` made with other settings are destroyed on the way. With
    ``fresh`` every sandbox of `key` is, whatever its state or claim: the user asked for a
    new one.
    """
    grace = settings.timeout + 60
    signature = settings.signature()
    for sandbox in candidates(api, settings, key, cached_id):
        matches = (sandbox.labels or {}).get(SIGNATURE_LABEL) == signature
        if settings.fresh:
            lease.destroy(api, sandbox, settings)
            continue
        if not matches:
            if available(sandbox, grace=grace):
                lease.destroy(api, sandbox, settings)
            continue
        if claim(api, sandbox, settings, run_id, grace=grace):
            try:
                lease.ensure_started(api, sandbox, settings)
            except LeaseError as exc:
                raise LeaseError(f"{exc} (pass --daytona-fresh to replace it)") from None
            renew_ttl(api, sandbox, settings)
            return sandbox
    return None


def renew_ttl(api: Api, sandbox: Sandbox, settings: Settings) -> None:
    """Re-anchor the TTL of a resumed reusable sandbox from now (`create_params.default_ttl`)."""
    ttl = create_params.default_ttl(settings, "session")
    if not ttl:
        return
    try:
        api.call(
            "renew the TTL of",
            lambda a: sandbox.set_ttl(ttl, request_timeout=a.limit),
            settings,
            target=lease.describe(sandbox),
        )
    except BackendCallError as exc:  # the sandbox still works; only the safety net is older
        warnings.warn(SandboxWarning(str(exc)), stacklevel=2)


def release(api: Api, sandbox: Sandbox, settings: Settings) -> None:
    """Stop a reusable sandbox (delete it if that fails), then clear this run's claim."""
    lease.release(api, sandbox, settings, reuse=True)
    if not lease.refresh(api, sandbox, settings):
        return
    labels = dict(sandbox.labels or {})
    if labels.pop(CLAIM_LABEL, None) is not None:
        labels.pop(CLAIMED_AT_LABEL, None)
        set_labels(api, sandbox, settings, labels)
