"""The driver's lease semantics and cross-run reuse, on a local server through the real SDK."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from daytona import Daytona, DaytonaConfig

from pytest_daytona.api.calls import Caller
from pytest_daytona.api.client import Api
from pytest_daytona.config.settings import Settings
from pytest_daytona.errors import BackendCallError, LeaseError, SandboxWarning
from pytest_daytona.leases import lease
from pytest_daytona.local import LocalServer
from pytest_daytona.run.coordination import RunDir
from pytest_daytona.run.session import SandboxSession


def make_settings(server: LocalServer, **values: Any) -> Settings:
    return Settings.model_validate(
        {"backend": "local", "api_url": server.api_url, "api_key": server.token, **values}
    )


class FakeCache:
    """The two methods of pytest's `config.cache` a session uses."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}

    def get(self, key: str, default: object) -> object:
        return self.data.get(key, default)

    def set(self, key: str, value: object) -> None:
        self.data[key] = value


def new_session(settings: Settings, tmp_path: Path, **kwargs: Any) -> SandboxSession:
    run_id = uuid.uuid4().hex
    return SandboxSession(
        settings, RunDir.create(run_id, tmp_path / "runs"), run_id=run_id, **kwargs
    )


@pytest.fixture
def session(server: LocalServer, tmp_path: Path) -> Iterator[SandboxSession]:
    held = new_session(make_settings(server), tmp_path)
    yield held
    held.close()


def states(server: LocalServer) -> dict[str, str]:
    return dict(server.stats()["states"])


def deleted(server: LocalServer, sandbox_id: str) -> bool:
    """Deleted, or on the way out (deletion finishes in the background)."""
    return states(server).get(sandbox_id) in (None, "destroying", "destroyed")


def one_run(server: LocalServer, tmp_path: Path, cache: FakeCache, **values: Any) -> str:
    """A whole run using the session sandbox with reuse; returns the sandbox id."""
    held = new_session(make_settings(server, reuse=True, **values), tmp_path, reuse_key="k")
    try:
        sandbox = held.session_sandbox(cache)  # type: ignore[arg-type]
        assert sandbox.run("echo ok").stdout == "ok\n"
        held.finish_run()
    finally:
        held.close()
    return sandbox.id


def make_api(server: LocalServer) -> Api:
    return Api(Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url)), Caller())


def test_release_stops_when_reusable_and_deletes_otherwise(server: LocalServer) -> None:
    settings = make_settings(server)
    api = make_api(server)
    kept, gone = api.client.create(), api.client.create()
    lease.release(api, kept, settings, reuse=True)
    lease.release(api, gone, settings, reuse=False)
    assert states(server) == {kept.id: "stopped"}


@pytest.mark.quick
def test_labels_and_unique_names(server: LocalServer, session: SandboxSession) -> None:
    settings = make_settings(server, labels={"team": "qa"})
    one, two = session.acquire(settings), session.acquire(settings)
    assert one.name != two.name and one.name.startswith(f"pytest-{session.run_id[:8]}-main-")
    labels = one.sdk.labels
    assert labels["team"] == "qa"
    assert labels["pytest-daytona-run-id"] == session.run_id
    assert labels["pytest-daytona-worker"] == "main"
    assert labels["pytest-daytona-scope"] == "function"
    assert labels["pytest-daytona-reuse"] == "false"
    assert labels["pytest-daytona-signature"] == settings.signature()


def test_stop_failure_on_release_deletes_instead(server: LocalServer) -> None:
    settings = make_settings(server)
    api = make_api(server)
    sandbox = api.client.create()
    server.inject_fault("POST /sandbox/{sandboxIdOrName}/stop", 500)
    with pytest.warns(SandboxWarning, match="deleting it"):
        lease.release(api, sandbox, settings, reuse=True)
    assert deleted(server, sandbox.id)
    assert server.stats()["by_route"]["DELETE /sandbox/{sandboxIdOrName}"] == 1


def test_first_command_makes_the_workspace_without_extra_calls(
    server: LocalServer, session: SandboxSession
) -> None:
    sandbox = session.acquire(session.settings)
    assert sandbox.run("pwd", check=True).stdout.strip() == "/home/daytona/pytest-workspace"
    assert sandbox.workspace == "/home/daytona/pytest-workspace"
    assert sandbox.run("pwd", cwd="..").stdout.strip() == "/home/daytona"
    routes = server.stats()["by_route"]
    assert routes.get("GET /work-dir", 0) == routes.get("POST /files/folder", 0) == 0
    assert routes["POST /process/execute"] == 2


def test_workspace_asked_for_before_any_command_is_made_through_the_api(
    server: LocalServer, session: SandboxSession
) -> None:
    sandbox = session.acquire(session.settings)
    assert sandbox.workspace == "/home/daytona/pytest-workspace"
    assert sandbox.run("pwd").stdout.strip() == sandbox.workspace
    assert server.stats()["by_route"]["POST /files/folder"] == 1


def test_a_workspace_that_cannot_be_made_fails_the_access_and_the_sandbox_is_released(
    server: LocalServer, session: SandboxSession
) -> None:
    sandbox = session.acquire(session.settings)
    server.inject_fault("POST /files/folder", 500)
    with pytest.raises(BackendCallError, match=r"create the workspace in sandbox .*HTTP 500"):
        sandbox.upload(b"x", "f")
    session.release(sandbox.id)
    assert server.stats()["creates"] == 1
    assert server.stats()["live"] == 0
    assert session.records == []
    assert session.run_dir.leftover_leases() == []


def test_create_that_fails_half_way_is_found_by_name_and_deleted(tmp_path: Path) -> None:
    with LocalServer(tmp_path / "slow", transition_delay=3) as slow:
        held = new_session(make_settings(slow, timeout=1, retry_budget=0), tmp_path)
        try:
            with pytest.raises(BackendCallError, match=r"create sandbox failed.*--daytona-timeout"):
                held.acquire(held.settings)
            held.strays.finish()
            assert slow.stats()["creates"] == 1
            assert all(deleted(slow, sandbox_id) for sandbox_id in states(slow))
            assert slow.stats()["by_route"]["DELETE /sandbox/{sandboxIdOrName}"] == 1
        finally:
            held.close()


def test_reuse_resumes_the_stopped_sandbox(server: LocalServer, tmp_path: Path) -> None:
    cache = FakeCache()
    first = one_run(server, tmp_path, cache)
    assert states(server) == {first: "stopped"}
    assert cache.data == {"daytona/reuse/k": first}
    second = one_run(server, tmp_path, cache)
    assert second == first
    assert server.stats()["creates"] == 1
    assert server.stats()["by_route"]["POST /sandbox/{sandboxIdOrName}/start"] == 1
    assert states(server) == {first: "stopped"}


def test_reuse_finds_the_sandbox_by_labels_without_the_cache(
    server: LocalServer, tmp_path: Path
) -> None:
    """Another machine: nothing cached, the sandbox is found through the API by its labels."""
    first = one_run(server, tmp_path, FakeCache())
    assert one_run(server, tmp_path / "elsewhere", FakeCache()) == first
    assert server.stats()["creates"] == 1


def test_resume_of_a_missing_sandbox_acquires_a_new_one(
    server: LocalServer, tmp_path: Path
) -> None:
    cache = FakeCache()
    cache.set("daytona/reuse/k", "gone-long-ago")
    new = one_run(server, tmp_path, cache)
    assert server.stats()["creates"] == 1
    assert cache.data["daytona/reuse/k"] == new


def test_reuse_with_changed_settings_replaces_the_sandbox(
    server: LocalServer, tmp_path: Path
) -> None:
    cache = FakeCache()
    old = one_run(server, tmp_path, cache)
    new = one_run(server, tmp_path, cache, env={"CHANGED": "1"})
    assert new != old
    assert server.stats()["creates"] == 2
    assert deleted(server, old)
    assert states(server)[new] == "stopped"


def test_fresh_destroys_the_old_sandbox(server: LocalServer, tmp_path: Path) -> None:
    cache = FakeCache()
    old = one_run(server, tmp_path, cache)
    new = one_run(server, tmp_path, cache, fresh=True)
    assert new != old and deleted(server, old)
    assert server.stats()["creates"] == 2


def test_reuse_recovers_a_recoverable_error(server: LocalServer, tmp_path: Path) -> None:
    cache = FakeCache()
    first = one_run(server, tmp_path, cache)
    server.force_error(first, recoverable=True, reason="runner restarted")
    assert one_run(server, tmp_path, cache) == first
    assert server.stats()["by_route"]["POST /sandbox/{sandboxIdOrName}/recover"] == 1


def test_unrecoverable_error_is_a_clear_error(server: LocalServer, tmp_path: Path) -> None:
    cache = FakeCache()
    first = one_run(server, tmp_path, cache)
    server.force_error(first, recoverable=False, reason="disk lost")
    with pytest.raises(LeaseError, match=f"{first}.*unrecoverable error state: disk lost.*fresh"):
        one_run(server, tmp_path, cache)
    assert server.stats()["creates"] == 1


def test_a_sandbox_claimed_by_a_running_run_is_not_shared(
    server: LocalServer, tmp_path: Path
) -> None:
    settings = make_settings(server, reuse=True)
    one = new_session(settings, tmp_path, reuse_key="k")
    two = new_session(settings, tmp_path, reuse_key="k")
    try:
        first = one.session_sandbox(FakeCache())  # type: ignore[arg-type]
        second = two.session_sandbox(FakeCache())  # type: ignore[arg-type]
        assert first.id != second.id
        assert second.sdk.labels["pytest-daytona-claimed-by"] == two.run_id
        one.finish_run()
        two.finish_run()
    finally:
        one.close()
        two.close()
    assert sorted(states(server).values()) == ["stopped", "stopped"]
    assert all("pytest-daytona-claimed-by" not in sb.labels for sb in claimed_list(server))


def claimed_list(server: LocalServer) -> list[Any]:
    client = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    return list(client.list())


def test_close_releases_everything_still_held(server: LocalServer, tmp_path: Path) -> None:
    held = new_session(make_settings(server), tmp_path)
    for _ in range(3):
        held.acquire(held.settings)
    assert server.stats()["live"] == 3
    assert len(held.run_dir.leftover_leases()) == 3
    held.close()
    held.close()  # idempotent
    assert server.stats()["live"] == 0
    assert held.run_dir.leftover_leases() == []


def test_finish_run_releases_what_a_dead_worker_left(server: LocalServer, tmp_path: Path) -> None:
    settings = make_settings(server)
    controller = new_session(settings, tmp_path)
    worker = SandboxSession(settings, controller.run_dir, run_id=controller.run_id, worker="gw0")
    worker.acquire(settings)
    worker.session_sandbox(None)
    # The worker dies here: it never releases anything.
    try:
        controller.finish_run()
    finally:
        controller.close()
    assert server.stats()["live"] == 0
    assert not controller.run_dir.path.exists()
    worker.close()  # what it held is gone already; closing finds nothing to do


def test_close_keeps_and_reports_sandboxes_it_cannot_release(tmp_path: Path) -> None:
    doomed = LocalServer(tmp_path / "doomed").start()
    held = new_session(make_settings(doomed, retry_budget=0.5), tmp_path)
    try:
        ids = {held.acquire(held.settings).id, held.acquire(held.settings).id}
    finally:
        doomed.stop()  # the backend vanishes with two sandboxes still held
    held.close()
    assert set(held.failures) == ids
    assert all("delete sandbox" in f.reason for f in held.failures.values())
    assert {r.sandbox_id for r in held.records} == ids  # kept: the delete was not confirmed
    assert {r.sandbox_id for r in held.run_dir.leftover_leases()} == ids
    assert not held.backend.started  # closed all the same


def test_sandboxes_carry_ci_job_labels(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITHUB_RUN_ID", "9876")
    monkeypatch.setenv("GITHUB_JOB", "matrix-cell")
    held = new_session(make_settings(server), tmp_path)
    try:
        labels = held.acquire(held.settings).sdk.labels
    finally:
        held.close()
    assert labels["pytest-daytona-gh-run-id"] == "9876"
    assert labels["pytest-daytona-gh-job"] == "matrix-cell"
    assert labels["pytest-daytona-ci"] == "true"


def test_fresh_replaces_an_unrecoverable_reused_sandbox_and_later_runs_reuse_the_new_one(
    server: LocalServer, tmp_path: Path
) -> None:
    cache = FakeCache()
    broken = one_run(server, tmp_path, cache)
    server.force_error(broken, recoverable=False, reason="disk lost")
    with pytest.raises(LeaseError, match="fresh"):
        one_run(server, tmp_path, cache)
    fresh = one_run(server, tmp_path, cache, fresh=True)
    assert fresh != broken and deleted(server, broken)
    assert one_run(server, tmp_path, FakeCache()) == fresh  # found by labels, not the broken one
    assert states(server) == {fresh: "stopped"}


def test_fresh_replaces_a_sandbox_claimed_by_another_run(
    server: LocalServer, tmp_path: Path
) -> None:
    settings = make_settings(server, reuse=True)
    holder = new_session(settings, tmp_path, reuse_key="k")
    try:
        claimed = holder.session_sandbox(FakeCache())  # type: ignore[arg-type]
        assert claimed.sdk.labels["pytest-daytona-claimed-by"] == holder.run_id
        replacement = one_run(server, tmp_path, FakeCache(), fresh=True)
    finally:
        holder.close()
    assert replacement != claimed.id
    assert deleted(server, claimed.id)


def ttl_left(sandbox: Any) -> float | None:
    """Minutes until Daytona destroys `sandbox` (its ``autoDestroyAt``), None without a TTL."""
    if not sandbox.auto_destroy_at:
        return None
    when = datetime.fromisoformat(sandbox.auto_destroy_at.replace("Z", "+00:00"))
    return (when - datetime.now(timezone.utc)).total_seconds() / 60


def test_sandboxes_carry_a_ttl_and_a_reused_one_renews_it_on_resume(
    server: LocalServer, tmp_path: Path
) -> None:
    held = new_session(make_settings(server, timeout=600), tmp_path)
    try:
        function = held.acquire(held.settings)
        session = held.session_sandbox(None)
        assert 99 < (ttl_left(function.sdk) or 0) <= 100  # 10 x timeout (600 s)
        assert 1439 < (ttl_left(session.sdk) or 0) <= 1440
        assert function.sdk.auto_stop_interval == 20  # 2 x timeout, above Daytona's 15
    finally:
        held.close()
    cache = FakeCache()
    kept = one_run(server, tmp_path, cache)
    ttl_route = "POST /sandbox/{sandboxIdOrName}/ttl/{ttlMinutes}"
    assert server.stats()["by_route"].get(ttl_route, 0) == 0  # created with it
    assert one_run(server, tmp_path, cache) == kept
    assert server.stats()["by_route"][ttl_route] == 1  # renewed on resume
    client = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    assert 10079 < (ttl_left(client.get(kept)) or 0) <= 10080


@pytest.mark.parametrize(("ttl", "expected"), [(0, None), (5, 5)])
def test_the_ttl_setting_overrides_or_disables_it(
    server: LocalServer, tmp_path: Path, ttl: int, expected: int | None
) -> None:
    held = new_session(make_settings(server, ttl=ttl), tmp_path)
    try:
        left = ttl_left(held.acquire(held.settings).sdk)
    finally:
        held.close()
    if expected is None:
        assert left is None
    else:
        assert left is not None and expected - 1 < left <= expected
