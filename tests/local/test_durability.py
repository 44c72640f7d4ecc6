"""Restarts on the same data dir keep everything; atomic writes; the reaper honours intervals."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from daytona import CreateSandboxFromSnapshotParams, Daytona, DaytonaConfig, DaytonaNotFoundError
from daytona_api_client import SandboxState

from pytest_daytona._files import atomic_write
from pytest_daytona.local import LocalServer
from pytest_daytona.local.state.records import SandboxRecord, State
from pytest_daytona.local.state.store import STATE_FILE, Store
from tests.local.conftest import close_client


def _client(server: LocalServer) -> Daytona:
    return Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))


def test_restart_keeps_records_labels_states_and_files(data_dir: Path) -> None:
    with LocalServer(data_dir, token="fixed-token") as first:
        daytona = _client(first)
        try:
            kept = daytona.create(
                CreateSandboxFromSnapshotParams(name="kept", labels={"reuse": "key-1"})
            )
            kept.fs.upload_file(b"survives", "state/file.txt")
            kept.stop()
            running = daytona.create(CreateSandboxFromSnapshotParams(name="running"))
            gone = daytona.create(CreateSandboxFromSnapshotParams(name="gone"))
            gone.delete(wait=True)
        finally:
            close_client(daytona)
    with LocalServer(data_dir, token="fixed-token") as second:
        daytona = _client(second)
        try:
            again = daytona.get("kept")
            assert again.id == kept.id
            assert again.labels["reuse"] == "key-1"
            assert again.state == SandboxState.STOPPED
            again.start()  # resumed by the next run
            assert again.fs.download_file("state/file.txt") == b"survives"
            assert daytona.get(running.id).state == SandboxState.STARTED
            with pytest.raises(DaytonaNotFoundError):
                daytona.get(gone.id)
            assert second.stats()["live"] == 2
            assert second.stats()["creates"] == 0  # counters are per server process
        finally:
            close_client(daytona)


@pytest.mark.quick
def test_restart_settles_transitional_states(data_dir: Path) -> None:
    store = Store(data_dir)
    for name, state in [("a", State.STOPPING), ("b", State.STARTING), ("c", State.DESTROYING)]:
        record = SandboxRecord(id=name * 8, name=name, state=state)
        store.add(record)
    reloaded = Store(data_dir)
    assert reloaded.get("a") is not None and reloaded.get("a").state is State.STOPPED  # type: ignore[union-attr]
    assert reloaded.get("b") is not None and reloaded.get("b").state is State.STARTED  # type: ignore[union-attr]
    assert reloaded.get("c") is None
    assert not (data_dir / "sandboxes" / ("c" * 8)).exists()


def test_crash_mid_write_leaves_the_old_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / STATE_FILE
    target.write_bytes(b'{"old": true}')

    def crash(fd: int) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk went away"):
        atomic_write(target, b'{"new": true, "half": ')
    assert target.read_bytes() == b'{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temp file left behind


def test_unreadable_record_is_skipped_not_fatal(data_dir: Path) -> None:
    broken = data_dir / "sandboxes" / "broken"
    broken.mkdir(parents=True)
    (broken / STATE_FILE).write_text("{not json")
    with LocalServer(data_dir) as srv:
        assert srv.stats()["live"] == 0


def _wait_for(server: LocalServer, sandbox_id: str, state: str | None) -> str | None:
    deadline = time.monotonic() + 15
    current = server.stats()["states"].get(sandbox_id)
    while current != state and time.monotonic() < deadline:
        time.sleep(0.05)
        current = server.stats()["states"].get(sandbox_id)
    return current


def test_reaper_auto_stops_idle_sandboxes_then_auto_deletes(data_dir: Path) -> None:
    # One Daytona "minute" lasts 0.2 s here.
    with LocalServer(data_dir, minute=0.2, reaper_tick=0.05) as srv:
        daytona = _client(srv)
        try:
            sb = daytona.create(
                CreateSandboxFromSnapshotParams(auto_stop_interval=1, auto_delete_interval=2)
            )
            keep = daytona.create(CreateSandboxFromSnapshotParams(auto_stop_interval=0))
            assert _wait_for(srv, sb.id, "stopped") == "stopped"
            assert _wait_for(srv, sb.id, None) is None  # deleted after 2 more "minutes"
            assert srv.stats()["states"][keep.id] == "started"  # auto-stop 0 = never
        finally:
            close_client(daytona)


def test_reaper_auto_archives_and_zero_auto_delete_deletes_on_stop(data_dir: Path) -> None:
    with LocalServer(data_dir, minute=0.2, reaper_tick=0.05) as srv:
        daytona = _client(srv)
        try:
            archived = daytona.create(CreateSandboxFromSnapshotParams(auto_archive_interval=1))
            ephemeral = daytona.create(CreateSandboxFromSnapshotParams(auto_delete_interval=0))
            archived.stop()
            ephemeral.stop()
            assert _wait_for(srv, ephemeral.id, None) is None
            assert _wait_for(srv, archived.id, "archived") == "archived"
            archived.start()  # an archived sandbox starts again
            assert srv.stats()["states"][archived.id] == "started"
        finally:
            close_client(daytona)


def test_activity_postpones_auto_stop(data_dir: Path) -> None:
    with LocalServer(data_dir, minute=1.0, reaper_tick=0.05) as srv:
        daytona = _client(srv)
        try:
            sb = daytona.create(CreateSandboxFromSnapshotParams(auto_stop_interval=1))
            for _ in range(15):  # 15 x 0.1 s of activity spans more than one "minute"
                sb.process.exec("true")
                time.sleep(0.1)
                assert srv.stats()["states"][sb.id] == "started"
        finally:
            close_client(daytona)
