"""The image store against a real registry (Debian's docker-registry on loopback): what a pull
fetches, verifies, unpacks and keeps, and each way a pull can fail."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tarfile
import textwrap
from io import BytesIO
from pathlib import Path

import pytest

from pytest_daytona.local.images import ImageError, ImageStore
from tests.conftest import RegistryImages
from tests.local.images.registry import (
    Layer,
    build_image,
    free_port,
    manifest_digest,
    push_foreign_index,
)

#: The quick development loop (`pytest -m quick`, README: Development) runs all of these.
pytestmark = pytest.mark.quick


def pull(store: ImageStore, ref: str) -> object:
    return asyncio.run(store.pull(ref))


def test_pull_unpacks_the_layers_with_their_whiteouts_and_reads_the_config(
    store: ImageStore, test_images: RegistryImages
) -> None:
    image = asyncio.run(store.pull(test_images.busy))

    root = image.rootfs
    assert (root / "etc/ho-marker").read_text() == "from-the-image\n"
    assert (root / "work/data.txt").read_text() == "data\n"
    assert not (root / "etc/gone").exists()  # added in one layer, whited out in the next
    assert not list(root.rglob(".wh.*"))
    assert (root / "bin/sh").is_symlink() and os.readlink(root / "bin/sh") == "busybox"
    assert image.config.env == ["HO_IMAGE_ENV=from-image", "PATH=/bin"]
    assert image.config.working_dir == "/work"
    assert image.digest.startswith("sha256:") and image.canonical.endswith(image.digest)


def test_a_second_pull_and_a_restarted_store_ask_the_registry_nothing(
    store: ImageStore, test_images: RegistryImages, tmp_path: Path
) -> None:
    registry = test_images.registry
    ref = build_image(registry, "once:1", test_images.work, layers=[Layer({"a": b"1"})])
    before = len(registry.requests())
    first = asyncio.run(store.pull(ref))
    assert registry.blob_requests("once") == 3  # config and two layers (busybox, a)
    middle = len(registry.requests())

    again = asyncio.run(store.pull(ref))
    restarted = ImageStore(store.root, default_registry=registry.host)
    after_restart = asyncio.run(restarted.pull(ref))

    assert middle > before
    assert len(registry.requests()) == middle  # nothing at all, not even the manifest
    assert again.rootfs == first.rootfs == after_restart.rootfs
    assert restarted.cached(ref) is not None


def test_concurrent_pulls_of_one_image_download_each_blob_once(
    store: ImageStore, test_images: RegistryImages
) -> None:
    registry = test_images.registry
    ref = build_image(registry, "shared:1", test_images.work, layers=[Layer({"s": b"x"})])

    async def many() -> list[Path]:
        pulls = await asyncio.gather(*(store.pull(ref) for _ in range(5)))
        return [p.rootfs for p in pulls]

    roots = asyncio.run(many())

    assert len(set(roots)) == 1
    assert registry.blob_requests("shared") == 3


def test_a_digest_reference_pulls_that_manifest(
    store: ImageStore, test_images: RegistryImages
) -> None:
    digest, _ = manifest_digest(test_images.registry, "busy:1")
    image = asyncio.run(store.pull(f"{test_images.registry.host}/busy@{digest}"))

    assert image.digest == digest
    assert (image.rootfs / "etc/ho-marker").exists()


def test_a_short_name_without_a_default_registry_says_how_to_fix_it(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")

    with pytest.raises(ImageError) as raised:
        asyncio.run(store.pull("python:3.12-slim"))

    assert raised.value.status == 400
    assert "no registry host" in str(raised.value) and "--default-registry" in str(raised.value)


def test_a_short_name_resolves_against_the_default_registry(
    store: ImageStore, test_images: RegistryImages
) -> None:
    image = asyncio.run(store.pull("debian:12.9"))  # library/debian:12.9 in the test registry

    assert (image.rootfs / "etc/ho-marker").exists()
    assert image.canonical.startswith(f"{test_images.registry.host}/library/debian@")


def test_an_unknown_image_names_image_and_registry(
    store: ImageStore, test_images: RegistryImages
) -> None:
    ref = f"{test_images.registry.host}/no-such-image:1"
    with pytest.raises(ImageError, match=r"image .*no-such-image:1: not found in registry"):
        asyncio.run(store.pull(ref))
    assert not (store.root / "rootfs").exists() or not list((store.root / "rootfs").iterdir())


def test_an_unreachable_registry_is_a_clear_error(store: ImageStore) -> None:
    ref = f"127.0.0.1:{free_port()}/busy:1"  # nothing listens there

    with pytest.raises(ImageError) as raised:
        asyncio.run(store.pull(ref))

    assert raised.value.status == 502
    assert f"image {ref}: registry 127.0.0.1:" in str(raised.value)
    assert "unreachable" in str(raised.value)


def test_a_layer_whose_digest_does_not_match_is_refused_and_nothing_stays(
    store: ImageStore, test_images: RegistryImages
) -> None:
    registry = test_images.registry
    ref = build_image(registry, "corrupt:1", test_images.work, layers=[Layer({"c": b"c" * 5000})])
    _, manifest = manifest_digest(registry, "corrupt:1")
    layer = manifest["layers"][-1]["digest"]  # type: ignore[index]
    registry.corrupt_blob(layer)

    with pytest.raises(ImageError) as raised:
        asyncio.run(store.pull(ref))

    assert raised.value.status == 502
    assert f"layer {layer}: digest mismatch" in str(raised.value)
    blobs = store.root / "blobs" / "sha256"
    assert not (blobs / layer.split(":")[1]).exists()
    assert not [p for p in blobs.iterdir() if p.name.startswith(".")]  # no partial download
    assert not list((store.root / "tmp").iterdir())  # no half-unpacked root
    assert not (store.root / "rootfs").exists() or not list((store.root / "rootfs").iterdir())
    assert store.cached(ref) is None


def test_an_index_for_another_platform_only_is_refused(
    store: ImageStore, test_images: RegistryImages
) -> None:
    registry = test_images.registry
    build_image(registry, "foreign:src", test_images.work)
    ref = push_foreign_index(registry, "foreign:src", "foreign:1")

    with pytest.raises(ImageError) as raised:
        asyncio.run(store.pull(ref))

    assert raised.value.status == 400
    assert "no manifest for this machine's platform linux/" in str(raised.value)
    assert "the image has: linux/" in str(raised.value)


def _layer_tar(entries: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buffer = BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info in entries:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, BytesIO(payload) if payload is not None else None)
    return buffer.getvalue()


def test_a_layer_cannot_write_outside_the_root(tmp_path: Path) -> None:
    from pytest_daytona.local.images.unpack import LayerApplier

    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    link = tarfile.TarInfo("etc")
    link.type, link.linkname = tarfile.SYMTYPE, str(outside)  # an absolute symlink out
    passwd = tarfile.TarInfo("etc/passwd")
    relative = tarfile.TarInfo("up")
    relative.type, relative.linkname = tarfile.SYMTYPE, "../../.."
    escaped = tarfile.TarInfo("up/escaped")
    layer = _layer_tar([link, passwd, relative, escaped], {"etc/passwd": b"x", "up/escaped": b"y"})
    applier = LayerApplier(root, "evil:1")
    applier.apply(BytesIO(layer), "sha256:test", compressed=False)

    assert list(outside.iterdir()) == []  # the symlink was resolved inside the root
    assert (root / str(outside).lstrip("/") / "passwd").read_bytes() == b"x"
    assert (root / "escaped").read_bytes() == b"y"  # ../../.. stops at the root

    dotdot = tarfile.TarInfo("../evil")
    with pytest.raises(ImageError, match=r"leaves the image"):
        applier.apply(BytesIO(_layer_tar([dotdot], {"../evil": b"z"})), "sha256:x", False)
    assert not (tmp_path / "evil").exists()


def test_a_full_disk_during_unpack_fails_cleanly(
    tmp_path: Path, test_images: RegistryImages
) -> None:
    """The store's root on a 1 MB tmpfs (mounted in a user and mount namespace of a child
    process): the busybox layer does not fit."""
    script = textwrap.dedent(
        f"""
        import asyncio, os, subprocess, sys
        root = {str(tmp_path / "tiny")!r}
        os.makedirs(root)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", root], check=True)
        from pytest_daytona.local.images import ImageError, ImageStore
        store = ImageStore(__import__("pathlib").Path(root))
        try:
            asyncio.run(store.pull({test_images.busy!r}))
        except ImageError as exc:
            left = [p for p in os.listdir(os.path.join(root, "tmp"))] if os.path.isdir(
                os.path.join(root, "tmp")) else []
            rootfs = os.path.join(root, "rootfs")
            print("ERROR", exc.status, exc, "| left:", left,
                  "| rootfs:", os.listdir(rootfs) if os.path.isdir(rootfs) else [])
        else:
            print("NO ERROR")
        """
    )
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ERROR 507 image "), done.stdout
    assert "no space left on the device" in done.stdout
    assert "| left: [] | rootfs: []" in done.stdout
