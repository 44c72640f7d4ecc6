"""Code round trips through the embedded server with the real SDK: ``process.code_run`` of
``print(1)`` and ``code_interpreter.run_code`` of ``1+1`` against
``process.exec("python3 -c 'print(1)'")``, in each isolation mode available here.

code_run starts a fresh ``python3`` per call (as the daemon does: shell, base64, python3);
run_code sends the code to the context's already running worker over a WebSocket. Calls are
interleaved so drift on the machine hits all three alike.

Prints figures, not a verdict: exit code 0 unless something errors.
Run: python bench/bench_code_run.py [--quick] [--iterations N]
"""

from __future__ import annotations

import argparse
import contextlib
import logging

from bench_local_server import medians_ms  # this script's directory is on sys.path
from daytona import Daytona, DaytonaConfig

from pytest_daytona.local.sandboxes.runner import choose_bwrap
from pytest_daytona.local.server import LocalServer


def _bench(isolation: str, iterations: int) -> tuple[float, float, float]:
    with LocalServer(isolation=isolation) as srv:  # type: ignore[arg-type]
        daytona = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        sandbox = daytona.create()

        def exec_python() -> None:
            assert sandbox.process.exec("python3 -c 'print(1)'").result == "1\n"

        def code_run() -> None:
            assert sandbox.process.code_run("print(1)").result == "1\n"

        def run_code() -> None:
            assert sandbox.code_interpreter.run_code("1+1").error is None

        figures = medians_ms([exec_python, code_run, run_code], iterations, warmup=3)
        daytona.delete(sandbox)
        dispatcher = getattr(daytona, "_event_dispatcher", None)
        if dispatcher is not None:  # the sync SDK has no public close
            with contextlib.suppress(Exception):
                dispatcher.disconnect()
    return figures[0], figures[1], figures[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="8 iterations")
    args = parser.parse_args()
    iterations = 8 if args.quick else args.iterations
    logging.getLogger("pytest_daytona.local").setLevel(logging.ERROR)
    modes = (["bwrap"] if choose_bwrap("auto") else []) + ["none"]
    print(f"median of {iterations} round trips (ms); ratio = against exec of python3 -c")
    print(
        f"{'isolation':>9} {'exec py':>8} {'code_run':>9} {'ratio':>6} {'run_code':>9} {'ratio':>6}"
    )
    for mode in modes:
        exec_ms, run_ms, interp_ms = _bench(mode, iterations)
        print(
            f"{mode:>9} {exec_ms:>8.1f} {run_ms:>9.1f} {run_ms / exec_ms:>5.2f}x"
            f" {interp_ms:>9.1f} {interp_ms / exec_ms:>5.2f}x"
        )


if __name__ == "__main__":
    main()
