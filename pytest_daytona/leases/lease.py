"""The lease lifecycle kept from the reference driver: acquire, resume, release, destroy.

acquire = create (labels, a fresh unique name per attempt, a TTL) and realize the workspace;
if anything after the create fails, the sandbox is deleted. A create that failed in a way it
may still complete (a lost answer, a gateway timeout) is looked up by its name before the next
attempt, and its name stays watched (`Strays`) so that a late completion is deleted too.
resume = get; not found means the lease expired; ``error`` + recoverable -> recover;
unrecoverable -> a clear error; stopped or archived -> start. release = stop when reusable
(delete if the stop fails), else delete: no GET first, a sandbox already gone counts as
deleted. Every call goes through `Api.call`: a deadline, retries and a short error.
"""

from __future__ import annotations

import posixpath
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from pydantic import BaseModel

from ..api.calls import Attempt
from ..api.client import Api
from ..config.settings import Settings
from ..errors import BackendCallError, LeaseError, SandboxWarning
from .create_params import DEFAULT_HOME, CreateParams, Scope, build_create_params

if TYPE_CHECKING:
    from daytona import (
        Sandbox,
    )


T = TypeVar("T")


class StrayWatch(Protocol):
    """What `acquire` needs of the names whose create may still complete (`strays.Strays`)."""

    def watch(self, name: str) -> None: ...
    def check(self, name: str) -> bool: ...
    def delete_late(self, sandbox: Sandbox) -> None: ...


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


def describe(sandbox: Sandbox | str) -> str:
    """``sandbox <id> (<name>)`` for messages."""
    if isinstance(sandbox, str):
        return f"sandbox {sandbox}"
    return f"sandbox {sandbox.id} ({sandbox.name})"


def _limit(attempt: Attempt) -> float:
    """The SDK's ``timeout=`` for one attempt (it counts whole seconds; 0 would mean none)."""
    return max(1.0, attempt.limit)


def acquire(
    api: Api,
    settings: Settings,
    labels: dict[str, str],
    name: Callable[[], str],
    *,
    strays: StrayWatch,
    scope: Scope = "function",
    adjust: Callable[[CreateParams], object] | None = None,
) -> Sandbox:
    """Create a sandbox, a fresh `name()` per attempt; `adjust` may change the params first
    (in the calling thread). An attempt that failed is looked up by its name before the next
    one and deleted if it exists; its name stays watched."""
    names: list[str] = []
    params = build_create_params(settings, labels, "", scope)
    if adjust is not None:
        adjust(params)

    def create(attempt: Attempt) -> Sandbox:
        names.append(name())
        named = params.model_copy(update={"name": names[-1]})
        return api.client.create(named, timeout=_limit(attempt))

    def sweep_last() -> None:
        strays.watch(names[-1])
        strays.check(names[-1])

    try:
        sandbox = api.call(
            "create sandbox",
            create,
            settings,
            before_retry=sweep_last,
            on_abandon=lambda late: strays.delete_late(late),
        )
    except BackendCallError as exc:
        if names and not _surely_not_created(exc):
            strays.watch(names[-1])
            strays.check(names[-1])
        raise
    except BaseException:  # Ctrl-C: no blocking lookup now; the end of the run looks again
        if names:
            strays.watch(names[-1])
        raise
    return sandbox


def _surely_not_created(exc: BackendCallError) -> bool:
    """A client error (bad params, auth, quota) says the create was refused outright."""
    return exc.status is not None and 400 <= exc.status < 500 and exc.status != 408


def realize_workspace(api: Api, sandbox: Sandbox, settings: Settings) -> str:
    """Create the workspace directory under the sandbox's work dir; its absolute path."""
    target = describe(sandbox)
    root = api.call(
        "read the work dir of", lambda _: sandbox.get_work_dir(), settings, target=target
    )
    workspace = posixpath.join((root or "").strip() or DEFAULT_HOME, settings.workspace)
    api.call(
        "create the workspace in",
        lambda _: sandbox.fs.create_folder(workspace, "755"),
        settings,
        target=target,
    )
    return workspace


def prepare(api: Api, sandbox: Sandbox, settings: Settings) -> str:
    """Realize the workspace of a sandbox just acquired or resumed; delete it if that fails."""
    try:
        return realize_workspace(api, sandbox, settings)
    except BaseException:
        destroy_quietly(api, sandbox, settings)
        raise


def resume(api: Api, settings: Settings, sandbox_id: str) -> Sandbox | None:
    """The sandbox `sandbox_id` started again, or None when it no longer exists (expired)."""
    sandbox = get(api, settings, sandbox_id)
    if sandbox is not None:
        ensure_started(api, sandbox, settings)
    return sandbox


def get(api: Api, settings: Settings, id_or_name: str) -> Sandbox | None:
    """The sandbox `id_or_name`, or None when it does not exist."""
    from daytona import DaytonaNotFoundError

    try:
        return api.call(
            "look up",
            lambda a: api.client.get(id_or_name, request_timeout=a.limit),
            settings,
            target=describe(id_or_name),
            not_found_ok=True,
        )
    except DaytonaNotFoundError:
        return None


def _unless_gone(
    api: Api, operation: str, fn: Callable[[Attempt], object], sandbox: Sandbox, settings: Settings
) -> bool:
    """`fn` through `api`; False when the sandbox no longer exists (a 404)."""
    from daytona import DaytonaNotFoundError

    try:
        api.call(operation, fn, settings, target=describe(sandbox), not_found_ok=True)
    except DaytonaNotFoundError:
        return False
    return True


def refresh(api: Api, sandbox: Sandbox, settings: Settings) -> bool:
    """Re-read `sandbox` from the API; False when it no longer exists."""
    return _unless_gone(
        api, "refresh", lambda a: sandbox.refresh_data(request_timeout=a.limit), sandbox, settings
    )


def ensure_started(api: Api, sandbox: Sandbox, settings: Settings) -> None:
    """Start, recover or wait for a sandbox so that it is ``started``."""
    state = state_of(sandbox)
    if state == "started":
        return
    target = describe(sandbox)
    if state == "error":
        if not sandbox.recoverable:
            raise LeaseError(
                f"Daytona sandbox {sandbox.id} ({sandbox.name}) is in an unrecoverable error "
                f"state: {sandbox.error_reason or 'unknown error'}"
            )
        api.call("recover", lambda a: sandbox.recover(_limit(a)), settings, target=target)
    elif state in ("creating", "starting", "restoring", "pending_build", "building_snapshot"):
        api.call(
            "wait for the start of",
            lambda a: sandbox.wait_for_sandbox_start(_limit(a)),
            settings,
            target=target,
        )
    else:
        if state in ("stopping", "archiving"):
            api.call(
                "wait for the stop of",
                lambda a: sandbox.wait_for_sandbox_stop(_limit(a)),
                settings,
                target=target,
            )
        api.call("start", lambda a: sandbox.start(_limit(a)), settings, target=target)


def stop(api: Api, sandbox: Sandbox, settings: Settings) -> bool:
    """Stop `sandbox` and wait until it is stopped; False when it no longer exists."""
    return _unless_gone(api, "stop", lambda a: sandbox.stop(_limit(a)), sandbox, settings)


def release(api: Api, sandbox: Sandbox, settings: Settings, *, reuse: bool) -> None:
    """Stop a reusable sandbox (delete it if the stop fails); delete any other. Raises
    `BackendCallError` when the sandbox could not be deleted."""
    if not reuse:
        destroy(api, sandbox, settings)
        return
    try:
        stop(api, sandbox, settings)
    except BackendCallError as exc:
        warnings.warn(
            SandboxWarning(f"could not stop {describe(sandbox)} for reuse ({exc}); deleting it"),
            stacklevel=2,
        )
        destroy(api, sandbox, settings)


def destroy(api: Api, sandbox: Sandbox, settings: Settings) -> None:
    """Delete `sandbox`; one already gone counts as deleted. Raises `BackendCallError`."""
    _unless_gone(api, "delete", lambda a: sandbox.delete(_limit(a)), sandbox, settings)


def destroy_quietly(api: Api, sandbox: Sandbox, settings: Settings) -> None:
    """`destroy`, turning a failure into a `SandboxWarning` (used on error paths)."""
    try:
        destroy(api, sandbox, settings)
    except BackendCallError as exc:
        warnings.warn(SandboxWarning(str(exc)), stacklevel=2)


def destroy_by_id(api: Api, settings: Settings, id_or_name: str) -> bool:
    """Delete a sandbox known only by id or name; False when it did not exist."""
    sandbox = get(api, settings, id_or_name)
    if sandbox is None:
        return False
    destroy(api, sandbox, settings)
    return True


def state_of(sandbox: Sandbox) -> str:
    """The state of `sandbox` as a plain string (e.g. ``"started"``)."""
    state = sandbox.state
    return str(getattr(state, "value", state))
