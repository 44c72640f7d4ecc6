"""What the sandbox boundary costs (issue 19): first command of a new sandbox, and the exec
round trip, for a default sandbox, one with ``network_block_all`` and one with an allow list.

Each round creates one sandbox of each kind in turn (so drift hits all alike), times create
until its first ``exec("true")`` answers, then the median of `--execs` exec round trips.
Prints medians over `--rounds` and the ratio to the default sandbox; exit code 0 unless
something errors. Run: python bench/bench_boundary.py [--rounds N] [--execs N]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

from daytona import CreateSandboxFromSnapshotParams, Daytona, DaytonaConfig

from pytest_daytona.local.server import LocalServer

KINDS: dict[str, dict[str, object]] = {
    "default (this machine's network)": {},
    "network_block_all": {"network_block_all": True},
    "network_allow_list (slirp4netns)": {"network_allow_list": "10.0.2.2/32"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--execs", type=int, default=30)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    first: dict[str, list[float]] = {kind: [] for kind in KINDS}
    execs: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with LocalServer(isolation="bwrap") as server:
        client = Daytona(DaytonaConfig(api_key=server.token, api_url=server.api_url))
        for _ in range(args.rounds):
            for kind, network in KINDS.items():
                start = time.perf_counter()
                sandbox = client.create(CreateSandboxFromSnapshotParams(**network))  # type: ignore[arg-type]
                sandbox.process.exec("true")
                first[kind].append((time.perf_counter() - start) * 1000)
                times = []
                for _ in range(args.execs):
                    t0 = time.perf_counter()
                    sandbox.process.exec("true")
                    times.append((time.perf_counter() - t0) * 1000)
                execs[kind].append(statistics.median(times))
                sandbox.delete()
    base_first = statistics.median(first["default (this machine's network)"])
    base_exec = statistics.median(execs["default (this machine's network)"])
    print(f"{'sandbox':36} {'create→first exec':>18} {'ratio':>6} {'exec true':>10} {'ratio':>6}")
    for kind in KINDS:
        f, e = statistics.median(first[kind]), statistics.median(execs[kind])
        print(f"{kind:36} {f:15.0f} ms {f / base_first:6.2f} {e:7.1f} ms {e / base_exec:6.2f}")
    print(f"(medians of {args.rounds} rounds; exec: median of {args.execs} calls per sandbox)")


if __name__ == "__main__":
    main()
