"""Processes the agent starts: its own, tracked, and the orphans it adopts as a subreaper."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from typing import Any

PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
#: rt_sigaction(2)'s number on the machines the agent runs on (none elsewhere: left as is).
_NR_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}
#: The signals glibc keeps for itself (SIGCANCEL, SIGSETXID): `signal` does not list them and
#: glibc's sigaction refuses them.
_LIBC_SIGNALS = (32, 33)

_lock = threading.Lock()
_tracked: set[int] = set()


def prctl(option: int, value: int) -> bool:
    """prctl(2) through libc; False where it is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def become_reaper() -> None:
    """Adopt orphaned descendants (so stop can find them) and die with the server."""
    prctl(_PR_SET_CHILD_SUBREAPER, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def unignore_libc_signals() -> None:
    """Set glibc's own signals back to their default where this process has them ignored.

    glibc's posix_spawn leaves them ignored in the child, and an ignored signal stays ignored
    across exec, down to every descendant: Python 3.13's `subprocess` starts children with
    posix_spawn (pytest-xdist's workers, say), so without this a sandbox's commands would
    start with signal 32 ignored. Through the system call: glibc's sigaction refuses them.
    Only ignored ones are touched, never a handler glibc installed."""
    number = _NR_RT_SIGACTION.get(platform.machine())
    if number is None:
        return
    try:
        with open("/proc/self/status") as status:
            mask = next(line for line in status if line.startswith("SigIgn:")).split()[1]
    except (OSError, StopIteration, IndexError):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    default = ctypes.create_string_buffer(64)  # a kernel sigaction of zeros: SIG_DFL
    for sig in _LIBC_SIGNALS:
        if int(mask, 16) >> (sig - 1) & 1:
            libc.syscall(number, sig, default, None, 8)


def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen` in its own process group, tracked so the orphan reaper leaves it be."""
    with _lock:
        if sys.version_info >= (3, 11):
            proc = subprocess.Popen(argv, process_group=0, **kwargs)
        else:
            # Popen has no `process_group` before 3.11. The same effect: setpgid(0, 0) in the
            # child before exec, a group of its own in the agent's session (not
            # `start_new_session`, which is setsid: a new session, without the controlling
            # terminal). A builtin, so the child runs no Python code between fork and exec.
            proc = subprocess.Popen(argv, preexec_fn=functools.partial(os.setpgid, 0, 0), **kwargs)
        _tracked.add(proc.pid)
    return proc


def forget(proc: subprocess.Popen[bytes]) -> None:
    """Stop tracking a process that was waited for."""
    with _lock:
        _tracked.discard(proc.pid)


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a process group, ignoring one that is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _parents(*, live: bool = False) -> dict[int, int]:
    """Every process's parent; with `live`, zombies left out."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if not (live and fields[0] == b"Z"):
            parents[int(entry)] = int(fields[1])
    return parents


def descendants(root: int, *, live: bool = False) -> list[int]:
    """Every process below `root`; with `live`, zombies left out."""
    parents = _parents(live=live)
    found: list[int] = []
    frontier = {root}
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += children
        frontier = set(children)
    return found


def reap_orphans() -> None:
    """Wait for adopted orphans that exited (tracked children are waited for by their owner)."""
    me = os.getpid()
    with _lock:
        for pid, ppid in _parents().items():
            if ppid == me and pid not in _tracked:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)


def kill_everything(limit: float = 5.0) -> None:
    """SIGKILL every descendant, repeatedly, until none is alive, reaping them all (as the
    agent ends: their owners wait no more). SIGKILL takes effect a moment after it is sent,
    so this waits for that, up to `limit` seconds."""
    me = os.getpid()
    deadline = time.monotonic() + limit
    while (pids := descendants(me, live=True)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        time.sleep(0.002)


def track(proc: subprocess.Popen[bytes]) -> None:
    """Track a process started without `popen` (e.g. a session leader on a terminal)."""
    with _lock:
        _tracked.add(proc.pid)
