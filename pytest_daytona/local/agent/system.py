"""``system.metrics``: the sandbox's current CPU, memory and disk use, from its own processes."""

from __future__ import annotations

import os
import time

from . import procs
from .ops import HOME, Request, op

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
#: How long CPU use is sampled for one reading.
SAMPLE_SECONDS = 0.1


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def _rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def _disk_used(roots: list[str]) -> int:
    used = 0
    for root in roots:
        for folder, _dirs, files in os.walk(root, onerror=lambda _: None):
            for name in files:
                try:
                    used += os.lstat(os.path.join(folder, name)).st_blocks * 512
                except OSError:
                    continue
    return used


def _sandbox_pids() -> list[int]:
    me = os.getpid()
    return [me, *procs.descendants(me)]


@op("system.metrics")
def metrics(req: Request) -> dict[str, object]:
    """One reading: CPU use of the sandbox's processes over a short sample as a percentage of
    its CPU limit, their resident memory, and the bytes under its home and ``/tmp``; totals
    are the sandbox's resources (``cpu``, ``memory`` and ``disk`` in GiB, from the server)."""
    cpus = int(req.params.get("cpu") or 1)
    start = _cpu_ticks(_sandbox_pids())
    time.sleep(SAMPLE_SECONDS)
    pids = _sandbox_pids()
    busy = (_cpu_ticks(pids) - start) / _TICKS
    gib = 1 << 30
    now = time.time()
    disk_used = _disk_used([HOME, os.environ.get("TMPDIR", "/tmp")])
    disk_total = int(req.params.get("disk") or 3) * gib
    return {
        "cpuCount": cpus,
        "cpuUsedPct": round(max(0.0, busy / SAMPLE_SECONDS / cpus * 100), 2),
        "memTotal": int(req.params.get("memory") or 1) * gib,
        "memUsed": _rss(pids),
        "memCache": 0,
        "diskTotal": disk_total,
        "diskFree": max(0, disk_total - disk_used),
        "diskUsed": disk_used,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "timestampUnix": int(now),
    }
