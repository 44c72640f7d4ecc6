"""Applying OCI image layers to a root file system directory, by the OCI image spec's rules.

Whiteouts (``.wh.<name>``) delete what lower layers put there, ``.wh..wh..opq`` empties a
directory of the lower layers' entries, hard links point at entries already unpacked, symlinks
are kept as written. Nothing is ever written outside the root: names with ``..`` are refused and
a symlink met on the way is resolved inside the root, as the sandbox will see it. Files are
owned by the server's user (no chown); setuid and setgid bits are dropped; device nodes and
FIFOs are skipped (the sandbox's ``/dev`` is its own).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from pathlib import Path, PurePosixPath
from typing import IO

from .errors import ImageError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_MAX_LINKS = 40


class LayerApplier:
    """Applies the layers of one image, in order, to `root`."""

    def __init__(self, root: Path, image: str) -> None:
        self.root = root
        self.image = image
        self._dir_modes: dict[Path, tuple[int, float]] = {}

    def apply(self, stream: IO[bytes], digest: str, compressed: bool) -> None:
        """Apply one layer read from `stream` (gzip when `compressed`)."""
        created: set[Path] = set()
        try:
            with tarfile.open(fileobj=stream, mode="r|gz" if compressed else "r|") as tar:
                for member in tar:
                    self._member(tar, member, created, digest)
        except tarfile.TarError as exc:
            raise ImageError(502, self.image, f"layer {digest}: not a valid tar: {exc}") from None
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise ImageError(
                    507, self.image, f"no space left on the device while unpacking layer {digest}"
                ) from None
            raise ImageError(500, self.image, f"unpacking layer {digest}: {exc}") from None

    def finish(self) -> None:
        """Give directories their modes and times (deepest first; owner-writable, so the
        server can always remove them)."""
        for path, (mode, mtime) in sorted(self._dir_modes.items(), key=lambda i: -len(i[0].parts)):
            if path.is_dir() and not path.is_symlink():
                os.chmod(path, (mode & 0o1777) | 0o700)
                os.utime(path, (mtime, mtime))

    def _member(
        self, tar: tarfile.TarFile, member: tarfile.TarInfo, created: set[Path], digest: str
    ) -> None:
        parts = _parts(member.name, self.image, digest)
        if not parts:
            return  # the root itself
        parent = self._resolve(parts[:-1])
        name = parts[-1]
        if name == OPAQUE:
            for child in list(parent.iterdir()):
                if child not in created:
                    _remove(child)
            return
        if name.startswith(WHITEOUT):
            _remove(parent / name[len(WHITEOUT) :])
            return
        path = parent / name
        created.add(path)
        if member.isdir():
            if path.is_symlink() or (path.exists() and not path.is_dir()):
                _remove(path)
            path.mkdir(mode=0o700, exist_ok=True)
            self._dir_modes[path] = (member.mode, float(member.mtime))
            return
        _remove(path)
        if member.issym():
            os.symlink(member.linkname, path)
        elif member.islnk():
            target_parts = _parts(member.linkname, self.image, digest)
            target = self._resolve(target_parts[:-1]) / target_parts[-1]
            if not (target.is_file() or target.is_symlink()):
                raise ImageError(
                    502, self.image, f"layer {digest}: hard link {member.name} to a missing file"
                )
            os.link(target, path, follow_symlinks=False)
        elif member.isfile():
            source = tar.extractfile(member)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(path, flags, 0o600)
            with os.fdopen(fd, "wb") as out:
                if source is not None:
                    shutil.copyfileobj(source, out, 1 << 20)
            os.chmod(path, member.mode & 0o1777 & ~(stat.S_ISUID | stat.S_ISGID))
            os.utime(path, (member.mtime, member.mtime))
        # Character and block devices, FIFOs: skipped.

    def _resolve(self, parts: list[str]) -> Path:
        """The host directory of in-image directory `parts`, following symlinks inside the
        root; missing directories are made."""
        current: list[str] = []
        pending = list(parts)
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if current:
                    current.pop()
                continue
            path = self.root.joinpath(*current, part)
            if path.is_symlink():
                hops += 1
                if hops > _MAX_LINKS:
                    raise ImageError(502, self.image, f"too many symlinks below /{'/'.join(parts)}")
                target = os.readlink(path)
                if target.startswith("/"):
                    current = []
                pending = [p for p in target.split("/") if p] + pending
                continue
            if not path.exists():
                path.mkdir(mode=0o700)
            elif not path.is_dir():
                _remove(path)
                path.mkdir(mode=0o700)
            current.append(part)
        return self.root.joinpath(*current)


def _parts(name: str, image: str, digest: str) -> list[str]:
    path = PurePosixPath(name)
    parts = [p for p in path.parts if p not in ("/", ".", "")]
    if ".." in parts:
        raise ImageError(502, image, f"layer {digest}: entry {name!r} leaves the image (..)")
    return parts


def _remove(path: Path) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, onerror=_unlock)


def _unlock(_func: object, failed: str, _exc: object) -> None:
    """rmtree's retry for entries in a directory without write permission."""
    os.chmod(os.path.dirname(failed), 0o700)
    if os.path.isdir(failed) and not os.path.islink(failed):
        os.chmod(failed, 0o700)
        shutil.rmtree(failed, onerror=_unlock)
    else:
        os.unlink(failed)


def remove_tree(path: Path) -> None:
    """Remove a (possibly half-unpacked) root file system."""
    if path.exists() or path.is_symlink():
        _remove(path)
