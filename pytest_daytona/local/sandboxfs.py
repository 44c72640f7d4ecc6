"""Mapping of in-sandbox paths to host paths, refusing every path that leaves the sandbox."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

#: In-sandbox home (and work dir) when commands run under bubblewrap.
SANDBOX_HOME = "/home/daytona"


class PathEscapeError(ValueError):
    """A path that would reach outside the sandbox."""


class SandboxPaths:
    """How one sandbox's paths look from inside and where they live on the host.

    The sandbox's files live in `home` and `tmp` on the host. With bubblewrap (`isolated`) the
    sandbox sees them as ``/home/daytona`` and ``/tmp``; without it, commands run on the host
    and the sandbox home is reported under its real host path (and has no ``/tmp`` of its own).
    """

    def __init__(self, home: Path, tmp: Path, *, isolated: bool) -> None:
        self.home = home
        self.tmp = tmp
        self.isolated = isolated
        self.work_dir = SANDBOX_HOME if isolated else str(home)
        self.roots: tuple[tuple[str, Path], ...] = (
            ((SANDBOX_HOME, home), ("/tmp", tmp)) if isolated else ((str(home), home),)
        )
        self._real_roots = tuple(Path(os.path.realpath(b)) for _, b in self.roots)

    def absolute(self, path: str) -> str:
        """`path` made absolute (relative paths are relative to the work dir) and normalised."""
        if "\x00" in path:
            raise PathEscapeError("path contains a NUL byte")
        if not path:
            return self.work_dir
        joined = path if path.startswith("/") else posixpath.join(self.work_dir, path)
        return posixpath.normpath(joined)

    def host(self, path: str) -> Path:
        """The host path behind in-sandbox `path`; raises PathEscapeError if it leaves the sandbox.

        Symlinks are resolved on the host, so a link that points outside is refused too.
        """
        inside = self.absolute(path)
        for root, backing in self.roots:
            if inside == root:
                return backing
            if inside.startswith(root.rstrip("/") + "/"):
                candidate = backing / posixpath.relpath(inside, root)
                real = Path(os.path.realpath(candidate))
                if any(_within(real, b) for b in self._real_roots):
                    return candidate
                raise PathEscapeError(f"{path!r} resolves outside the sandbox")
        raise PathEscapeError(f"{path!r} is outside the sandbox (allowed: {self.allowed()})")

    def inside(self, host_path: Path) -> str:
        """The in-sandbox path of a host path that lies within one of the roots."""
        for root, backing in self.roots:
            if _within(host_path, backing):
                rel = host_path.relative_to(backing).as_posix()
                return root if rel == "." else posixpath.join(root, rel)
        raise PathEscapeError(f"{host_path} is not inside the sandbox")

    def allowed(self) -> str:
        """The in-sandbox roots, for messages."""
        return ", ".join(root for root, _ in self.roots)


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
