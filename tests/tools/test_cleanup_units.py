"""The cleanup command's pure parts: ages, and which listed sandboxes it picks."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_daytona.leases import create_params, reuse
from pytest_daytona.run.coordination import OWNER_FILE, RunDir
from pytest_daytona.tools import cleanup, cleanup_options
from pytest_daytona.tools.cleanup import Criteria, format_age, select

#: The quick development loop (`pytest -m quick`, README: Development) runs all of these.
pytestmark = pytest.mark.quick

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "?"), (-3, "0s"), (45, "45s"), (723, "12m03s"), (7500, "2h05m"), (273600, "3d04h")],
)
def test_format_age(seconds: float | None, shown: str) -> None:
    assert format_age(seconds) == shown


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def box(
    name: str,
    labels: dict[str, str] | None = None,
    *,
    age: float | None = 7200,
    state: str = "started",
) -> Any:
    """A listed sandbox as far as `select` looks at it."""
    given = {
        create_params.LABEL_PREFIX: "true",
        create_params.RUN_ID_LABEL: f"run-{name}",
        **(labels or {}),
    }
    created = None if age is None else iso(NOW - age)
    return SimpleNamespace(id=name, name=name, state=state, labels=given, created_at=created)


def picked(sandboxes: list[Any], criteria: Criteria, live: frozenset[str] = frozenset()) -> Any:
    chosen = select(sandboxes, criteria, set(live), grace=360, now=NOW)
    return {
        reason: [sb.name for sb in getattr(chosen, reason)]
        for reason in ("delete", "younger", "alive", "claimed", "reused")
        if getattr(chosen, reason)
    }


REUSED = {f"{create_params.LABEL_PREFIX}-reuse": "true", reuse.REUSE_KEY_LABEL: "proj"}


def test_select_sorts_by_reason() -> None:
    claimed_now = reuse.claim_labels("other")
    claimed_now[reuse.CLAIMED_AT_LABEL] = str(int(NOW))
    stale = {reuse.CLAIM_LABEL: "gone", reuse.CLAIMED_AT_LABEL: str(int(NOW - 3600))}
    sandboxes = [
        box("old"),
        box("new", age=60),
        box("unknown-age", age=None),
        box("live"),
        box("claimed", {**REUSED, **claimed_now}),
        box("stale-claim", {**REUSED, **stale}, state="stopped"),
        box("claimed-by-live", {**REUSED, **stale, reuse.CLAIM_LABEL: "x"}, state="stopped"),
        box("reused", REUSED, state="stopped"),
        box("gone", state="destroying"),
    ]
    live = frozenset({"run-live", "x"})
    assert picked(sandboxes, Criteria(), live) == {
        "delete": ["old"],
        "younger": ["new", "unknown-age"],
        "alive": ["live"],
        "claimed": ["claimed", "claimed-by-live"],
        "reused": ["stale-claim", "reused"],
    }
    assert picked(sandboxes, Criteria(older_than=0, reused=True), live) == {
        "delete": ["old", "new", "unknown-age", "stale-claim", "reused"],
        "alive": ["live"],
        "claimed": ["claimed", "claimed-by-live"],
    }


@pytest.mark.parametrize("label", cleanup_options.CI_JOB_LABELS)
def test_ci_job_matches_each_ci_label(label: str) -> None:
    sandboxes = [box("job", {label: "77"}), box("other", {label: "78"}), box("none")]
    assert picked(sandboxes, Criteria(ci_job="77")) == {"delete": ["job"]}


def test_run_id_and_reuse_key_filters() -> None:
    sandboxes = [box("a"), box("b"), box("keyed", REUSED)]
    assert picked(sandboxes, Criteria(run_id="run-a")) == {"delete": ["a"]}
    assert picked(sandboxes, Criteria(reuse_key="proj")) == {"reused": ["keyed"]}
    assert Criteria(run_id="r", reuse_key="k").query() == {
        create_params.LABEL_PREFIX: "true",
        create_params.RUN_ID_LABEL: "r",
        reuse.REUSE_KEY_LABEL: "k",
    }


def test_dead_run_dirs_spare_live_and_just_created_ones(tmp_path: Path) -> None:
    live = RunDir.create("live", tmp_path)
    dead = RunDir.create("dead", tmp_path)
    (dead.path / OWNER_FILE).write_text("999999999 host\n")
    unowned_new = RunDir.create("unowned-new", tmp_path)
    (unowned_new.path / OWNER_FILE).unlink()
    unowned_old = RunDir.create("unowned-old", tmp_path)
    (unowned_old.path / OWNER_FILE).unlink()
    old = time.time() - 2 * cleanup.UNOWNED_GRACE_SECONDS
    os.utime(unowned_old.path, (old, old))
    found = cleanup.dead_run_dirs(tmp_path, time.time())
    assert sorted(d.run_id for d in found) == ["dead", "unowned-old"]
    assert live.alive()
