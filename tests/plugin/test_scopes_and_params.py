"""The session-scoped factory, and tests parametrized over snapshots with the marker."""

from __future__ import annotations

import contextlib

import pytest
from daytona import CreateSnapshotParams, Daytona, DaytonaConfig

from pytest_daytona.local import LocalServer
from tests.pytester_support import RunInner


@pytest.mark.quick
def test_the_session_factory_keeps_its_sandboxes_for_the_run_and_deletes_them_at_its_end(
    pytester: pytest.Pytester, server: LocalServer, run_inner: RunInner
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="session")
        def pair(daytona_session_sandbox_factory):
            make = daytona_session_sandbox_factory
            return make(env={"ROLE": "a"}), make(labels={"role": "b"})

        def test_first(pair):
            a, b = pair
            assert a.id != b.id
            assert a.run("echo $ROLE").stdout == "a\\n"
            a.write_text("kept.txt", "still here")

        def test_second(pair, daytona_session_sandbox_factory):
            a, _ = pair
            assert a.read_text("kept.txt") == "still here"
            third = daytona_session_sandbox_factory(env={"ROLE": "c"})
            assert third.run("echo $ROLE").stdout == "c\\n"
        """
    )
    result = run_inner()
    result.assert_outcomes(passed=2)
    stats = server.stats()
    assert (stats["creates"], stats["live"]) == (3, 0)


@pytest.mark.usefixtures("stand_in_registry")  # short image names
def test_a_test_parametrized_over_snapshots_gets_one_sandbox_of_each(
    pytester: pytest.Pytester, server: LocalServer, run_inner: RunInner
) -> None:
    daytona = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
    for name in ("snap-a", "snap-b"):
        daytona.snapshot.create(CreateSnapshotParams(name=name, image="debian:12-slim"))
    dispatcher = getattr(daytona, "_event_dispatcher", None)  # the sync SDK has no close
    if dispatcher is not None:
        with contextlib.suppress(AttributeError):  # socketio's race right after connecting
            dispatcher.disconnect()
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize(
            "snapshot",
            [
                pytest.param("snap-a", marks=pytest.mark.daytona(snapshot="snap-a")),
                pytest.param("snap-b", marks=pytest.mark.daytona(snapshot="snap-b")),
            ],
        )
        def test_each(daytona_sandbox, snapshot):
            assert daytona_sandbox.sdk.snapshot == snapshot
            assert daytona_sandbox.run("true").ok
        """
    )
    result = run_inner("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_each?snap-a? PASSED*", "*test_each?snap-b? PASSED*"])
    stats = server.stats()
    assert (stats["creates"], stats["live"]) == (2, 0)
