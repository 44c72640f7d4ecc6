"""The end of the run: once every worker ended, release the run's session sandbox, whatever
leases crashed workers left, and anything else labelled with this run's id; drop the run dir.

Run by the controller (or the only process), or by the last xdist worker out when the
controller died. What is still held by the process itself is released before, by its
`SandboxSession`; a release that fails is reported through the same `attempt`/`failed` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..api.client import Api
from ..config.settings import Settings
from ..errors import BackendError
from ..leases import create_params, lease, reuse
from ..leases.keep import is_kept
from ..leases.lease import LeaseRecord
from ..leases.strays import Strays
from .coordination import RunDir

#: Run a release; record its failure for the end-of-run report. True when it succeeded.
ReleaseAttempt = Callable[[str, str, Callable[[], object]], bool]


def finish_run(
    run_dir: RunDir,
    settings: Settings,
    run_id: str,
    strays: Strays,
    *,
    api: Callable[[], Api],
    started: Callable[[], bool],
    release_session: Callable[[Api, LeaseRecord], None],
    attempt: ReleaseAttempt,
    failed: Callable[[str, str, Exception], None],
) -> None:
    """Release the session sandbox once (stop it for reuse, else delete it), every lease a
    worker left, then anything else labelled with `run_id`; drop `run_dir` whatever happens.
    `started`: whether this process built an SDK client (if not and no record is left, the
    run never made a sandbox)."""
    try:
        strays.finish()
        record = run_dir.read_session()
        leftovers = run_dir.leftover_leases()
        if record is None and not leftovers and not started():
            return  # this run never made a sandbox
        try:
            final = api().final()
        except BackendError as exc:  # no client can be had: report what is left
            for left in [*([record] if record else []), *leftovers]:
                failed(left.sandbox_id, left.name, exc)
            return
        kept: set[str] = set()
        if record is not None:
            release_session(final, record)
            if record.reuse:
                kept.add(record.sandbox_id)
        for left in leftovers:
            attempt(
                left.sandbox_id,
                left.name,
                partial(lease.destroy_by_id, final, settings, left.sandbox_id),
            )
            run_dir.remove_lease(left.sandbox_id)
        sweep(final, settings, run_id, kept, attempt)
    finally:
        run_dir.remove()


def sweep(
    api: Api, settings: Settings, run_id: str, kept: set[str], attempt: ReleaseAttempt
) -> None:
    """Delete every sandbox labelled with `run_id` that nothing keeps (late creates, leases
    whose records were lost)."""
    try:
        found = reuse.list_labelled(
            api, settings, {create_params.RUN_ID_LABEL: run_id}, f"run {run_id}"
        )
    except BackendError:
        return  # the API is down: what was not released is reported already
    for sandbox in found:
        if sandbox.id in kept or lease.state_of(sandbox) in ("destroyed", "destroying"):
            continue
        if (sandbox.labels or {}).get(reuse.REUSE_KEY_LABEL) or is_kept(sandbox):
            continue  # a reusable or kept sandbox this run made: kept on purpose
        attempt(sandbox.id, sandbox.name, partial(lease.destroy, api, sandbox, settings))
