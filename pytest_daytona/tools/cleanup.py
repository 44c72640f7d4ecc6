"""``pytest --daytona-cleanup``: list, then delete, the sandboxes runs left behind; runs no tests.

It selects the sandboxes carrying the plugin's label that are older than
``--daytona-cleanup-older-than`` (and of one run, reuse key or CI job when asked), never one of
a run still alive on this machine, one claimed by a run that is still running, or a reused one
unless ``--daytona-cleanup-reused``. Without ``--daytona-cleanup-yes`` it only lists them. It
also removes the run directories dead runs left on this machine. A small pytest plugin module:
`cleanup_options` registers the options and the command.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..api.backend import Backend
from ..config.durations import FORMS, is_number, parse_duration
from ..config.resolve import resolve_settings
from ..config.settings import Settings
from ..errors import BackendError, Problem, SettingsError
from ..leases import create_params, lease, reuse
from ..run import coordination
from .cleanup_options import CI_JOB_LABELS, DEFAULT_OLDER_THAN, OLDER_THAN_OPTION

__all__ = ["run_cleanup"]

if TYPE_CHECKING:
    from _pytest._io import TerminalWriter
    from daytona import Sandbox

    from ..api.client import Api

REUSE_LABEL = f"{create_params.LABEL_PREFIX}-reuse"
#: Where run directories are looked for (None: `coordination.default_parent()`); for tests.
RUN_DIR_PARENT: Path | None = None
#: A run directory with no owner recorded is left alone this long: it may be being created.
UNOWNED_GRACE_SECONDS = 60.0
_GONE = ("destroyed", "destroying")


def format_age(seconds: float | None) -> str:
    """A short age for the table, e.g. ``45s``, ``12m03s``, ``2h05m``, ``3d04h``; ``?`` if
    unknown."""
    if seconds is None:
        return "?"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def age_of(sandbox: Sandbox, now: float) -> float | None:
    """Seconds since `sandbox` was created, None when the API did not say."""
    created = getattr(sandbox, "created_at", None)
    if not created:
        return None
    try:
        when = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return now - when.timestamp()


def run_dir_name(run_id: str) -> str:
    """The name a run id's directory gets (as `coordination.RunDir.create` makes it)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", run_id) or "run"


@dataclass(frozen=True)
class Criteria:
    """What the user asked to clean up."""

    older_than: float = 3600.0
    older_than_text: str = DEFAULT_OLDER_THAN
    run_id: str | None = None
    reuse_key: str | None = None
    ci_job: str | None = None
    reused: bool = False
    yes: bool = False

    def query(self) -> dict[str, str]:
        """The labels every listed sandbox must carry (the API filters on them)."""
        labels = {create_params.LABEL_PREFIX: "true"}
        if self.run_id:
            labels[create_params.RUN_ID_LABEL] = self.run_id
        if self.reuse_key:
            labels[reuse.REUSE_KEY_LABEL] = self.reuse_key
        return labels

    def wanted(self, labels: dict[str, str]) -> bool:
        """Whether labels match every filter given (run id, reuse key, CI job)."""
        if any(labels.get(k) != v for k, v in self.query().items()):
            return False
        return self.ci_job is None or any(labels.get(k) == self.ci_job for k in CI_JOB_LABELS)


@dataclass
class Selection:
    """The sandboxes to delete, and those spared, by reason."""

    delete: list[Sandbox] = field(default_factory=list)
    younger: list[Sandbox] = field(default_factory=list)
    alive: list[Sandbox] = field(default_factory=list)
    claimed: list[Sandbox] = field(default_factory=list)
    reused: list[Sandbox] = field(default_factory=list)


def select(
    sandboxes: Iterable[Sandbox],
    criteria: Criteria,
    live_runs: set[str],
    *,
    grace: float,
    now: float,
) -> Selection:
    """Sort listed sandboxes into what to delete and what to spare, and why."""
    chosen = Selection()
    for sandbox in sandboxes:
        labels = dict(sandbox.labels or {})
        if not criteria.wanted(labels) or lease.state_of(sandbox) in _GONE:
            continue
        age = age_of(sandbox, now)
        claim = labels.get(reuse.CLAIM_LABEL)
        if criteria.older_than > 0 and (age is None or age < criteria.older_than):
            chosen.younger.append(sandbox)
        elif run_dir_name(labels.get(create_params.RUN_ID_LABEL, "")) in live_runs:
            chosen.alive.append(sandbox)
        elif claim and (
            run_dir_name(claim) in live_runs or not reuse.available(sandbox, grace=grace, now=now)
        ):
            chosen.claimed.append(sandbox)
        elif (
            labels.get(REUSE_LABEL) == "true"
            and labels.get(reuse.REUSE_KEY_LABEL)
            and not criteria.reused
        ):
            chosen.reused.append(sandbox)
        else:
            chosen.delete.append(sandbox)
    return chosen


def criteria_from(config: pytest.Config) -> Criteria:
    """The cleanup options; `pytest.UsageError` for an age that is not one."""
    given = config.getoption("daytona_cleanup_older_than")
    text = DEFAULT_OLDER_THAN if given is None else str(given)
    try:
        older_than = parse_duration(text)
    except ValueError:
        message = "must be a duration with a unit (s, m, h, d or w)"
        if is_number(text.strip()):  # seconds or minutes? a guess could delete too much
            message += ": a number alone could mean seconds or minutes"
        problem = Problem(
            OLDER_THAN_OPTION,
            "the command line",
            message,
            repr(text),
            fix=f"pass a duration ({FORMS}), or 0s for any age",
        )
        raise pytest.UsageError(str(problem)) from None

    def text_option(name: str) -> str | None:
        value = config.getoption(name)
        return (str(value).strip() or None) if value is not None else None

    return Criteria(
        older_than=older_than,
        older_than_text=text,
        run_id=text_option("daytona_cleanup_run_id"),
        reuse_key=text_option("daytona_cleanup_reuse_key"),
        ci_job=text_option("daytona_cleanup_ci_job"),
        reused=bool(config.getoption("daytona_cleanup_reused")),
        yes=bool(config.getoption("daytona_cleanup_yes")),
    )


def dead_run_dirs(parent: Path, now: float) -> list[coordination.RunDir]:
    """Run directories under `parent` whose processes are all gone."""
    dead = []
    for run_dir in coordination.run_dirs(parent):
        if run_dir.alive():
            continue
        if run_dir.owner_pid() is None:
            try:
                if now - run_dir.path.stat().st_mtime < UNOWNED_GRACE_SECONDS:
                    continue
            except OSError:
                continue
        dead.append(run_dir)
    return dead


def _plural(count: int, word: str, plural: str = "") -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _table(sandboxes: Sequence[Sandbox], now: float) -> list[str]:
    head = ("ID", "NAME", "STATE", "AGE", "RUN-ID", "SCOPE", "REUSE-KEY", "WORKER")
    keys = (
        create_params.RUN_ID_LABEL,
        f"{create_params.LABEL_PREFIX}-scope",
        reuse.REUSE_KEY_LABEL,
    )
    rows = [head] + [
        (
            sb.id,
            sb.name,
            lease.state_of(sb),
            format_age(age_of(sb, now)),
            *((sb.labels or {}).get(k) or "-" for k in keys),
            (sb.labels or {}).get(f"{create_params.LABEL_PREFIX}-worker") or "-",
        )
        for sb in sandboxes
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return ["  ".join(map(str.ljust, row, widths)).rstrip() for row in rows]


def _skipped(tw: TerminalWriter, chosen: Selection, criteria: Criteria) -> None:
    if chosen.younger:
        n = _plural(len(chosen.younger), "sandbox", "sandboxes")
        tw.line(
            f"spared {n} younger than {criteria.older_than_text} "
            f"(pass {OLDER_THAN_OPTION} to change that)"
        )
    if chosen.alive:
        n = _plural(len(chosen.alive), "sandbox", "sandboxes")
        tw.line(f"skipped {n} of runs still alive on this machine")
    if chosen.claimed:
        n = _plural(len(chosen.claimed), "sandbox", "sandboxes")
        tw.line(f"skipped {n} claimed by a run that is still running")
    if chosen.reused:
        n = _plural(len(chosen.reused), "reused sandbox", "reused sandboxes")
        tw.line(f"skipped {n} (add --daytona-cleanup-reused to delete reused sandboxes too)")


def _delete(tw: TerminalWriter, api: Api, settings: Settings, chosen: Selection) -> int:
    """Delete the chosen sandboxes, one line each; the number that could not be deleted."""
    failed = 0
    for sandbox in chosen.delete:
        try:
            lease.destroy(api, sandbox, settings)
        except BackendError as exc:
            failed += 1
            tw.line(f"FAILED {sandbox.id} ({sandbox.name}): {exc}", red=True)
        else:
            tw.line(f"deleted {sandbox.id} ({sandbox.name})")
    return failed


def _run_dirs(tw: TerminalWriter, parent: Path, yes: bool) -> None:
    dead = dead_run_dirs(parent, time.time())
    if not dead:
        return
    n = _plural(len(dead), "run directory", "run directories")
    if yes:
        for run_dir in dead:
            run_dir.remove()
        tw.line(f"removed {n} of dead runs under {parent}")
    else:
        tw.line(f"would remove {n} of dead runs under {parent}")


def run_cleanup(config: pytest.Config) -> int:
    """The ``--daytona-cleanup`` command; its exit code (0: all went, 1: some could not be
    deleted or listed, 4: invalid settings)."""
    from _pytest.config import create_terminal_writer

    criteria = criteria_from(config)
    tw = create_terminal_writer(config, sys.stdout)
    try:
        settings = resolve_settings(config)
    except SettingsError as exc:
        create_terminal_writer(config, sys.stderr).line(f"ERROR: {exc}", red=True)
        return int(pytest.ExitCode.USAGE_ERROR)
    parent = RUN_DIR_PARENT or coordination.default_parent()
    live_runs = {d.run_id for d in coordination.run_dirs(parent) if d.alive()}
    backend = Backend(settings)
    if backend.embedded:
        tw.line(
            "pytest-daytona cleanup: nothing to clean: --daytona-backend local without "
            "--daytona-api-url starts a new, empty embedded server; pass the --daytona-api-url "
            "of the server to clean (and its token as DAYTONA_API_KEY)"
        )
        _run_dirs(tw, parent, criteria.yes)
        return 0
    try:
        try:
            api = backend.api()
        except BackendError as exc:
            create_terminal_writer(config, sys.stderr).line(f"ERROR: {exc}", red=True)
            return int(pytest.ExitCode.USAGE_ERROR)
        where = backend.api_url or "the SDK's default API URL"
        label = create_params.LABEL_PREFIX
        tw.line(f"pytest-daytona cleanup: sandboxes labelled {label}=true at {where}")
        try:
            listed = reuse.list_labelled(api, settings, criteria.query(), "pytest-daytona")
        except BackendError as exc:
            tw.line(f"FAILED: {exc}", red=True)
            _run_dirs(tw, parent, criteria.yes)
            return 1
        now = time.time()
        chosen = select(listed, criteria, live_runs, grace=settings.timeout + 60, now=now)
        failed = 0
        if criteria.yes:
            failed = _delete(tw, api, settings, chosen)
        elif chosen.delete:
            for line in _table(chosen.delete, now):
                tw.line(line)
        _skipped(tw, chosen, criteria)
        _run_dirs(tw, parent, criteria.yes)
        total = _plural(len(chosen.delete), "sandbox", "sandboxes")
        if not chosen.delete:
            tw.line("no sandbox to delete")
        elif not criteria.yes:
            tw.line(f"would delete {total}; add --daytona-cleanup-yes to delete them", bold=True)
        elif failed:
            tw.line(f"could not delete {failed} of {total} (see above)", red=True, bold=True)
        else:
            tw.line(f"deleted {total}", green=True, bold=True)
        return 1 if failed else 0
    finally:
        backend.close()
