"""The sandbox state machine, its transition delay, and the reaper (TTL and intervals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import ApiError
from .records import CreateSandboxBody, SandboxRecord, State, new_sandbox_id
from .store import Store

log = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]

#: Per-operation: states it may start from, the transitional state, the settled state.
_OPS: dict[str, tuple[frozenset[State], State, State]] = {
    "start": (
        frozenset({State.STOPPED, State.ARCHIVED, State.STARTED}),
        State.STARTING,
        State.STARTED,
    ),
    "stop": (frozenset({State.STARTED, State.STOPPED}), State.STOPPING, State.STOPPED),
    "recover": (frozenset({State.ERROR}), State.STARTING, State.STARTED),
    "archive": (frozenset({State.STOPPED}), State.ARCHIVING, State.ARCHIVED),
}


class Lifecycle:
    """Owns every state change of every sandbox: persists it and announces it.

    `transition_delay` seconds pass in each transitional state (creating, starting, stopping,
    destroying), so clients see the same two-step changes as on Daytona. `minute` is how many
    seconds one Daytona "minute" of the TTL and the auto-stop/archive/delete intervals lasts
    (60 normally; tests shrink it).
    """

    def __init__(
        self,
        store: Store,
        emit: Emit,
        toolbox_url: Callable[[], str],
        *,
        transition_delay: float = 0.0,
        minute: float = 60.0,
    ) -> None:
        self.store = store
        self._emit = emit
        self._toolbox_url = toolbox_url
        self.transition_delay = transition_delay
        self.minute = minute
        self.creates = 0
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
        record = SandboxRecord(
            id=sandbox_id,
            name=name,
            snapshot=None if body.build_info else (body.snapshot or "daytona-local"),
            user=body.user or "daytona",
            env=body.env,
            labels=body.labels,
            public=bool(body.public),
            network_block_all=bool(body.network_block_all),
            target=body.target or "local",
            cpu=body.cpu or 1,
            memory=body.memory or 1,
            disk=body.disk or 3,
            gpu=body.gpu or 0,
            build_info=body.build_info,
        )
        for field in ("auto_stop_interval", "auto_archive_interval", "auto_delete_interval"):
            value = getattr(body, field)
            if value is not None:
                setattr(record, field, value)
        if body.ttl_minutes:
            record.set_ttl(body.ttl_minutes)
        self.store.add(record)
        self.creates += 1
        await self._emit("sandbox.created", self.dto(record))
        await self._transition(record, State.CREATING, State.STARTED)
        return record

    async def change(self, record: SandboxRecord, op: str) -> SandboxRecord:
        """Start, stop, recover or archive a sandbox, as the REST endpoints ask."""
        allowed, transitional, settled = _OPS[op]
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
        old = record.state
        record.set_state(state)
        if state is not State.DESTROYED:
            self.store.save(record)
        await self._emit(
            "sandbox.state.updated",
            {"sandbox": self.dto(record), "oldState": old.value, "newState": state.value},
        )

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
