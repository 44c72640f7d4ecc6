"""File round trip through the SDK: ``upload_file`` then ``download_file`` of the same file,
against a plain local copy there and back (``shutil.copyfile`` twice), for 1 KiB and 10 MiB.

Bytes go SDK -> HTTP -> server -> agent (in 1 MiB chunks over its socket) -> the sandbox's
file, and back. Both kinds of round trip alternate, so drift on the machine hits both alike.
One row per isolation mode (bubblewrap when it works here, and none).

Prints figures, not a verdict: exit code 0 unless something errors.
Run: python bench/bench_files.py [--quick] [--iterations N]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from bench_local_server import medians_ms  # this script's directory is on sys.path
from daytona import Daytona, DaytonaConfig

from pytest_daytona.local.sandboxes.runner import choose_bwrap
from pytest_daytona.local.server import LocalServer

SIZES = {"1 KiB": 1 << 10, "10 MiB": 10 << 20}


def bench_mode(isolation: str, work: Path, iterations: int) -> None:
    """Print one row per size for `isolation`."""
    with LocalServer(isolation=isolation) as srv:  # type: ignore[arg-type]
        daytona = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        sandbox = daytona.create()
        for label, size in SIZES.items():
            source, back = work / f"src-{size}", work / f"back-{size}"
            source.write_bytes(os.urandom(size))
            middle, copy_back = work / f"middle-{size}", work / f"copy-back-{size}"

            def through_sdk(src: str = str(source), dst: str = str(back)) -> None:
                sandbox.fs.upload_file(src, "bench.bin")
                sandbox.fs.download_file("bench.bin", dst)

            def local_copy(src: Path = source, mid: Path = middle, dst: Path = copy_back) -> None:
                shutil.copyfile(src, mid)
                shutil.copyfile(mid, dst)

            sdk_ms, local_ms = medians_ms([through_sdk, local_copy], iterations, warmup=2)
            assert back.read_bytes() == source.read_bytes()
            print(
                f"{isolation:>6} {label:>7} {sdk_ms:>9.2f} {local_ms:>9.3f} "
                f"{sdk_ms / local_ms:>7.1f}x {size / (1 << 20) * 2 / (sdk_ms / 1000):>9.1f}"
            )
        daytona.delete(sandbox)
        dispatcher = getattr(daytona, "_event_dispatcher", None)
        if dispatcher is not None:  # the sync SDK has no public close
            with contextlib.suppress(Exception):
                dispatcher.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 iterations")
    args = parser.parse_args()
    iterations = 5 if args.quick else args.iterations
    logging.getLogger("pytest_daytona.local").setLevel(logging.ERROR)
    modes = (["bwrap"] if choose_bwrap("auto") else []) + ["none"]
    print(f"upload_file + download_file (local paths) vs two local copies, median of {iterations}")
    print(f"{'mode':>6} {'size':>7} {'SDK ms':>9} {'copy ms':>9} {'ratio':>8} {'SDK MiB/s':>9}")
    with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp:
        for mode in modes:
            bench_mode(mode, Path(tmp), iterations)


if __name__ == "__main__":
    main()
