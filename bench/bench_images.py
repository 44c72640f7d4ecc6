"""Image figures: a sandbox from a cached image against one on the host userland, and the
image store's first pull against ``skopeo copy`` of the same image.

A. ``client.create(CreateSandboxFromImageParams(image=REF))`` against ``client.create()``
   through the real SDK against ``LocalServer(isolation="bwrap")``, the image pulled once
   before timing; create alone and create + a first ``exec("echo ok")``, each sandbox
   deleted after it is measured. Target: image / host <= 2x.
B. ``ImageStore.pull`` of a ~50 MB image (busybox plus layers of random, incompressible
   bytes) into a fresh store against ``skopeo copy docker://REF oci:DIR`` into a fresh
   directory. The store also unpacks the layers into a root file system; skopeo writes
   the blobs only. Target: store / skopeo <= 1.5x.

The registry is Debian's ``docker-registry`` on 127.0.0.1 with images built by the test
helpers (``tests/local/images/registry.py``: umoci, skopeo). Runs alternate, so drift on the
machine hits both sides alike; everything lives in one temporary directory.

Prints figures, not a verdict: exit code 0 unless something errors.
Run: .venv/bin/python bench/bench_images.py [--quick] [--creates N] [--pulls N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_local_server import client, serving, table  # script dir is on sys.path
from daytona import CreateSandboxFromImageParams, Daytona

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.local.images.registry
from pytest_daytona.local.images import ImageStore
from pytest_daytona.local.sandboxes.runner import choose_bwrap
from tests.local.images.registry import Layer, Registry, build_image, manifest_digest

TARGET_CREATE = 2.0
TARGET_PULL = 1.5
#: The big image's extra layers: 4 x 12.5 MB of random bytes (gzip cannot shrink them).
BIG_LAYERS = 4
BIG_LAYER_BYTES = 12_500_000


def pushed_bytes(registry: Registry, name: str) -> int:
    """Compressed bytes of `name`'s config and layers, as the registry holds them."""
    _, manifest = manifest_digest(registry, name)
    config = manifest["config"]
    layers = manifest["layers"]
    assert isinstance(config, dict) and isinstance(layers, list)
    return int(config["size"]) + sum(int(layer["size"]) for layer in layers)


def summary(values: list[float]) -> str:
    """'median (min-max) ms' of `values` (seconds)."""
    med, lo, hi = (v * 1000 for v in (statistics.median(values), min(values), max(values)))
    digits = 0 if med >= 100 else 1
    return f"{med:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f}) ms"


def ratio_row(figure: str, value: list[float], base: list[float], target: float) -> list[str]:
    """One table row: both figures, their ratio, the target and whether it is met."""
    ratio = statistics.median(value) / statistics.median(base)
    return [
        figure, summary(value), summary(base),
        f"{ratio:.2f}x", f"<= {target:g}x", "PASS" if ratio <= target else "over target",
    ]  # fmt: skip


def create_once(daytona: Daytona, image: str | None) -> tuple[float, float]:
    """(create, create + first exec) seconds of one sandbox, deleted afterwards."""
    started = time.perf_counter()
    sandbox = (
        daytona.create(CreateSandboxFromImageParams(image=image)) if image else daytona.create()
    )
    created = time.perf_counter()
    result = sandbox.process.exec("echo ok")
    executed = time.perf_counter()
    if result.exit_code != 0 or result.result.strip() != "ok":
        raise RuntimeError(f"exec in the sandbox failed: {result!r}")
    daytona.delete(sandbox)
    return created - started, executed - started


def bench_create(tmp: Path, registry: Registry, image: str, runs: int) -> list[list[str]]:
    times: dict[str | None, list[tuple[float, float]]] = {image: [], None: []}
    with serving(data_dir=tmp / "server", isolation="bwrap", default_registry=registry.host) as srv:
        daytona = client(srv)
        for ref in times:  # the first pull (and the first host sandbox) happen here, untimed
            create_once(daytona, ref)
        for _ in range(runs):
            for ref, bucket in times.items():
                bucket.append(create_once(daytona, ref))
    img, host = times[image], times[None]
    return [
        ratio_row("create", [c for c, _ in img], [c for c, _ in host], TARGET_CREATE),
        ratio_row(
            "create + exec `echo ok`",
            [e for _, e in img],
            [e for _, e in host],
            TARGET_CREATE,
        ),
    ]


def timed(fn: Callable[[], Path]) -> float:
    """Seconds `fn` takes; the directory it returns is removed afterwards, untimed."""
    started = time.perf_counter()
    dest = fn()
    elapsed = time.perf_counter() - started
    shutil.rmtree(dest)
    return elapsed


def bench_pull(tmp: Path, registry: Registry, image: str, runs: int) -> list[str]:
    counter = iter(range(10**6))

    def store_pull() -> Path:
        root = tmp / f"store-{next(counter)}"
        pulled = asyncio.run(ImageStore(root, default_registry=registry.host).pull(image))
        assert pulled.digest
        return root

    def skopeo_copy() -> Path:
        dest = tmp / f"oci-{next(counter)}"
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{image}",
             f"oci:{dest}"],
            check=True,
        )  # fmt: skip
        return dest

    times: dict[str, list[float]] = {"store": [], "skopeo": []}
    fns = {"store": store_pull, "skopeo": skopeo_copy}
    for fn in fns.values():  # warm-up: the registry's files into the page cache
        timed(fn)
    for _ in range(runs):
        for name, fn in fns.items():
            times[name].append(timed(fn))
    return ratio_row("first pull", times["store"], times["skopeo"], TARGET_PULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=7, help="creates per side (7)")
    parser.add_argument("--pulls", type=int, default=5, help="pulls per side (5)")
    parser.add_argument("--quick", action="store_true", help="3 creates, 2 pulls")
    args = parser.parse_args()
    creates, pulls = (3, 2) if args.quick else (args.creates, args.pulls)
    logging.getLogger("pytest_daytona.local").setLevel(logging.ERROR)
    if choose_bwrap("auto") is None:
        raise SystemExit("bubblewrap does not work here: image sandboxes need it")
    with tempfile.TemporaryDirectory(prefix="bench-images-") as name:
        tmp = Path(name)
        (tmp / "registry").mkdir()
        (tmp / "build").mkdir()
        registry = Registry(tmp / "registry").start()
        try:
            busy = build_image(
                registry,
                "bench/busy:1",
                tmp / "build",
                layers=[Layer({"etc/bench-marker": b"from-the-image\n"})],
                env={"PATH": "/bin"},
            )
            big = build_image(
                registry,
                "bench/big:1",
                tmp / "build",
                layers=[
                    Layer({f"data/random-{n}.bin": os.urandom(BIG_LAYER_BYTES)})
                    for n in range(BIG_LAYERS)
                ],
                env={"PATH": "/bin"},
            )
            size = pushed_bytes(registry, "bench/big:1")
            print(f"A. sandbox create, {busy} (cached) vs host userland, bubblewrap;")
            print(f"   median (min-max) of {creates} runs each, alternating, each sandbox deleted")
            header = ["figure", "image", "host userland", "ratio", "target", "result"]
            table(header, bench_create(tmp, registry, busy, creates))
            print(f"\nB. first pull of {big}: {size / 1e6:.1f} MB pushed (compressed),")
            print(f"   {BIG_LAYERS} random layers of {BIG_LAYER_BYTES / 1e6:g} MB on busybox;")
            print(f"   median (min-max) of {pulls} runs each, alternating, fresh destination")
            header = ["figure", "ImageStore.pull", "skopeo copy", "ratio", "target", "result"]
            table(header, [bench_pull(tmp, registry, big, pulls)])
            print("   skopeo: copy docker://REF oci:DIR --src-tls-verify=false (blobs only);")
            print("   the store also checks digests and unpacks the layers into a root file system")
        finally:
            registry.stop()


if __name__ == "__main__":
    main()
