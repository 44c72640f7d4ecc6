"""The server's images: pulled once, verified, unpacked once, kept by digest in its data dir.

Layout below `root`: ``blobs/sha256/<hex>`` (verified blobs), ``rootfs/<hex>/`` (an image's
unpacked root, complete or absent), ``images/<hex>.json`` (what was pulled), ``refs.json`` (tag
references to manifest digests). A tag pulled once is not asked for again (the pull policy
Docker calls ``missing``); a digest reference never is. Work in progress lives in ``tmp/``
and is removed when it fails.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import platform
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from .errors import ImageError
from .reference import Reference, is_loopback, parse
from .registry import INDEX_TYPES, RegistryClient, docker_credentials
from .unpack import LayerApplier, remove_tree

Log = Callable[[str], None]
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_ARCH.update({"armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"})


def this_platform() -> tuple[str, str]:
    """(os, architecture) in the OCI names of this machine."""
    machine = platform.machine().lower()
    return "linux", _ARCH.get(machine, machine)


class ImageConfig(BaseModel):
    """The parts of an image config a sandbox uses."""

    env: list[str] = Field(default_factory=list)
    working_dir: str | None = None
    user: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None


class PulledImage(BaseModel):
    """An image in the store: where its root is and what its config says."""

    reference: str
    canonical: str
    digest: str
    rootfs: Path
    config: ImageConfig
    size: int = 0


class ImageStore:
    """Pulls images into `root`; shared by every sandbox of the server and its restarts."""

    def __init__(
        self,
        root: Path,
        *,
        insecure_registries: Iterable[str] = (),
        default_registry: str | None = None,
        docker_config: Path | None = None,
    ) -> None:
        self.root = root
        self.insecure = frozenset(insecure_registries)
        self.default_registry = default_registry
        self.docker_config = docker_config
        self._pulls: dict[str, asyncio.Future[PulledImage]] = {}
        #: Registry requests by kind, over the store's life (the cache's savings, counted).
        self.requests: dict[str, int] = {}

    def cached(self, reference: str) -> PulledImage | None:
        """The image if it was pulled before (no network)."""
        ref = parse(reference, self.default_registry)
        digest = ref.digest or self._refs().get(ref.canonical)
        if digest is None:
            return None
        found = self._load(digest)
        if found is not None and found.reference != reference:
            found = found.model_copy(update={"reference": reference})
        return found

    async def pull(self, reference: str, log: Log | None = None) -> PulledImage:
        """The image, from the cache or its registry; one pull per image at a time."""
        say = log or (lambda _line: None)
        ref = parse(reference, self.default_registry)
        found = self.cached(reference)
        if found is not None:
            say(f"Image {reference} is cached ({found.digest})")
            return found
        pending = self._pulls.get(ref.canonical)
        if pending is None:
            pending = asyncio.ensure_future(self._pull(reference, ref, say))
            self._pulls[ref.canonical] = pending
            pending.add_done_callback(lambda _: self._pulls.pop(ref.canonical, None))
        return await asyncio.shield(pending)

    async def _pull(self, reference: str, ref: Reference, say: Log) -> PulledImage:
        plain = is_loopback(ref.registry) or ref.registry in self.insecure
        credentials = docker_credentials(ref.registry, self.docker_config)
        say(f"Pulling {reference} from {ref.registry}")
        client = RegistryClient(ref, reference, plain_http=plain, credentials=credentials)
        try:
            async with client:
                digest, manifest = await self._manifest(client, ref, reference)
                found = self._load(digest)
                if found is None:
                    found = await self._fetch(client, ref, reference, digest, manifest, say)
        finally:
            for kind, count in client.requests.items():
                self.requests[kind] = self.requests.get(kind, 0) + count
        if ref.digest is None:
            self._save_ref(ref.canonical, digest)
        say(f"Pulled {reference} ({digest})")
        return found.model_copy(update={"reference": reference})

    async def _manifest(
        self, client: RegistryClient, ref: Reference, image: str
    ) -> tuple[str, dict[str, Any]]:
        """The digest and body of this platform's manifest."""
        body, media = await client.manifest(ref.target)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if ref.digest and digest != ref.digest:
            raise ImageError(502, image, f"the registry sent a manifest with digest {digest}")
        data = _json(body, image, "manifest")
        if media in INDEX_TYPES or "manifests" in data:
            wanted = this_platform()
            offered = []
            for entry in data.get("manifests") or []:
                plat = entry.get("platform") or {}
                offered.append(f"{plat.get('os')}/{plat.get('architecture')}")
                if (plat.get("os"), plat.get("architecture")) == wanted:
                    body, _ = await client.manifest(entry["digest"])
                    digest = "sha256:" + hashlib.sha256(body).hexdigest()
                    if digest != entry["digest"]:
                        raise ImageError(502, image, f"manifest {entry['digest']}: digest mismatch")
                    return digest, _json(body, image, "manifest")
            raise ImageError(
                400,
                image,
                f"no manifest for this machine's platform {'/'.join(wanted)} "
                f"(the image has: {', '.join(offered) or 'none'})",
            )
        return digest, data

    async def _fetch(
        self,
        client: RegistryClient,
        ref: Reference,
        image: str,
        digest: str,
        manifest: dict[str, Any],
        say: Log,
    ) -> PulledImage:
        config_desc = manifest.get("config") or {}
        config_path = await self._blob(client, image, config_desc)
        raw = _json(config_path.read_bytes(), image, "config")
        wanted = this_platform()
        got = (raw.get("os"), raw.get("architecture"))
        if all(got) and got != wanted:
            raise ImageError(
                400,
                image,
                f"the image is for {got[0]}/{got[1]}, not this machine's {'/'.join(wanted)}",
            )
        layers: list[dict[str, Any]] = manifest.get("layers") or []
        for layer in layers:
            if "zstd" in str(layer.get("mediaType", "")):
                raise ImageError(400, image, f"layer {layer.get('digest')}: zstd is not supported")
        hexdigest = digest.split(":", 1)[1]
        work = self.root / "tmp" / f"{hexdigest}.{secrets.token_hex(4)}"
        applier = LayerApplier(work, image)
        downloads = [asyncio.ensure_future(self._blob(client, image, d, say)) for d in layers]
        try:
            work.mkdir(parents=True)
            for layer, download in zip(layers, downloads, strict=True):
                path = await download
                compressed = _is_gzip(path)
                await asyncio.to_thread(_apply, applier, path, str(layer["digest"]), compressed)
            await asyncio.to_thread(applier.finish)
            target = self.root / "rootfs" / hexdigest
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                await asyncio.to_thread(remove_tree, work)  # another process won
            else:
                os.rename(work, target)
        except OSError as exc:
            cause = "no space left on the device" if exc.errno == errno.ENOSPC else str(exc)
            raise ImageError(507 if exc.errno == errno.ENOSPC else 500, image, cause) from None
        finally:
            for download in downloads:
                download.cancel()
            await asyncio.gather(*downloads, return_exceptions=True)
            await asyncio.to_thread(remove_tree, work)
        pulled = PulledImage(
            reference=image,
            canonical=ref.pinned(digest).canonical,
            digest=digest,
            rootfs=target,
            config=_config(raw.get("config") or {}),
            size=sum(int(d.get("size") or 0) for d in layers),
        )
        _atomic(self.root / "images" / f"{hexdigest}.json", pulled.model_dump_json().encode())
        return pulled

    async def _blob(
        self, client: RegistryClient, image: str, desc: dict[str, Any], say: Log | None = None
    ) -> Path:
        """A verified blob in the cache, fetched when missing."""
        digest = str(desc.get("digest") or "")
        if not digest.startswith("sha256:") or len(digest) != 71:
            raise ImageError(502, image, f"unsupported blob digest {digest!r}")
        path = self.root / "blobs" / "sha256" / digest[7:]
        if path.exists():
            return path
        size = int(desc.get("size") or 0)
        if say is not None:
            say(f"Downloading layer {digest[:19]}… {size / 1e6:.1f} MB")
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{digest[7:]}.{secrets.token_hex(4)}")
        hasher = hashlib.sha256()
        got = 0
        try:
            with open(partial, "wb") as out:
                async for chunk in client.blob(digest):
                    hasher.update(chunk)
                    got += len(chunk)
                    if size and got > size:
                        break
                    out.write(chunk)
            actual = "sha256:" + hasher.hexdigest()
            if actual != digest or (size and got != size):
                raise ImageError(
                    502,
                    image,
                    f"layer {digest}: digest mismatch: the registry sent {got} bytes with "
                    f"digest {actual}",
                )
            os.rename(partial, path)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise ImageError(507, image, "no space left on the device while pulling") from None
            raise
        finally:
            if partial.exists():
                partial.unlink()
        return path

    def _refs(self) -> dict[str, str]:
        try:
            data = json.loads((self.root / "refs.json").read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _save_ref(self, canonical: str, digest: str) -> None:
        refs = self._refs()
        refs[canonical] = digest
        _atomic(self.root / "refs.json", json.dumps(refs, indent=1).encode())

    def _load(self, digest: str) -> PulledImage | None:
        path = self.root / "images" / f"{digest.split(':', 1)[-1]}.json"
        try:
            pulled = PulledImage.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            return None
        return pulled if pulled.rootfs.is_dir() else None


def _apply(applier: LayerApplier, path: Path, digest: str, compressed: bool) -> None:
    with open(path, "rb") as stream:
        applier.apply(stream, digest, compressed)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _json(body: bytes, image: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise ImageError(502, image, f"the registry sent a {what} that is not JSON") from None
    if not isinstance(data, dict):
        raise ImageError(502, image, f"the registry sent a {what} that is not an object")
    return data


def _config(raw: dict[str, Any]) -> ImageConfig:
    return ImageConfig(
        env=[str(e) for e in raw.get("Env") or []],
        working_dir=raw.get("WorkingDir") or None,
        user=raw.get("User") or None,
        entrypoint=raw.get("Entrypoint") or None,
        cmd=raw.get("Cmd") or None,
    )


def _atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
