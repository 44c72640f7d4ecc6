"""Images for sandboxes and snapshots: pulled from a registry, or built from a declarative
``Image`` (its Dockerfile) step by step, each step's layer cached by the steps that led to it.

A ``RUN`` runs in a copy-on-write root over the layers so far (this machine's network, the
image's user and env, ``/bin/sh -c`` for the shell form as Docker does); what it wrote, the
overlay's upper directory with its whiteouts, becomes the step's layer. ``COPY``/``ADD`` take
files from the build contexts the SDK uploaded. ``ENV``, ``WORKDIR``, ``USER``, ``ENTRYPOINT``
and ``CMD`` change the image's config. An unchanged Dockerfile builds once: a second build
finds every step's layer and reports it ``CACHED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from ..errors import ApiError
from ..images import ImageError, ImageStore, PulledImage
from ..images.root import ImageUse
from ..sandboxes.image_sandbox import ImageLaunch
from . import dockerfile
from .dockerfile import DockerfileError, Instruction

Log = Callable[[str], None]

#: Seconds one ``RUN`` may take before the build fails.
RUN_TIMEOUT = 1800.0


class BuildFailed(Exception):
    """A build that failed: the reason, as the snapshot's or sandbox's error reason."""


def from_pulled(pulled: PulledImage, name: str | None = None) -> ImageUse:
    """What a sandbox of a pulled image runs in."""
    config = pulled.config
    return ImageUse(
        name=name or pulled.reference,
        layers=[str(pulled.rootfs)],
        env=list(config.env),
        working_dir=config.working_dir,
        user=config.user,
        entrypoint=config.entrypoint,
        cmd=config.cmd,
    )


class Builder:
    """Pulls and builds images into ImageUse records, with a step cache under `root`."""

    def __init__(
        self,
        images: ImageStore,
        root: Path,
        *,
        bwrap: str | None,
        contexts: Callable[[list[str]], list[Path]],
    ) -> None:
        self.images = images
        self.root = root
        self.bwrap = bwrap
        self._contexts = contexts
        self._locks: dict[str, asyncio.Lock] = {}

    async def pull(self, reference: str, log: Log) -> ImageUse:
        """An image from its registry (or the cache): BuildFailed naming image and cause."""
        try:
            return from_pulled(await self.images.pull(reference, log), reference)
        except ImageError as exc:
            raise BuildFailed(str(exc)) from None

    def cached_pull(self, reference: str) -> ImageUse | None:
        """The image when it is in the cache already (no network), else None."""
        try:
            pulled = self.images.cached(reference)
        except ImageError:
            return None  # the pull reports it
        return None if pulled is None else from_pulled(pulled, reference)

    async def build(self, text: str, context_hashes: list[str], log: Log) -> ImageUse:
        """The image a Dockerfile describes, built (or found) step by step."""
        base, steps = _parse(text)
        image = await self.pull(base, log)
        contexts = self._contexts(context_hashes)
        key = ""
        for number, (step, key) in enumerate(_keyed(image, steps, context_hashes), start=1):
            log(f"Step {number}/{len(steps)} : {step.line}")
            image = await self._step(image, step, key, contexts, log)
        image.name = f"local-build:{(key or _digest(f'FROM {image.layers}'))[:12]}"
        log(f"Successfully built {image.name}")
        return image

    def cached_build(self, text: str, context_hashes: list[str]) -> ImageUse | None:
        """The built image when its base and every step's layer are cached (no network, no
        build), else None (a bad Dockerfile too: the build reports it)."""
        try:
            base, steps = _parse(text)
        except BuildFailed:
            return None
        image = self.cached_pull(base)
        if image is None:
            return None
        key = ""
        for step, key in _keyed(image, steps, context_hashes):
            if step.keyword in dockerfile.CONFIG_ONLY:
                image = _configure(image, step)
            elif step.keyword not in dockerfile.IGNORED and step.keyword != "SHELL":
                layer = self._layer_dir(key) / "layer"
                if not layer.is_dir():
                    return None
                image = image.model_copy(update={"layers": [*image.layers, str(layer)]})
        image.name = f"local-build:{(key or _digest(f'FROM {image.layers}'))[:12]}"
        return image

    def _layer_dir(self, key: str) -> Path:
        """Where the layer of the step with cache key `key` is kept (``layer/`` inside)."""
        return self.root / "layers" / key

    async def _step(
        self, image: ImageUse, step: Instruction, key: str, contexts: list[Path], log: Log
    ) -> ImageUse:
        if step.keyword in dockerfile.CONFIG_ONLY:
            return _configure(image, step)
        if step.keyword in dockerfile.IGNORED or step.keyword == "SHELL":
            log(f" ---> {step.keyword} is recorded only (no effect on a local sandbox)")
            return image
        layer = self._layer_dir(key)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if (layer / "layer").is_dir():
                log(" ---> CACHED")
                return image.model_copy(update={"layers": [*image.layers, str(layer / "layer")]})
            work = self.root / "tmp" / f"{key}.{os.getpid()}"
            _remove(work)
            try:
                if step.keyword == "RUN":
                    await self._run(image, step, work, log)
                else:
                    await asyncio.to_thread(_copy, image, step, work, contexts)
                layer.mkdir(parents=True, exist_ok=True)
                os.rename(work / "upper", layer / "layer")
            except OSError as exc:
                raise BuildFailed(f"{step.line}: {exc}") from None
            finally:
                await asyncio.to_thread(_remove, work)
        return image.model_copy(update={"layers": [*image.layers, str(layer / "layer")]})

    async def _run(self, image: ImageUse, step: Instruction, work: Path, log: Log) -> None:
        if self.bwrap is None:
            raise BuildFailed(f"{step.line}: RUN needs bubblewrap (apt-get install bubblewrap)")
        launch = ImageLaunch.of(image, work, "buildkitsandbox")
        command = step.words() if step.is_exec_form() else ["/bin/sh", "-c", step.rest]
        env = {**launch.environment(), **image.env_dict()}
        argv = launch.argv(self.bwrap, command, env=env, agent=False)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        stdout = proc.stdout

        async def follow() -> int:
            while line := await stdout.readline():
                log(line.decode(errors="replace").rstrip("\n"))
            return await proc.wait()

        try:
            code = await asyncio.wait_for(follow(), RUN_TIMEOUT)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            await proc.wait()
            raise BuildFailed(f"{step.line}: timed out after {RUN_TIMEOUT:.0f} s") from None
        if code != 0:
            raise BuildFailed(f"The command '{step.rest}' returned a non-zero code: {code}")


def _parse(text: str) -> tuple[str, list[Instruction]]:
    try:
        return dockerfile.parse(text)
    except DockerfileError as exc:
        raise BuildFailed(f"Dockerfile: {exc}") from None


def _keyed(
    base: ImageUse, steps: list[Instruction], context_hashes: list[str]
) -> Iterator[tuple[Instruction, str]]:
    """Each step with its cache key: chained over the base's layers and the steps before."""
    key = _digest(f"FROM {base.layers}")
    for step in steps:
        copies = context_hashes if step.keyword in ("COPY", "ADD") else []
        key = _digest(key, step.line, *copies)
        yield step, key


def _configure(image: ImageUse, step: Instruction) -> ImageUse:
    """A config-only instruction applied to `image`'s config."""
    if step.keyword == "ENV":
        pairs = dockerfile.env_pairs(step.rest)
        kept = [e for e in image.env if e.partition("=")[0] not in pairs]
        return image.model_copy(update={"env": [*kept, *(f"{k}={v}" for k, v in pairs.items())]})
    if step.keyword == "WORKDIR":
        path = " ".join(step.words())
        joined = PurePosixPath(image.working_dir or "/") / path
        return image.model_copy(update={"working_dir": str(joined)})
    if step.keyword == "USER":
        return image.model_copy(update={"user": step.rest.strip() or None})
    if step.keyword == "ENTRYPOINT":
        words = step.words() if step.is_exec_form() else ["/bin/sh", "-c", step.rest]
        return image.model_copy(update={"entrypoint": words, "cmd": None})
    if step.keyword == "CMD":
        words = step.words() if step.is_exec_form() else ["/bin/sh", "-c", step.rest]
        return image.model_copy(update={"cmd": words})
    return image  # ARG, LABEL: nothing a sandbox sees


def _copy(image: ImageUse, step: Instruction, work: Path, contexts: list[Path]) -> None:
    """``COPY``/``ADD`` from the uploaded contexts into a new layer at `work`/upper."""
    sources, dest = dockerfile.copy_pair(step)
    upper = work / "upper"
    upper.mkdir(parents=True)
    target = PurePosixPath(image.working_dir or "/") / dest
    if not contexts:
        raise BuildFailed(f"{step.line}: the build has no uploaded context to copy from")
    for source in sources:
        found = False
        for tar_path in contexts:
            found |= _extract(tar_path, source, upper, target, dest.endswith("/"))
        if not found:
            raise BuildFailed(f"{step.line}: {source} is not in the build context")


def _extract(tar_path: Path, source: str, upper: Path, target: PurePosixPath, into: bool) -> bool:
    """Copy member `source` (file or directory) of a context archive to in-image `target`
    below `upper`; whether the archive had it."""
    prefix = source.strip("/")
    found = False
    with tarfile.open(tar_path) as tar:
        for member in tar:
            name = member.name.strip("/")
            if name != prefix and not name.startswith(prefix + "/"):
                continue
            found = True
            relative = PurePosixPath(name).relative_to(prefix) if name != prefix else None
            if relative is None and member.isfile() and into:
                relative = PurePosixPath(PurePosixPath(prefix).name)
            dest = target if relative is None else target / relative
            parts = [p for p in dest.parts if p not in ("/", ".")]
            if ".." in parts:
                raise BuildFailed(f"COPY {source}: {dest} leaves the image")
            host = upper.joinpath(*parts)
            if member.isdir():
                host.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                data = tar.extractfile(member)
                if data is None:
                    continue
                host.parent.mkdir(parents=True, exist_ok=True)
                with open(host, "wb") as out:
                    shutil.copyfileobj(data, out)
                host.chmod(member.mode & 0o777)
    return found


def _digest(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _remove(path: Path) -> None:
    """Remove a build's scratch directory, also the overlay work dir's unreadable parts."""
    if not path.exists():
        return

    def unlock(_func: object, failed: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(failed), 0o700)
            os.chmod(failed, 0o700)
            if os.path.isdir(failed):
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)

    shutil.rmtree(path, onerror=unlock)


def build_error(exc: BuildFailed) -> ApiError:
    """A failed build as the API's 400."""
    return ApiError(400, str(exc))
