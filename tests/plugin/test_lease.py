"""The driver's lease semantics, exercised on a local server through the real SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from daytona import DaytonaError

from pytest_daytona.lease import LeaseError, LeaseRecord, SandboxWarning
from pytest_daytona.local import LocalServer
from pytest_daytona.session import SandboxSession
from pytest_daytona.settings import Settings


def make_settings(server: LocalServer, **values: Any) -> Settings:
    return Settings.model_validate(
        {"backend": "local", "api_url": server.api_url, "api_key": server.token, **values}
    )


@pytest.fixture
def session(server: LocalServer) -> Iterator[SandboxSession]:
    held = SandboxSession(make_settings(server), run_id="run-under-test")
    yield held
    held.close()


def states(server: LocalServer) -> dict[str, str]:
    return dict(server.stats()["states"])


def deleted(server: LocalServer, sandbox_id: str) -> bool:
    """Deleted, or on the way out (deletion finishes in the background)."""
    return states(server).get(sandbox_id) in (None, "destroying", "destroyed")


def test_release_stops_when_reusable_and_deletes_otherwise(
    server: LocalServer, session: SandboxSession
) -> None:
    reusable = session.acquire(make_settings(server, reuse=True), "session")
    disposable = session.acquire(make_settings(server, reuse=True), "function")
    plain = session.acquire(make_settings(server), "session")
    for sandbox in (reusable, disposable, plain):
        session.release(sandbox.id)
    assert states(server) == {reusable.id: "stopped"}


def test_labels_and_unique_names(server: LocalServer, session: SandboxSession) -> None:
    settings = make_settings(server, labels={"team": "qa"})
    one, two = session.acquire(settings, "function"), session.acquire(settings, "function")
    assert one.name != two.name and one.name.startswith("pytest-run-unde-main-")
    labels = one.sdk.labels
    assert labels["team"] == "qa"
    assert labels["pytest-daytona-run-id"] == "run-under-test"
    assert labels["pytest-daytona-worker"] == "main"
    assert labels["pytest-daytona-scope"] == "function"
    assert labels["pytest-daytona-reuse"] == "false"
    assert labels["pytest-daytona-signature"] == settings.signature()


def test_stop_failure_on_release_deletes_instead(
    server: LocalServer, session: SandboxSession
) -> None:
    sandbox = session.acquire(make_settings(server, reuse=True), "session")
    server.inject_fault("POST /sandbox/{sandboxIdOrName}/stop", 500)
    with pytest.warns(SandboxWarning, match="deleting it"):
        session.release(sandbox.id)
    assert deleted(server, sandbox.id)
    assert server.stats()["by_route"]["DELETE /sandbox/{sandboxIdOrName}"] == 1


def test_setup_failure_after_create_deletes_the_sandbox(
    server: LocalServer, session: SandboxSession
) -> None:
    server.inject_fault("POST /files/folder", 500)
    with pytest.raises(DaytonaError):
        session.acquire(make_settings(server), "function")
    assert server.stats()["creates"] == 1
    assert server.stats()["live"] == 0
    assert session.records == []


def test_create_that_fails_half_way_is_found_by_name_and_deleted(tmp_path: Any) -> None:
    with LocalServer(tmp_path / "slow", transition_delay=3) as slow:
        held = SandboxSession(make_settings(slow, timeout=1))
        try:
            with pytest.raises(DaytonaError):
                held.acquire(held.settings, "function")
            assert slow.stats()["creates"] == 1
            assert all(deleted(slow, sandbox_id) for sandbox_id in states(slow))
            assert slow.stats()["by_route"]["DELETE /sandbox/{sandboxIdOrName}"] == 1
        finally:
            held.close()


def _record(sandbox_id: str, settings: Settings) -> LeaseRecord:
    return LeaseRecord(
        sandbox_id=sandbox_id,
        name="previous",
        workspace="",
        scope="session",
        reuse=True,
        run_id="earlier-run",
        worker="main",
        signature=settings.signature(),
    )


def test_resume_of_a_missing_sandbox_acquires_a_new_one(
    server: LocalServer, session: SandboxSession
) -> None:
    settings = make_settings(server, reuse=True)
    sandbox = session.resume_or_acquire(settings, "session", _record("gone-long-ago", settings))
    assert server.stats()["creates"] == 1
    assert states(server) == {sandbox.id: "started"}


def test_resume_starts_a_stopped_sandbox(server: LocalServer, session: SandboxSession) -> None:
    settings = make_settings(server, reuse=True)
    first = session.acquire(settings, "session")
    session.release(first.id)
    again = session.resume_or_acquire(settings, "session", _record(first.id, settings))
    assert again.id == first.id
    assert server.stats()["creates"] == 1
    assert states(server) == {first.id: "started"}
    assert again.run("echo resumed").stdout == "resumed\n"


def test_resume_with_changed_settings_replaces_the_sandbox(
    server: LocalServer, session: SandboxSession
) -> None:
    old_settings = make_settings(server, reuse=True)
    old = session.acquire(old_settings, "session")
    session.release(old.id)
    new_settings = make_settings(server, reuse=True, env={"CHANGED": "1"})
    new = session.resume_or_acquire(new_settings, "session", _record(old.id, old_settings))
    assert new.id != old.id
    assert server.stats()["creates"] == 2
    assert deleted(server, old.id)


def test_resume_recovers_a_recoverable_error(server: LocalServer, session: SandboxSession) -> None:
    settings = make_settings(server, reuse=True)
    first = session.acquire(settings, "session")
    session.release(first.id)
    server.force_error(first.id, recoverable=True, reason="runner restarted")
    again = session.resume_or_acquire(settings, "session", _record(first.id, settings))
    assert again.id == first.id
    assert server.stats()["by_route"]["POST /sandbox/{sandboxIdOrName}/recover"] == 1
    assert states(server) == {first.id: "started"}


def test_unrecoverable_error_is_a_clear_error(server: LocalServer, session: SandboxSession) -> None:
    settings = make_settings(server, reuse=True)
    first = session.acquire(settings, "session")
    session.release(first.id)
    server.force_error(first.id, recoverable=False, reason="disk lost")
    with pytest.raises(LeaseError, match=f"{first.id}.*unrecoverable error state: disk lost"):
        session.resume_or_acquire(settings, "session", _record(first.id, settings))
    assert server.stats()["creates"] == 1


def test_close_releases_everything_still_held(server: LocalServer) -> None:
    held = SandboxSession(make_settings(server))
    for _ in range(3):
        held.acquire(held.settings, "function")
    assert server.stats()["live"] == 3
    held.close()
    held.close()  # idempotent
    assert server.stats()["live"] == 0


def test_close_warns_about_sandboxes_it_cannot_release(tmp_path: Any) -> None:
    doomed = LocalServer(tmp_path / "doomed").start()
    held = SandboxSession(make_settings(doomed))
    try:
        held.acquire(held.settings, "function")
        held.acquire(held.settings, "function")
    finally:
        doomed.stop()  # the backend vanishes with two sandboxes still held
    with pytest.warns(SandboxWarning, match="could not release sandbox") as caught:
        held.close()
    assert len([w for w in caught if "could not release" in str(w.message)]) == 2
    assert held.records == []
    assert not held.backend.started  # closed all the same
