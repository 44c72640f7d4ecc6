"""Real parts for image tests: Debian's ``docker-registry`` on a loopback port, images built
with ``umoci`` and pushed with ``skopeo``, and a Python image made from Debian's packages.

Everything listens on 127.0.0.1 and is stopped by its fixture. Requests to the registry are
read from its access log, so a test can count what a pull asked for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/\S*) HTTP/[\d.]+" (\d{3})')
BUSYBOX = Path("/bin/busybox")
#: What the busybox-based images link: the commands tests use.
APPLETS = (
    "sh",
    "ls",
    "cat",
    "echo",
    "env",
    "id",
    "pwd",
    "printenv",
    "test",
    "mkdir",
    "rm",
    "sleep",
    "touch",
    "stat",
    "wc",
    "head",
    "tr",
    "base64",
    "grep",
    "nc",
    "kill",
    "ps",
    "true",
    "false",
    "cp",
    "mv",
    "chmod",
    "uname",
    "whoami",
    "dd",
    "seq",
    "tail",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Registry:
    """A ``docker-registry`` serving from `root` on a free loopback port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = root / "data"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log_path = root / "registry.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Registry:
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
            f"http:\n  addr: {self.host}\n"
        )
        log = open(self.log_path, "wb")  # noqa: SIM115 - the registry writes to it until stop
        self._proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                return self
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"docker-registry did not start: {self.log_path.read_text()}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request answered so far."""
        text = self.log_path.read_text(errors="replace")
        return [(m, p, int(s)) for m, p, s in _ACCESS.findall(text)]

    def blob_requests(self, repository: str | None = None) -> int:
        """How many blob GETs were answered (of `repository`, or of all)."""
        return sum(
            1
            for method, path, _ in self.requests()
            if method == "GET"
            and "/blobs/" in path
            and (repository is None or path.startswith(f"/v2/{repository}/"))
        )

    def corrupt_blob(self, digest: str) -> None:
        """Replace a stored blob's bytes (same length), so it no longer matches its digest."""
        hexdigest = digest.split(":", 1)[1]
        data = self.storage / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
        content = bytearray(data.read_bytes())
        content[len(content) // 2] ^= 0xFF
        data.write_bytes(bytes(content))


@dataclass
class Layer:
    """Files of one layer: path -> content (bytes), None to delete (a whiteout), or a
    ``("symlink", target)`` pair."""

    files: Mapping[str, bytes | tuple[str, str] | None] = field(default_factory=dict)


def _run(argv: Sequence[str]) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr or done.stdout}")


def busybox_root(rootfs: Path) -> None:
    """A minimal userland: busybox (static) with its applets, /etc/passwd and /etc/group."""
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in APPLETS:
        link = rootfs / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    etc = rootfs / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234:app:/home/app:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (etc / "group").write_text("root:x:0:\napp:x:1234:\nnogroup:x:65534:\n")
    for path in ("root", "tmp", "home/app"):
        (rootfs / path).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)


def build_image(
    registry: Registry,
    name: str,
    work: Path,
    *,
    layers: Sequence[Layer] = (),
    base: str | Path = "busybox",
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    cmd: Sequence[str] | None = None,
) -> str:
    """Build `name` (``repo:tag``) with umoci from a `base` layer ("busybox", "empty" or a
    root file system to copy) and `layers`, push it to `registry`; the pushed reference."""
    layout = work / "oci"
    tag = name.replace("/", "_").replace(":", "-")
    if not layout.exists():
        _run(["umoci", "init", "--layout", str(layout)])
    _run(["umoci", "new", "--image", f"{layout}:{tag}"])
    bundle = work / f"bundle-{tag}"
    shutil.rmtree(bundle, ignore_errors=True)
    _run(["umoci", "unpack", "--rootless", "--image", f"{layout}:{tag}", str(bundle)])
    rootfs = bundle / "rootfs"
    if base == "busybox":
        busybox_root(rootfs)
    elif isinstance(base, Path):
        shutil.copytree(base, rootfs, symlinks=True, dirs_exist_ok=True)
    _run(["umoci", "repack", "--refresh-bundle", "--image", f"{layout}:{tag}", str(bundle)])
    for layer in layers:
        for path, content in layer.files.items():
            target = rootfs / path.lstrip("/")
            if content is None:
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, tuple):
                target.symlink_to(content[1])
            else:
                target.write_bytes(content)
        _run(["umoci", "repack", "--refresh-bundle", "--image", f"{layout}:{tag}", str(bundle)])
    config = ["umoci", "config", "--image", f"{layout}:{tag}"]
    for key, value in (env or {}).items():
        config += ["--config.env", f"{key}={value}"]
    if workdir:
        config += ["--config.workingdir", workdir]
    if user:
        config += ["--config.user", user]
    for word in cmd or ():
        config += ["--config.cmd", word]
    _run(config)
    ref = f"{registry.host}/{name}"
    _run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci:{layout}:{tag}",
            f"docker://{ref}",
        ]
    )
    return ref


def manifest_digest(registry: Registry, name: str) -> tuple[str, dict[str, object]]:
    """The digest and body of the manifest of `name` (``repo:tag``) in the registry."""
    repo, _, tag = name.rpartition(":")
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.headers["Docker-Content-Digest"], json.loads(answer.read())


def push_foreign_index(registry: Registry, source: str, name: str) -> str:
    """Push an image index whose only entry is `source`'s manifest labelled linux/arm64 (or
    amd64 on an arm64 machine): an image for another platform only."""
    digest, manifest = manifest_digest(registry, source)
    body = json.dumps(manifest).encode()
    other = "arm64" if os.uname().machine in ("x86_64", "amd64") else "amd64"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": len(body),
                "platform": {"os": "linux", "architecture": other},
            }
        ],
    }
    repo, _, tag = name.rpartition(":")
    src_repo = source.rpartition(":")[0]
    if repo != src_repo:
        raise ValueError("the index must be pushed to the source's repository")
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/manifests/{tag}",
        data=json.dumps(index).encode(),
        method="PUT",
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    urllib.request.urlopen(request, timeout=5).close()
    return f"{registry.host}/{name}"


#: Debian packages of a small Python userland (the stand-in for a python:3.x-slim image).
PYTHON_PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "zlib1g",
    "libexpat1",
    "libffi8",
    "libssl3",
    "libbz2-1.0",
    "liblzma5",
    "libuuid1",
    "libsqlite3-0",
    "libtinfo6",
    "libncursesw6",
    "libreadline8",
    "libcrypt1",
    "libnsl2",
    "libtirpc3",
    "libdb5.3",
    "media-types",
)


def python_root(target: Path) -> Path:
    """A root file system with Debian's Python 3.11 and busybox, from Debian's packages
    (downloaded once with ``apt-get download``, cached under ``target``)."""
    rootfs = target / "rootfs"
    if (rootfs / "usr/bin/python3").exists():
        return rootfs
    debs = target / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob("*.deb")):
        _run(["sh", "-c", f"cd {debs} && apt-get download -q {' '.join(PYTHON_PACKAGES)}"])
    partial = target / "rootfs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(partial)])
    (partial / "usr/bin/python3").symlink_to("python3.11")
    busybox_root(partial)
    partial.rename(rootfs)
    return rootfs
