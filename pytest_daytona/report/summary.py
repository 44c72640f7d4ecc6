"""The end-of-run summary: the run's sandbox figures (all xdist workers' in one table), the
kept sandboxes and how to delete them, and those that could not be released."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..leases.keep import KEPT_LABEL, kept_ttl
from ..run.startup import SESSION_KEY, WORKER_OUTPUT_KEY, WORKERS_KEY
from ..run.stats import RunStats

if TYPE_CHECKING:
    from ..leases.background_deletes import ReleaseFailure
    from ..run.session import SandboxSession


def send_to_controller(config: pytest.Config) -> None:
    """In an xdist worker, once its sandboxes are released: its figures for the controller."""
    session = config.stash.get(SESSION_KEY, None)
    output = getattr(config, "workeroutput", None)
    if session is not None and output is not None:
        output[WORKER_OUTPUT_KEY] = session.stats.output()


def receive(config: pytest.Config, workeroutput: dict[str, Any] | None) -> None:
    """In the xdist controller: keep a finished worker's figures (`send_to_controller`)."""
    figures = (workeroutput or {}).get(WORKER_OUTPUT_KEY)
    if figures is not None:
        config.stash.setdefault(WORKERS_KEY, []).append(RunStats.model_validate(figures))


def run_stats(config: pytest.Config, session: SandboxSession) -> RunStats:
    """This process's figures with those of every worker that reported."""
    total = RunStats()
    for part in (session.stats, *config.stash.get(WORKERS_KEY, [])):
        total.merge(part)
    return total


def write(terminal: Any, config: pytest.Config) -> None:
    """The summary: figures (not with ``-q``), one line per sandbox (``-v``), then the kept
    sandboxes and the ones left behind (always)."""
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        return
    stats = run_stats(config, session)
    failures = list(session.failures.values())
    verbosity = config.get_verbosity()
    if stats.used and verbosity >= 0:
        terminal.section("pytest-daytona: sandboxes", sep="=")
        for line in _figures(stats, len(failures)):
            terminal.line(line)
        if verbosity > 0:
            for sandbox in sorted(stats.sandboxes.values(), key=lambda s: (s.worker, s.name)):
                test = f" {sandbox.test}" if sandbox.test else ""
                terminal.line(
                    f"  {sandbox.sandbox_id} ({sandbox.name}) {sandbox.scope} {sandbox.worker}: "
                    f"{sandbox.how or 'found'}, {sandbox.commands} commands, "
                    f"{sandbox.end}{test}"
                )
    kept = [s for s in stats.sandboxes.values() if s.end == "kept"]
    if kept:
        _write_kept(terminal, session, kept)
    if failures:
        _write_left(terminal, session, failures)


def _figures(stats: RunStats, failed: int) -> list[str]:
    return [
        f"created {stats.created}, resumed {stats.resumed}, reused {stats.reused}, "
        f"released {stats.released} (deleted {stats.deleted}, stopped {stats.stopped}), "
        f"kept {stats.kept}, failed to release {failed}",
        f"time: provisioning {stats.provisioning:.1f}s, commands {stats.running:.1f}s "
        f"({stats.commands} run), releasing {stats.releasing:.1f}s",
    ]


def _cleanup_command(session: SandboxSession, api_url: str | None = None) -> str:
    """The cleanup of this run's sandboxes; `api_url`: of a local server to clean instead."""
    where = f"--daytona-backend local --daytona-api-url {api_url} " if api_url else ""
    return (
        f"pytest --daytona-cleanup {where}--daytona-cleanup-run-id {session.run_id} "
        "--daytona-cleanup-older-than 0s --daytona-cleanup-yes"
    )


def _serve_first(data_dir: Path) -> str:
    """How to reach the sandboxes the embedded server left in `data_dir`."""
    return (
        f"they stay in the embedded server's data dir {data_dir}: start a server on it with "
        f"`pytest-daytona serve --data-dir {data_dir}` (not while a run uses it), which prints "
        "its URL and token"
    )


def _write_kept(terminal: Any, session: SandboxSession, kept: list[Any]) -> None:
    ttl = kept_ttl(session.settings)
    backend = session.backend
    terminal.section("pytest-daytona: sandboxes kept", sep="=", yellow=True)
    for sandbox in kept:
        test = f" for {sandbox.test}" if sandbox.test else ""
        terminal.line(f"{sandbox.sandbox_id} ({sandbox.name}){test}")
    head = f"{len(kept)} kept (stopped, label {KEPT_LABEL}=true"
    if backend.kind == "daytona":
        life = f"Daytona deletes them {ttl} min after they were kept" if ttl else "no TTL (ttl=0)"
        text = (
            f"{head}; {life}). Reach one with Daytona().get('<id>') and .start() in the daytona "
            f"SDK, or the Daytona dashboard. Delete them now with: {_cleanup_command(session)}"
        )
    elif backend.kind == "served":
        url = session.settings.api_url
        life = f"the local server deletes them {ttl} min after they were kept" if ttl else "no TTL"
        text = (
            f"{head}; {life}). Reach one while that `pytest-daytona serve` runs, with "
            f"Daytona(DaytonaConfig(api_url='{url}', api_key=<its token>)).get('<id>') and "
            f".start(). Delete them now with: {_cleanup_command(session, url)}"
        )
    elif backend.kept_data_dir is None:
        text = (
            f"{head}), but on the local backend they ended with this run: the embedded "
            "server's data dir was temporary. To look into one after the run, keep the data "
            "dir (--daytona-reuse keeps it in .pytest_cache), or run `pytest-daytona serve "
            "--data-dir DIR` and point the run at it (--daytona-api-url, DAYTONA_API_KEY)."
        )
    else:
        life = (
            f"a local server on the data dir deletes them once {ttl} min have passed since "
            "they were kept"
            if ttl
            else "no TTL"
        )
        text = (
            f"{head}; {life}); "
            f"{_serve_first(backend.kept_data_dir)}. Then reach one with "
            "Daytona(DaytonaConfig(api_url=<URL>, api_key=<token>)).get('<id>') and .start(), "
            f"or delete them with: {_cleanup_command(session, '<URL>')} (DAYTONA_API_KEY=<token>)"
        )
    terminal.line(text)


def _write_left(terminal: Any, session: SandboxSession, failures: list[ReleaseFailure]) -> None:
    """Name every sandbox that could not be released, and how to remove it."""
    terminal.section("pytest-daytona: sandboxes left behind", sep="=", red=True)
    for failure in failures:
        terminal.line(f"{failure.sandbox_id} ({failure.name}): {failure.reason}")
    backend = session.backend
    head = f"{len(failures)} sandbox{'es' * (len(failures) != 1)} could not be deleted"
    if backend.kind == "daytona":
        tail = f"they expire with their TTL. Remove them now with: {_cleanup_command(session)}"
    elif backend.kind == "served":
        url = session.settings.api_url
        tail = (
            "the local server deletes them when their TTL runs out. Remove them now with: "
            f"{_cleanup_command(session, url)}"
        )
    elif backend.kept_data_dir is None:
        tail = "they ended with the embedded server all the same (its data dir was temporary)"
    else:
        tail = (
            f"{_serve_first(backend.kept_data_dir)}; remove them with: "
            f"{_cleanup_command(session, '<URL>')} (DAYTONA_API_KEY=<token>)"
        )
    terminal.line(f"{head}; {tail}")
