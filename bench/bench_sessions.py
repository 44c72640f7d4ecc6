"""Session command round trip: ``execute_session_command`` (sync) against ``process.exec`` of
the same command, through the real SDK against the embedded server, per isolation mode.

A session command goes to the session's long-lived shell, which labels each output line
through two FIFO readers and writes the exit code to a file (as Daytona's daemon does);
``exec`` starts a fresh shell per call. Calls alternate, so drift hits both alike.

Prints figures, not a verdict: exit code 0 unless something errors.
Run: python bench/bench_sessions.py [--quick] [--iterations N]
"""

from __future__ import annotations

import argparse
import logging

from bench_local_server import client, medians_ms, serving, table  # script dir is on sys.path
from daytona import Sandbox, SessionExecuteRequest

from pytest_daytona.local.sandboxes.runner import choose_bwrap

COMMANDS = ("true", "echo hello; echo oops >&2")


def bench_mode(sandbox: Sandbox, iterations: int) -> list[list[str]]:
    """One row per command: exec ms, session ms, ratio."""
    sandbox.process.create_session("bench")
    rows = []
    for command in COMMANDS:

        def exec_once(text: str = command) -> None:
            assert sandbox.process.exec(text).exit_code == 0

        def session_once(text: str = command) -> None:
            request = SessionExecuteRequest(command=text)
            assert sandbox.process.execute_session_command("bench", request).exit_code == 0

        e, s = medians_ms([exec_once, session_once], iterations, warmup=3)
        rows.append([command, f"{e:.2f}", f"{s:.2f}", f"{s / e:.2f}x"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="10 iterations")
    args = parser.parse_args()
    iterations = 10 if args.quick else args.iterations
    logging.getLogger("pytest_daytona.local").setLevel(logging.ERROR)
    modes = ["bwrap", "none"] if choose_bwrap("auto") is not None else ["none"]
    print(f"session command vs exec, median of {iterations} calls")
    rows = []
    for mode in modes:
        with serving(isolation=mode) as srv:
            daytona = client(srv)
            sandbox = daytona.create()
            rows += [[mode, *row] for row in bench_mode(sandbox, iterations)]
            daytona.delete(sandbox)
    table(["isolation", "command", "exec ms", "session ms", "ratio"], rows, left=2)


if __name__ == "__main__":
    main()
