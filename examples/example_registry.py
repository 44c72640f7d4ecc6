"""A small OCI image and a read-only registry serving it on loopback, for the examples on the
embedded local backend (no Docker, no registry tool, no network: Python 3 and this machine).

The image is made of this machine's own programs: ``/bin/sh`` and a few core utilities with the
shared libraries they load (found with ``ldd``), plus ``/etc/passwd``. It stands in for a base
image such as ``python:3.12-slim``, which the local backend would pull from a registry that
these machines cannot reach. The registry answers the three requests of the OCI distribution
protocol a pull makes: ``/v2/``, a manifest, a blob.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROGRAMS = (
    "sh", "cat", "ls", "echo", "printf", "env", "id", "pwd", "mkdir", "rm", "mv", "cp", "wc",
    "tr", "head", "tail", "grep", "sed", "sort", "test", "true", "false", "sleep", "kill",
    "chmod", "touch", "base64", "mktemp", "stat", "dirname", "basename", "uname", "tee", "tar",
    "gzip", "find", "xargs", "timeout", "setsid", "readlink", "realpath", "cut", "date", "seq",
    "printenv", "awk", "which", "expr", "ln", "du", "df", "hostname", "nproc", "ps", "diff",
)  # fmt: skip
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def _libraries(program: str) -> set[str]:
    out = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
    found = set()
    for line in out.splitlines():
        path = line.split("=>")[-1].split("(")[0].strip()
        if path.startswith("/"):
            found.add(path)
    return found


def _layer() -> bytes:
    """A gzipped tar of the programs (as ``/bin/NAME``), their libraries and /etc files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        added: set[str] = set()

        def add_dir(path: str) -> None:
            if path in ("", "/") or path in added:
                return
            add_dir(os.path.dirname(path))
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
            added.add(path)

        def add_file(path: str, data: bytes, mode: int = 0o644) -> None:
            add_dir(os.path.dirname(path))
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
            added.add(path)

        libraries: set[str] = set()
        for name in PROGRAMS:
            found = shutil.which(name)
            if found is None:
                continue
            real = os.path.realpath(found)
            with open(real, "rb") as fh:
                add_file(f"/bin/{name}", fh.read(), 0o755)
            libraries |= _libraries(real)
        for library in sorted(libraries):
            if library not in added:
                with open(os.path.realpath(library), "rb") as fh:
                    add_file(library, fh.read(), 0o755)
        add_file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        add_file("/etc/group", b"root:x:0:\n")
        add_file("/etc/example-release", b"example image 1\n")
        for path in ("/root", "/tmp", "/srv"):
            add_dir(path)
    return raw.getvalue()


class ExampleRegistry:
    """Serves one image, ``HOST/example/base:1``, from memory on 127.0.0.1 (a free port)."""

    def __init__(self) -> None:
        layer_tar = _layer()
        layer = gzip.compress(layer_tar, compresslevel=1, mtime=0)
        config = json.dumps(
            {
                "architecture": ARCH.get(platform.machine(), platform.machine()),
                "os": "linux",
                "config": {"Env": ["PATH=/bin", "EXAMPLE_BASE=1"], "WorkingDir": "/srv"},
                "rootfs": {
                    "type": "layers",
                    "diff_ids": [f"sha256:{hashlib.sha256(layer_tar).hexdigest()}"],
                },
            }
        ).encode()
        self.blobs = {f"sha256:{hashlib.sha256(b).hexdigest()}": b for b in (config, layer)}
        config_digest, layer_digest = self.blobs
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest,
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.image = f"{self.host}/example/base:1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/v2/":
                    self._send(b"{}", "application/json")
                elif self.path == "/v2/example/base/manifests/1":
                    self._send(registry.manifest, MANIFEST)
                elif self.path.startswith("/v2/example/base/blobs/"):
                    blob = registry.blobs.get(self.path.rsplit("/", 1)[1])
                    self._send(blob, "application/octet-stream")
                else:
                    self._send(None, "")

            def _send(self, body: bytes | None, content_type: str) -> None:
                if body is None:
                    self.send_response(404)
                    body, content_type = b'{"errors":[{"code":"NOT_FOUND"}]}', "application/json"
                else:
                    self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
