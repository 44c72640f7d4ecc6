"""Reusable session sandboxes across runs and machines: found by labels, claimed by one run.

A reusable sandbox carries its reuse key and the settings signature as labels. A run claims it
by writing its run id into a claim label and reading it back after a short pause: of two runs
claiming at once, the one whose write landed last wins and the other makes its own sandbox.
Release stops the sandbox and then clears the claim. A claim on a sandbox that is not running
and older than a grace period is stale (its run died) and may be taken over.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from . import lease
from .lease import LABEL_PREFIX, SIGNATURE_LABEL
from .settings import Settings

if TYPE_CHECKING:
    from daytona import Daytona, Sandbox

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


def candidates(client: Daytona, key: str, cached_id: str | None) -> list[Sandbox]:
    """Sandboxes of reuse key `key`: the one remembered on this machine first, if it is one."""
    from daytona import DaytonaNotFoundError, ListSandboxesQuery

    if cached_id:
        try:
            cached = client.get(cached_id)
        except DaytonaNotFoundError:
            cached = None
        if cached is not None and (cached.labels or {}).get(REUSE_KEY_LABEL) == key:
            return [cached]
    return list(client.list(ListSandboxesQuery(labels={REUSE_KEY_LABEL: key})))


def claim(sandbox: Sandbox, run_id: str, *, grace: float) -> bool:
    """Try to claim `sandbox` for `run_id`; True when the claim held."""
    sandbox.refresh_data()  # a GET is authoritative, a listing may be stale
    if not available(sandbox, grace=grace):
        return False
    sandbox.set_labels({**(sandbox.labels or {}), **claim_labels(run_id)})
    time.sleep(CLAIM_SETTLE_SECONDS)
    sandbox.refresh_data()
    return (sandbox.labels or {}).get(CLAIM_LABEL) == run_id


def find_and_claim(
    client: Daytona, settings: Settings, key: str, run_id: str, cached_id: str | None
) -> Sandbox | None:
    """A claimed, started sandbox of `key` made with these settings, or None.

    Available sandboxes of `key` made with other settings are destroyed on the way, and with
    ``fresh`` all available ones are.
    """
    grace = settings.timeout + 60
    signature = settings.signature()
    for sandbox in candidates(client, key, cached_id):
        matches = (sandbox.labels or {}).get(SIGNATURE_LABEL) == signature
        if settings.fresh or not matches:
            if available(sandbox, grace=grace):
                lease.destroy(sandbox, settings)
            continue
        if claim(sandbox, run_id, grace=grace):
            try:
                lease.ensure_started(sandbox, settings)
            except lease.LeaseError as exc:
                raise lease.LeaseError(f"{exc} (pass --daytona-fresh to replace it)") from None
            return sandbox
    return None


def release(sandbox: Sandbox, settings: Settings) -> None:
    """Stop a reusable sandbox (delete it if that fails), then clear this run's claim."""
    from daytona import DaytonaNotFoundError

    lease.release(sandbox, settings, reuse=True)
    try:
        sandbox.refresh_data()
    except DaytonaNotFoundError:
        return
    labels = dict(sandbox.labels or {})
    if labels.pop(CLAIM_LABEL, None) is not None:
        labels.pop(CLAIMED_AT_LABEL, None)
        sandbox.set_labels(labels)
