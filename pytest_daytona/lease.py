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

import dataclasses
import math
import posixpath
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from pydantic import BaseModel

from .calls import Attempt, Caller, Retry
from .errors import BackendCallError, LeaseError, SandboxWarning
from .settings import Settings

if TYPE_CHECKING:
    from daytona import (
        CreateSandboxFromImageParams,
        CreateSandboxFromSnapshotParams,
        Daytona,
        Sandbox,
    )

    from .strays import Strays

__all__ = ["LeaseError", "SandboxWarning"]

T = TypeVar("T")
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


@dataclass
class Api:
    """The SDK client and the `Caller` that gives each of its calls a deadline and retries."""

    client: Daytona
    caller: Caller
    circuit: bool = True

    def final(self) -> Api:
        """This API for the end of the run: every call is tried even when the API stopped
        answering earlier (concurrent releases keep that bounded by one deadline)."""
        return dataclasses.replace(self, circuit=False)

    def call(
        self,
        operation: str,
        fn: Callable[[Attempt], T],
        settings: Settings,
        *,
        target: str | None = None,
        retry: Retry = "idempotent",
        not_found_ok: bool = False,
        **kwargs: Any,
    ) -> T:
        """`fn` with the deadline (`timeout`) and retry budget of `settings`; with
        `not_found_ok` a 404 is raised as the SDK's `DaytonaNotFoundError` for the caller."""
        __tracebackhide__ = True
        from daytona import DaytonaNotFoundError

        result: T = self.caller.call(
            operation,
            fn,
            timeout=settings.timeout,
            budget=settings.retry_budget,
            target=target,
            retry=retry,
            passthrough=(DaytonaNotFoundError,) if not_found_ok else (),
            use_circuit=self.circuit,
            **kwargs,
        )
        return result


def describe(sandbox: Sandbox | str) -> str:
    """``sandbox <id> (<name>)`` for messages."""
    if isinstance(sandbox, str):
        return f"sandbox {sandbox}"
    return f"sandbox {sandbox.id} ({sandbox.name})"


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


def _limit(attempt: Attempt) -> float:
    """The SDK's ``timeout=`` for one attempt (it counts whole seconds; 0 would mean none)."""
    return max(1.0, attempt.limit)


def acquire(
    api: Api,
    settings: Settings,
    labels: dict[str, str],
    name: Callable[[], str],
    *,
    strays: Strays,
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
