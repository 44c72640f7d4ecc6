"""Copy-on-write roots from image layers: an overlay mounted in a user namespace of its own.

bubblewrap 0.8 (Debian 12) has no ``--overlay``, so the overlay is mounted by util-linux's
``unshare`` (a user and mount namespace, this user as root in it) just before bubblewrap
starts in that namespace and binds the overlay as the sandbox's ``/``. The mount lives only in
that namespace: it goes when the sandbox's processes do. Linux allows the overlay there from
5.11 on; the layers stay read-only, every write lands in the sandbox's own upper directory.
"""

from __future__ import annotations

import functools
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

_MOUNT = 'mount -t overlay overlay -o "$1" "$2" && shift 2 && exec "$@"'


class OverlayDirs:
    """The directories of one copy-on-write root below `base` (a sandbox's or a build step's)."""

    def __init__(self, base: Path) -> None:
        self.upper = base / "upper"
        self.work = base / "work"
        self.merged = base / "merged"

    def create(self) -> None:
        """Make the directories (idempotent: the upper keeps what was written)."""
        for path in (self.upper, self.work, self.merged):
            path.mkdir(parents=True, exist_ok=True)


def overlay_argv(layers: list[str], dirs: OverlayDirs, inner: list[str]) -> list[str]:
    """`inner` (a bubblewrap command line binding ``dirs.merged`` as its root) run in a user
    and mount namespace that has the overlay of `layers` (lowest first) mounted."""
    for path in (*layers, dirs.upper, dirs.work):
        if any(c in str(path) for c in ",:\\"):
            raise ValueError(f"overlay layer path {path} holds ',', ':' or '\\'")
    lower = ":".join(reversed(layers))
    options = f"userxattr,lowerdir={lower},upperdir={dirs.upper},workdir={dirs.work}"
    unshare = shutil.which("unshare") or "unshare"
    return [
        unshare,
        "--user",
        "--map-root-user",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        _MOUNT,
        "overlay",
        options,
        str(dirs.merged),
        *inner,
    ]


@functools.cache
def overlay_works(bwrap: str) -> bool:
    """Whether an overlay can be mounted in a user namespace here and bubblewrap can run in it."""
    with tempfile.TemporaryDirectory(prefix="pytest-daytona-overlay-") as tmp:
        lower = Path(tmp) / "lower"
        lower.mkdir()
        (lower / "probe").write_text("ok")
        dirs = OverlayDirs(Path(tmp))
        dirs.create()
        # bubblewrap in that namespace sees the overlay (and the probe file through it).
        inner = [bwrap, "--unshare-user", "--ro-bind", "/", "/", "--"]
        inner += ["test", "-f", str(dirs.merged / "probe")]
        try:
            probe = subprocess.run(
                overlay_argv([str(lower)], dirs, inner), capture_output=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return probe.returncode == 0


def describe(argv: list[str]) -> str:
    """A command line as a shell would show it (for logs)."""
    return shlex.join(argv)
