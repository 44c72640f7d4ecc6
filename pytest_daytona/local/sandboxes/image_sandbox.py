"""How a sandbox whose root is an image is started: overlay root, image identity, agent runtime."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..images.root import Identity, ImageUse, resolve_user, work_dir
from .agent_runtime import agent_runtime
from .overlay import OverlayDirs, overlay_argv

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Host files a sandbox needs to reach the network as this machine does (not secrets).
_NETWORK_FILES = ("/etc/resolv.conf",)


@dataclass(frozen=True)
class ImageLaunch:
    """One start of an image sandbox (or a build step): its image, its root's directories on
    the host, and who runs in it."""

    image: ImageUse
    dirs: OverlayDirs
    identity: Identity
    hostname: str

    @classmethod
    def of(cls, image: ImageUse, base: Path, hostname: str, user: str | None = None) -> ImageLaunch:
        """The launch of `image` with its copy-on-write root under `base`."""
        dirs = OverlayDirs(base)
        dirs.create()
        return cls(image, dirs, resolve_user(image, user), hostname)

    @property
    def work_dir(self) -> str:
        """The daemon's work dir in this image."""
        return work_dir(self.image, self.identity)

    def environment(self) -> dict[str, str]:
        """The base environment: what Docker gives a container of the image."""
        env = {"PATH": _DEFAULT_PATH, "HOSTNAME": self.hostname, "HOME": self.identity.home}
        return {**env, **self.image.env_dict()}

    def argv(
        self,
        bwrap: str,
        command: list[str],
        *,
        binds: Sequence[tuple[Path, str]] = (),
        ro_files: Sequence[tuple[Path, str]] = (),
        info_fd: int | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        agent: bool = True,
        own_network: bool = False,
    ) -> list[str]:
        """`command` in the image: the overlay of its layers as ``/``, the image's user, own
        user, PID and mount namespaces, the agent runtime and `ro_files` bound read-only,
        `binds` (volumes) read-write; this machine's network, or with `own_network` a
        network namespace of its own."""
        inner = [bwrap, "--bind", str(self.dirs.merged), "/", "--dev", "/dev", "--proc", "/proc"]
        for runtime_file, target in agent_runtime().binds if agent else ():
            inner += ["--ro-bind", runtime_file, target]
        hosts = self.dirs.upper.parent / "hosts"
        hosts.write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{self.hostname}\n")
        inner += ["--ro-bind", str(hosts), "/etc/hosts"]
        for path in _NETWORK_FILES:
            if os.path.exists(path):
                inner += ["--ro-bind", path, path]
        for host_file, target in ro_files:
            inner += ["--ro-bind", str(host_file), target]
        for volume, target in binds:
            inner += ["--bind", str(volume), target]
        cwd = cwd or self.work_dir
        inner += ["--dir", self.identity.home, "--dir", cwd]
        inner += ["--unshare-user", "--uid", str(self.identity.uid)]
        inner += ["--gid", str(self.identity.gid)]
        inner += ["--unshare-pid", "--die-with-parent", "--clearenv"]
        if own_network:
            inner += ["--unshare-net"]
        if info_fd is not None:
            inner += ["--info-fd", str(info_fd)]
        for key, value in (env or self.environment()).items():
            inner += ["--setenv", key, value]
        inner += ["--chdir", cwd, "--", *command]
        return overlay_argv(self.image.layers, self.dirs, inner)
