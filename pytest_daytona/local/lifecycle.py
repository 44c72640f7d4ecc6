"""The sandbox state machine, its transition delay, and the reaper (TTL and intervals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .builds.builder import Builder, BuildFailed
from .builds.logs import BuildLog
from .errors import ApiError
from .images.root import ImageUse
from .state.records import CreateSandboxBody, SandboxRecord, State, iso_now, new_sandbox_id
from .state.rules import OPS, check_resize, resolve_auto_archive
from .state.snapshots import Snapshots
from .state.store import Store
from .state.volumes import Volumes

log = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


class Lifecycle:
    """Owns every state change of every sandbox: persists it and announces it.

    `transition_delay` seconds pass in each transitional state (creating, starting, stopping,
    destroying), so clients see the same two-step changes as on Daytona. `minute` is how many
    seconds one Daytona "minute" of the TTL and the auto-stop/archive/delete intervals lasts
    (60 normally; tests shrink it). `halt` ends a sandbox's processes; it is awaited before the
    sandbox leaves ``started``, so no client sees it stopped while they still run.
    """

    def __init__(
        self,
        store: Store,
        emit: Emit,
        toolbox_url: Callable[[], str],
        *,
        transition_delay: float = 0.0,
        minute: float = 60.0,
        halt: Callable[[str], Awaitable[None]] | None = None,
        builder: Builder | None = None,
        default_image: str | None = None,
    ) -> None:
        self.store = store
        self._emit = emit
        self._halt = halt
        self._toolbox_url = toolbox_url
        self.transition_delay = transition_delay
        self.minute = minute
        self.creates = 0
        self.snapshots = Snapshots(store, minute=minute)
        self.builder = builder
        self.default_image = default_image
        #: Logs of the builds of sandboxes created from an image, by sandbox id.
        self.build_logs: dict[str, BuildLog] = {}
        self.volumes = Volumes(store)
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None

    def dto(self, record: SandboxRecord) -> dict[str, Any]:
        """The record as the REST API returns it."""
        return record.to_api(self._toolbox_url(), minute=self.minute)

    def lookup(self, id_or_name: str) -> SandboxRecord:
        """A live sandbox or a 404 in Daytona's shape."""
        record = self.store.get(id_or_name)
        if record is None:
            raise ApiError(404, f"Sandbox with ID or name {id_or_name} not found")
        return record

    async def create(self, body: CreateSandboxBody) -> SandboxRecord:
        """Record a new sandbox and start it (after the transition delay, if any)."""
        if body.snapshot and body.build_info:
            raise ApiError(400, "Cannot specify both snapshot and buildInfo")
        sandbox_id = new_sandbox_id()
        name = body.name or sandbox_id
        if self.store.get(name) is not None:
            raise ApiError(409, f"Sandbox with name {name} already exists")
        dockerfile_text = body.build_info.dockerfile_content if body.build_info else None
        if dockerfile_text is None and not body.snapshot and self.default_image:
            dockerfile_text = f"FROM {self.default_image}\n"
        snapshot = None if dockerfile_text else self.snapshots.usable(body.snapshot)
        snapshot_image = snapshot.image if snapshot is not None else None
        volumes = self.volumes.resolve_mounts(body.volumes)
        linked = self._linked(body)
        record = SandboxRecord(
            id=sandbox_id,
            name=name,
            snapshot=None if snapshot is None else snapshot.name,
            user=body.user or "daytona",
            env=body.env,
            labels=body.labels,
            public=bool(body.public),
            network_block_all=bool(body.network_block_all),
            network_allow_list=body.network_allow_list or None,
            domain_allow_list=body.domain_allow_list or None,
            volumes=volumes,
            target=body.target or "local",
            cpu=body.cpu or (snapshot.cpu if snapshot else 1),
            memory=body.memory or (snapshot.mem if snapshot else 1),
            disk=body.disk or (snapshot.disk if snapshot else 3),
            gpu=body.gpu or 0,
            build_info=body.build_info,
            linked_sandbox_id=None if linked is None else linked.id,
            image=snapshot_image,
        )
        for field in ("auto_stop_interval", "auto_archive_interval", "auto_delete_interval"):
            value = getattr(body, field)
            if value is not None:
                setattr(record, field, value)
        record.auto_archive_interval = resolve_auto_archive(record.auto_archive_interval)
        if body.ttl_minutes:
            record.set_ttl(body.ttl_minutes)
        hashes = (body.build_info.context_hashes if body.build_info else None) or []
        if dockerfile_text is not None:
            record.image = self._cached_image(dockerfile_text, hashes)
        self.store.add(record)
        self.creates += 1
        if dockerfile_text is not None and record.image is None:
            await self._build_first(record, dockerfile_text, hashes)
            return record
        await self._announce_new(record)
        return record

    def _cached_image(self, text: str, hashes: list[str]) -> ImageUse | None:
        """The image when it and all its steps are cached (no build, no network)."""
        if self.builder is None:
            raise ApiError(400, "this local server builds no images (it has no image store)")
        return self.builder.cached_build(text, hashes)

    async def _build_first(self, record: SandboxRecord, text: str, hashes: list[str]) -> None:
        """``pending_build`` while it pulls or builds, then ``started`` (or ``build_failed``).
        The answer comes at once, as Daytona's does: the SDK then streams the build logs."""
        record.set_state(State.PENDING_BUILD)
        self.store.save(record)
        log = self.build_logs[record.id] = BuildLog()
        await self._emit("sandbox.created", self.dto(record))
        self._spawn(self._build_then_start(record, text, hashes, log))

    async def _build_then_start(
        self, record: SandboxRecord, text: str, hashes: list[str], log: BuildLog
    ) -> None:
        assert self.builder is not None
        try:
            image = await self.builder.build(text, hashes, log.append)
        except BuildFailed as exc:
            log.append(f"Build failed: {exc}")
            if self.store.get(record.id) is record:
                record.error_reason = str(exc)
                await self._set(record, State.BUILD_FAILED)
            return
        finally:
            log.close()
        if self.store.get(record.id) is not record or record.state is not State.PENDING_BUILD:
            return  # deleted while it built
        record.image = image
        await self._transition(record, State.STARTING, State.STARTED)

    async def fork(self, source: SandboxRecord, name: str | None) -> SandboxRecord:
        """A new sandbox with a copy of `source`'s files and settings, started."""
        if source.state is not State.STARTED:
            raise ApiError(400, "Sandbox must be in started state to fork")
        if source.gpu > 0:
            raise ApiError(422, "Forking is not supported for GPU sandboxes")
        sandbox_id = new_sandbox_id()
        if name and self.store.get(name) is not None:
            raise ApiError(409, "Sandbox with this name already exists")
        record = source.model_copy(
            deep=True,
            update={
                "id": sandbox_id,
                "name": name or sandbox_id,
                "state": State.CREATING,
                "error_reason": None,
                "recoverable": None,
                "ttl_minutes": 0,
                "ttl_anchor_ts": None,
            },
        )
        record.created_at = record.updated_at = iso_now()
        record.touch()
        if self.transition_delay:
            await self._set(source, State.FORKING)
        try:
            await asyncio.to_thread(self.store.copy_files, source.id, sandbox_id)
        finally:
            await self._settle_fork(source)
        self.store.add(record, files_ready=True)
        self.creates += 1
        await self._announce_new(record)
        return record

    async def _settle_fork(self, source: SandboxRecord) -> None:
        # A delete or a forced error while the files were copied wins.
        if source.state is State.FORKING and self.store.get(source.id) is source:
            await self._set(source, State.STARTED)

    async def _announce_new(self, record: SandboxRecord) -> None:
        """Send ``sandbox.created`` and move the new sandbox on to ``started``.

        Without a transition delay the sandbox is started before any event goes out, so every
        event carries the state the create answer has: the SDK handles each event in a thread
        of its own, and a ``creating`` event handled after the answer would turn a started
        sandbox back into a creating one.
        """
        if self.transition_delay:
            await self._emit("sandbox.created", self.dto(record))
            await self._transition(record, State.CREATING, State.STARTED)
            return
        record.set_state(State.STARTED)
        self.store.save(record)
        await self._emit("sandbox.created", self.dto(record))
        await self._announce(record, State.CREATING)

    def _linked(self, body: CreateSandboxBody) -> SandboxRecord | None:
        """The sandbox `body` links to, checked as the API checks it (sandbox.service.ts
        `resolveLinkedSandbox`, v0.190.0)."""
        if not body.linked_sandbox:
            return None
        if body.auto_delete_interval != 0:
            raise ApiError(400, "Linked sandboxes must be ephemeral (set autoDeleteInterval to 0)")
        linked = self.lookup(body.linked_sandbox)
        if linked.linked_sandbox_id:
            raise ApiError(
                400,
                f"Linked sandbox {linked.id} is itself linked to another sandbox; chained links "
                "are not allowed",
            )
        if linked.state not in (State.STARTED, State.STOPPED):
            raise ApiError(
                400,
                "Linked sandbox must be in STARTED or STOPPED state with an assigned runner "
                f"(current: {linked.state.value})",
            )
        return linked

    async def change(self, record: SandboxRecord, op: str) -> SandboxRecord:
        """Start, stop, recover, archive or pause a sandbox, as the REST endpoints ask."""
        allowed, transitional, settled = OPS[op]
        if op == "pause" and record.state is not State.STARTED:
            raise ApiError(400, "Sandbox must be in started state to pause")
        if op == "start" and record.state is State.PAUSED:
            transitional = State.RESUMING
        if record.state not in allowed:
            raise ApiError(
                409 if record.state is not State.ERROR else 400,
                f"Sandbox {record.id} cannot {op} in state {record.state.value}",
            )
        if op == "recover" and not record.recoverable:
            raise ApiError(400, f"Sandbox {record.id} is not recoverable: {record.error_reason}")
        if record.state is settled:
            return record
        record.error_reason = None
        record.recoverable = None
        await self._transition(record, transitional, settled)
        return record

    async def resize(
        self, record: SandboxRecord, cpu: int | None, memory: int | None, disk: int | None
    ) -> SandboxRecord:
        """Record new resources, checked as the API checks a resize."""
        check_resize(record, cpu, memory, disk)
        record.cpu = cpu or record.cpu
        record.memory = memory or record.memory
        record.disk = disk or record.disk
        if not self.transition_delay:
            record.updated_at = iso_now()
            self.store.save(record)
            return record
        await self._transition(record, State.RESIZING, record.state)
        return record

    async def delete(self, record: SandboxRecord) -> dict[str, Any]:
        """Destroy a sandbox; returns its last DTO (state ``destroying`` or ``destroyed``)."""
        if record.state in (State.DESTROYING, State.DESTROYED):
            return self.dto(record)
        await self._set(record, State.DESTROYING)
        if not self.transition_delay:
            await self._finish_delete(record)  # instant: gone before the answer, countable
            return self.dto(record)
        snapshot = self.dto(record)
        self._spawn(self._finish_delete(record))
        return snapshot

    def set_ttl(self, record: SandboxRecord, minutes: int) -> None:
        """Destroy the sandbox `minutes` from now, whatever its state (0 disables the TTL)."""
        if minutes < 0:
            raise ApiError(400, "TTL must be a non-negative integer")
        record.set_ttl(minutes)
        self.store.save(record)

    async def fail(self, record: SandboxRecord, *, reason: str, recoverable: bool) -> None:
        """Force a sandbox into the error state (fault injection)."""
        record.error_reason = reason
        record.recoverable = recoverable
        await self._set(record, State.ERROR)

    async def _finish_delete(self, record: SandboxRecord) -> None:
        if self.transition_delay:
            await asyncio.sleep(self.transition_delay)
        await self._set(record, State.DESTROYED)
        self.store.purge(record)

    async def _transition(self, record: SandboxRecord, transitional: State, settled: State) -> None:
        if not self.transition_delay:
            await self._set(record, settled)
            return
        await self._set(record, transitional)
        self._spawn(self._settle(record, transitional, settled))

    async def _settle(self, record: SandboxRecord, transitional: State, settled: State) -> None:
        await asyncio.sleep(self.transition_delay)
        # A delete or a forced error in the meantime wins over the pending transition.
        if record.state is transitional and self.store.get(record.id) is record:
            await self._set(record, settled)

    async def _set(self, record: SandboxRecord, state: State) -> None:
        if state is not State.STARTED and self._halt is not None:
            await self._halt(record.id)
        old = record.state
        record.set_state(state)
        if state is not State.DESTROYED:
            self.store.save(record)
        await self._announce(record, old)

    async def _announce(self, record: SandboxRecord, old: State) -> None:
        state = record.state
        await self._emit(
            "sandbox.state.updated",
            {"sandbox": self.dto(record), "oldState": old.value, "newState": state.value},
        )

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run `coro` in the background; `close` waits for it."""
        self._spawn(coro)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- reaper ---------------------------------------------------------------------------

    def start_reaper(self, tick: float) -> None:
        """Begin honouring TTLs and the auto-stop, auto-archive and auto-delete intervals."""
        self._reaper = asyncio.ensure_future(self._reap_forever(tick))

    async def _reap_forever(self, tick: float) -> None:
        while True:
            await asyncio.sleep(tick)
            try:
                await self.reap()
            except Exception:  # the reaper must outlive one bad record
                log.exception("sandbox reaper failed")

    async def reap(self) -> None:
        """One pass: destroy expired sandboxes (any state), stop idle ones, delete or archive
        stopped ones whose time came."""
        now = time.time()
        for record in list(self.store):
            destroy_at = record.destroy_at(self.minute)
            if destroy_at is not None and now >= destroy_at:
                await self.delete(record)
                continue
            idle = now - record.last_activity_ts
            if (
                record.state is State.STARTED
                and record.auto_stop_interval > 0
                and idle >= record.auto_stop_interval * self.minute
            ):
                await self.change(record, "stop")
            if record.state is State.STOPPED and record.stopped_ts is not None:
                stopped_for = now - record.stopped_ts
                if 0 <= record.auto_delete_interval * self.minute <= stopped_for:
                    await self.delete(record)
                elif 0 < record.auto_archive_interval * self.minute <= stopped_for:
                    await self.change(record, "archive")

    async def close(self) -> None:
        """Cancel the reaper and finish pending transitions."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
