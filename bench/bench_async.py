"""The async handle on the local backend, side by side with what it wraps.

Prints a table (medians of `--reps` alternating rounds, one process, one sandbox):

- ``await sb.run("true")`` against the async SDK's own ``await sdk.process.exec("true")``:
  what the plugin's script and call wrapper cost per command;
- `--jobs` commands of ``sleep 0.2`` through ``asyncio.gather`` against the same commands
  awaited one after another: what running them side by side saves.

Usage: python bench/bench_async.py [--reps 15] [--jobs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from pytest_daytona.local import LocalServer


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


async def alternate(runs: dict[str, Callable[[], Awaitable[float]]], reps: int) -> dict[str, float]:
    """Medians of `reps` rounds, each running every variant once, in turn."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            times[name].append(await run())
    return {name: statistics.median(values) for name, values in times.items()}


def row(figure: str, value: float, baseline: float, unit: str) -> None:
    print(f"| {figure} | {value:.3g} {unit} | {baseline:.3g} {unit} | {value / baseline:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()

    from pytest_daytona.async_fixtures import to_async
    from pytest_daytona.config.settings import Settings
    from pytest_daytona.run.coordination import RunDir
    from pytest_daytona.run.session import SandboxSession

    with tempfile.TemporaryDirectory() as tmp, LocalServer() as server:
        settings = Settings.model_validate(
            {"backend": "local", "api_url": server.api_url, "api_key": server.token, "prewarm": 0}
        )
        run_id = uuid.uuid4().hex
        session = SandboxSession(settings, RunDir.create(run_id, Path(tmp)), run_id=run_id)
        try:
            sync = session.acquire(settings)
            _ = sync.workspace
            sandbox = to_async(session, sync, settings)

            async def measure() -> None:
                sdk = await sandbox.sdk()
                await sandbox.run("true")  # warm: connection, lookup
                one = await alternate(
                    {
                        "run": lambda: timed(lambda: sandbox.run("true")),
                        "exec": lambda: timed(lambda: sdk.process.exec("true")),
                    },
                    args.reps,
                )
                jobs = [f"sleep 0.2; echo {n}" for n in range(args.jobs)]

                async def one_by_one() -> None:
                    for job in jobs:
                        await sandbox.run(job)

                async def side_by_side() -> None:
                    await asyncio.gather(*(sandbox.run(job) for job in jobs))

                many = await alternate(
                    {
                        "gather": lambda: timed(side_by_side),
                        "sequential": lambda: timed(one_by_one),
                    },
                    max(3, args.reps // 3),
                )
                print("| figure | plugin | baseline | ratio |\n|---|---|---|---|")
                row(
                    '`await sb.run("true")` vs `await sdk.process.exec("true")`',
                    one["run"] * 1000,
                    one["exec"] * 1000,
                    "ms",
                )
                row(
                    f"{args.jobs} x `sleep 0.2` with `asyncio.gather` vs one by one",
                    many["gather"],
                    many["sequential"],
                    "s",
                )

            asyncio.run(measure())
        finally:
            session.close()


if __name__ == "__main__":
    main()
