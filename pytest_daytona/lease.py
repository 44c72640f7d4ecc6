"""The lease lifecycle kept from the reference driver: acquire, resume, release, destroy.

acquire = create (labels, a fresh unique name per attempt) and realize the workspace; if
anything after the create fails, the sandbox is deleted. resume = get; not found means the
lease expired; ``error`` + recoverable -> recover; unrecoverable -> a clear error; stopped or
archived -> start. release = stop when reusable (delete if the stop fails), else delete.
destroy = delete. Every SDK call with a timeout runs off the main thread, so the SDK's own
SIGALRM-based timeouts never cancel pytest-timeout's alarm.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import secrets
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel

from .settings import Settings

if TYPE_CHECKING:
    from daytona import (
        CreateSandboxFromImageParams,
        CreateSandboxFromSnapshotParams,
        Daytona,
        Sandbox,
    )

log = logging.getLogger(__name__)

T = TypeVar("T")
Scope = Literal["session", "function"]

LABEL_PREFIX = "pytest-daytona"
SIGNATURE_LABEL = f"{LABEL_PREFIX}-signature"
DEFAULT_HOME = "/home/daytona"


class LeaseError(Exception):
    """A sandbox could not be acquired, resumed or released."""


class SandboxWarning(UserWarning):
    """A sandbox could not be cleaned up as planned (it may be left behind)."""


class LeaseRecord(BaseModel):
    """What a sweeper needs to find and release a sandbox this run holds."""

    sandbox_id: str
    name: str
    workspace: str
    scope: Scope
    reuse: bool
    run_id: str
    worker: str
    signature: str


def build_labels(settings: Settings, *, run_id: str, worker: str, scope: Scope) -> dict[str, str]:
    """The sandbox's labels: the user's extra labels, then the plugin's own (which win)."""
    return {
        **settings.labels,
        LABEL_PREFIX: "true",
        f"{LABEL_PREFIX}-run-id": run_id,
        f"{LABEL_PREFIX}-worker": worker,
        f"{LABEL_PREFIX}-scope": scope,
        f"{LABEL_PREFIX}-reuse": "true" if settings.reuse else "false",
        SIGNATURE_LABEL: settings.signature(),
    }


def new_name(run_id: str, worker: str) -> str:
    """A fresh unique sandbox name for one create attempt (so a half-done create can be found)."""
    return f"pytest-{run_id[:8]}-{worker}-{secrets.token_hex(4)}"


def build_create_params(
    settings: Settings, labels: dict[str, str], name: str
) -> CreateSandboxFromImageParams | CreateSandboxFromSnapshotParams:
    """The SDK's create params, as the driver builds them (resources go with an image)."""
    from daytona import CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams, Resources

    common: dict[str, Any] = {
        "name": name,
        "labels": labels,
        "language": settings.language,
        "env_vars": dict(settings.env),
        "auto_stop_interval": settings.auto_stop_interval,
        "auto_archive_interval": settings.auto_archive_interval,
        "auto_delete_interval": settings.auto_delete_interval,
    }
    if settings.image:
        resources = None
        if any(v is not None for v in (settings.cpu, settings.memory, settings.disk, settings.gpu)):
            resources = Resources(
                cpu=settings.cpu, memory=settings.memory, disk=settings.disk, gpu=settings.gpu
            )
        return CreateSandboxFromImageParams(image=settings.image, resources=resources, **common)
    return CreateSandboxFromSnapshotParams(snapshot=settings.snapshot, **common)


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def off_main_thread(call: Callable[[], T], *, on_abandon: Callable[[T], object] | None = None) -> T:
    """Run `call` in a worker thread: the SDK then times out with a timer, not SIGALRM.

    If the caller stops waiting (Ctrl-C) while `call` still runs, `on_abandon` gets its
    result once it arrives, e.g. to delete a sandbox nobody will use.
    """
    if threading.current_thread() is not threading.main_thread():
        return call()
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pytest-daytona")
    future = _pool.submit(call)
    try:
        return future.result()
    except BaseException:
        if on_abandon is not None and not future.done():
            handler = on_abandon

            def finished(done: Future[T]) -> None:
                if not done.cancelled() and done.exception() is None:
                    handler(done.result())

            future.add_done_callback(finished)
        raise


def _seconds(settings: Settings) -> float:
    return max(1.0, settings.timeout)


def realize_workspace(sandbox: Sandbox, directory: str) -> str:
    """Create the workspace directory under the sandbox's work dir; its absolute path."""
    root = (sandbox.get_work_dir() or "").strip() or DEFAULT_HOME
    workspace = posixpath.join(root, directory)
    sandbox.fs.create_folder(workspace, "755")
    return workspace


def acquire(client: Daytona, settings: Settings, labels: dict[str, str], name: str) -> Sandbox:
    """Create a sandbox; on failure, delete whatever the attempt left behind, then re-raise."""
    params = build_create_params(settings, labels, name)
    try:
        return off_main_thread(
            lambda: client.create(params, timeout=_seconds(settings)),
            on_abandon=lambda sandbox: destroy(sandbox, settings),
        )
    except BaseException:
        _delete_by_name(client, name, settings)
        raise


def prepare(sandbox: Sandbox, settings: Settings) -> str:
    """Realize the workspace of a sandbox just acquired or resumed; delete it if that fails."""
    try:
        return realize_workspace(sandbox, settings.workspace)
    except BaseException:
        destroy(sandbox, settings)
        raise


def resume(client: Daytona, settings: Settings, sandbox_id: str) -> Sandbox | None:
    """The sandbox `sandbox_id` started again, or None when it no longer exists (expired)."""
    from daytona import DaytonaNotFoundError

    try:
        sandbox = client.get(sandbox_id)
    except DaytonaNotFoundError:
        return None
    ensure_started(sandbox, settings)
    return sandbox


def ensure_started(sandbox: Sandbox, settings: Settings) -> None:
    """Start, recover or wait for a sandbox so that it is ``started``."""
    state = state_of(sandbox)
    if state == "started":
        return
    timeout = _seconds(settings)
    if state == "error":
        if not sandbox.recoverable:
            raise LeaseError(
                f"Daytona sandbox {sandbox.id} ({sandbox.name}) is in an unrecoverable error "
                f"state: {sandbox.error_reason or 'unknown error'}"
            )
        off_main_thread(lambda: sandbox.recover(timeout))
    elif state in ("creating", "starting", "restoring", "pending_build", "building_snapshot"):
        off_main_thread(lambda: sandbox.wait_for_sandbox_start(timeout))
    else:
        if state in ("stopping", "archiving"):
            off_main_thread(lambda: sandbox.wait_for_sandbox_stop(timeout))
        off_main_thread(lambda: sandbox.start(timeout))


def release(sandbox: Sandbox, settings: Settings, *, reuse: bool) -> None:
    """Stop a reusable sandbox (delete it if the stop fails); delete any other."""
    from daytona import DaytonaNotFoundError

    try:
        sandbox.refresh_data()
    except DaytonaNotFoundError:
        return
    if not reuse:
        destroy(sandbox, settings)
        return
    if state_of(sandbox) == "stopped":
        return
    try:
        off_main_thread(lambda: sandbox.stop(_seconds(settings)))
    except Exception as exc:
        warnings.warn(
            SandboxWarning(
                f"could not stop Daytona sandbox {sandbox.id} for reuse ({exc}); deleting it"
            ),
            stacklevel=2,
        )
        destroy(sandbox, settings)


def destroy(sandbox: Sandbox, settings: Settings) -> None:
    """Delete a sandbox; a sandbox already gone is fine, any other failure is a warning."""
    from daytona import DaytonaNotFoundError

    try:
        off_main_thread(lambda: sandbox.delete(_seconds(settings)))
    except DaytonaNotFoundError:
        pass
    except Exception as exc:
        warnings.warn(
            SandboxWarning(f"could not delete Daytona sandbox {sandbox.id}: {exc}"), stacklevel=2
        )


def destroy_by_id(client: Daytona, settings: Settings, id_or_name: str) -> None:
    """Delete a sandbox known only by id or name, if it exists."""
    from daytona import DaytonaNotFoundError

    try:
        sandbox = client.get(id_or_name)
    except DaytonaNotFoundError:
        return
    destroy(sandbox, settings)


def _delete_by_name(client: Daytona, name: str, settings: Settings) -> None:
    with contextlib.suppress(Exception):
        destroy_by_id(client, settings, name)


def state_of(sandbox: Sandbox) -> str:
    """The state of `sandbox` as a plain string (e.g. ``"started"``)."""
    state = sandbox.state
    return str(getattr(state, "value", state))
