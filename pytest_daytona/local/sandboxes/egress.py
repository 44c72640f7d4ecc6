"""The way out of a sandbox that has a network of its own and an allow list: user-mode
networking (slirp4netns) into its network namespace, with a route for each allowed network
and none else, so the kernel refuses every other destination (``Network is unreachable``).

Inside, this machine is ``10.0.2.2`` (connections to it reach this machine's loopback, so
only an allow list naming it reaches the host) and ``10.0.2.3`` answers DNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import subprocess
from dataclasses import dataclass

GATEWAY = "10.0.2.2"
DNS = "10.0.2.3"
RESOLV_CONF = f"nameserver {DNS}\n"
_READY_TIMEOUT = 20.0


def egress_tools() -> tuple[str, str, str] | None:
    """slirp4netns, nsenter and ip, or None when one is missing."""
    found = [shutil.which(name) for name in ("slirp4netns", "nsenter", "ip")]
    if any(path is None for path in found):
        return None
    slirp, nsenter, ip = found
    assert slirp is not None and nsenter is not None and ip is not None
    return slirp, nsenter, ip


@dataclass
class Egress:
    """The user-mode network of one sandbox: its slirp4netns and the pipe that ends it."""

    proc: subprocess.Popen[bytes]
    exit_fd: int

    async def close(self) -> None:
        """End it (closing its exit pipe ends slirp4netns)."""
        with contextlib.suppress(OSError):
            os.close(self.exit_fd)
        try:
            await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 5)
        except asyncio.TimeoutError:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)


def _netns_argv(nsenter: str, pid: int) -> list[str]:
    """Run a command in the network namespace of `pid` with the rights to change it."""
    if os.geteuid() == 0:
        return [nsenter, f"--net=/proc/{pid}/ns/net", "--"]
    return [nsenter, f"--user=/proc/{pid}/ns/user", f"--net=/proc/{pid}/ns/net",
            "--preserve-credentials", "--"]  # fmt: skip


def open_egress(pid: int, allow: tuple[str, ...]) -> Egress:
    """Give the network namespace of `pid` a way out to `allow` (and DNS) only.

    Blocking (call it in a thread). Raises RuntimeError when the tools are missing or fail.
    """
    tools = egress_tools()
    if tools is None:
        raise RuntimeError(
            "a network allow list needs slirp4netns, nsenter and ip on this machine "
            "(apt-get install slirp4netns util-linux iproute2)"
        )
    slirp, nsenter, ip = tools
    ready_read, ready_write = os.pipe()
    exit_read, exit_write = os.pipe()
    target = (
        ["--netns-type=path", f"/proc/{pid}/ns/net"]
        if os.geteuid() == 0
        else [f"--userns-path=/proc/{pid}/ns/user", str(pid)]
    )
    argv = [slirp, "--configure", "--mtu=65520", f"--ready-fd={ready_write}"]
    argv += [f"--exit-fd={exit_read}", *target, "tap0"]
    try:
        proc = subprocess.Popen(
            argv,
            pass_fds=(ready_write, exit_read),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        os.close(ready_write)
        os.close(exit_read)
    egress = Egress(proc, exit_write)
    try:
        ready = select.select([ready_read], [], [], _READY_TIMEOUT)[0]
        if not ready or not os.read(ready_read, 1):
            raise RuntimeError(f"slirp4netns did not start (exit status {proc.poll()})")
        routes = ["route flush dev tap0"]
        for network in (*allow, f"{DNS}/32"):
            routes.append(f"route replace {network} via {GATEWAY} dev tap0 onlink")
        done = subprocess.run(
            [*_netns_argv(nsenter, pid), ip, "-batch", "-"],
            input="\n".join(routes) + "\n",
            capture_output=True,
            text=True,
            timeout=10,
        )
        if done.returncode != 0:
            raise RuntimeError(f"routes of the allow list: {done.stderr.strip()}")
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(exit_write)
        proc.kill()
        proc.wait()
        raise
    finally:
        os.close(ready_read)
    return egress
