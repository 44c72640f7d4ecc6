"""One sandbox cannot take the machine down (issue 19, point 3): a bounded fork bomb and a
memory hog end inside their sandbox while another sandbox and the API keep answering."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from daytona import Daytona, DaytonaConfig, Resources, Sandbox

from pytest_daytona.local import LocalServer
from tests.local.conftest import close_client, require_bwrap

MAX_PROCESSES = 64
#: Tries to start 300 sleeping processes: bounded, harmless even where nothing limits it.
FORK_BOMB = """python3 -c "
import os, time
started = 0
for _ in range(300):
    try:
        if os.fork() == 0:
            os.closerange(0, 3)
            time.sleep(10)
            os._exit(0)
        started += 1
    except OSError:
        break
print(started, len([p for p in os.listdir('/proc') if p.isdigit()]))
" """


@pytest.fixture
def limited(data_dir: Path) -> Iterator[Daytona]:
    require_bwrap()
    with LocalServer(data_dir, max_processes=MAX_PROCESSES) as srv:
        client = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        yield client
        close_client(client)


def _resized(client: Daytona, cpu: int, memory: int) -> Sandbox:
    """A sandbox restarted with `cpu` and `memory`: limits are set as a sandbox starts."""
    sandbox = client.create()
    sandbox.stop()
    sandbox.resize(Resources(cpu=cpu, memory=memory))
    sandbox.start()
    return sandbox


def _while(work: str, sandbox: Sandbox, other: Sandbox, client: Daytona) -> tuple[str, list[str]]:
    """Run `work` in `sandbox`; meanwhile `other` runs commands and the API lists."""
    answers: list[str] = []
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(sandbox.process.exec(work).result))
    thread.start()
    while thread.is_alive() or not answers:
        answers.append(other.process.exec("echo alive").result)
        answers.append(client.get(other.id).state.value)
    thread.join()
    return result[0], answers


def test_a_fork_bomb_ends_in_its_sandbox(limited: Daytona) -> None:
    bomb, other = limited.create(), limited.create()
    out, answers = _while(FORK_BOMB, bomb, other, limited)
    started, seen = (int(n) for n in out.split())
    assert started < MAX_PROCESSES <= 300  # the limit stopped it, not the loop's end
    assert seen <= MAX_PROCESSES
    assert set(answers) == {"alive\n", "started"}
    assert bomb.process.exec("pkill -f 'time.sleep' ; echo done").result.endswith("done\n")
    assert bomb.process.exec("echo still").result == "still\n"


def test_a_memory_hog_ends_in_its_sandbox(limited: Daytona) -> None:
    hog = limited.create()  # 1 GiB, the default
    other = limited.create()
    work = "python3 -c 'b = bytearray(3 << 30); print(\"allocated\", len(b))' 2>&1; echo rc=$?"
    out, answers = _while(work, hog, other, limited)
    assert "allocated" not in out and "rc=0" not in out
    assert set(answers) == {"alive\n", "started"}
    assert hog.process.exec("echo still").result == "still\n"


@pytest.mark.quick
def test_limits_follow_the_sandbox_settings(limited: Daytona) -> None:
    sandbox = _resized(limited, cpu=2, memory=2)
    out = sandbox.process.exec("ulimit -u; ulimit -d; ulimit -f").result.split()
    assert out == [str(MAX_PROCESSES), str(2 << 20), str(3 << 20)]  # KiB and 1-KiB blocks


def test_a_control_group_holds_the_cpu_and_memory_where_the_server_may_make_one(
    limited: Daytona,
) -> None:
    """As root with cgroup v1 or v2 writable (CI); elsewhere only the rlimits apply."""
    if os.geteuid() != 0:
        pytest.skip("control groups are made only by a server running as root")
    sandbox = _resized(limited, cpu=2, memory=2)
    groups = sandbox.process.exec("cat /proc/self/cgroup").result.splitlines()
    mine = {c: p for _, cs, p in (line.split(":", 2) for line in groups) for c in cs.split(",")}
    if "" in mine and Path("/sys/fs/cgroup/cgroup.controllers").exists():
        base = f"/sys/fs/cgroup{mine['']}"
        files = ("cpu.max", "memory.max", "pids.max")
        expected = ["200000 100000", str(2 << 30), str(MAX_PROCESSES)]
    else:
        base = ""
        files = (
            f"cpu{mine['cpu']}/cpu.cfs_quota_us",
            f"memory{mine['memory']}/memory.limit_in_bytes",
            f"pids{mine['pids']}/pids.max",
        )
        expected = ["200000", str(2 << 30), str(MAX_PROCESSES)]
    read = [
        sandbox.process.exec(f"cat {base or '/sys/fs/cgroup'}/{name}").result.strip()
        for name in files
    ]
    assert read == expected
    assert sandbox.id in mine["pids" if "pids" in mine else ""]
    groups = [Path(f"/sys/fs/cgroup/{c}{mine[c]}") for c in ("pids", "memory", "cpu") if c in mine]
    groups = groups or [Path(f"/sys/fs/cgroup{mine['']}")]
    assert all(g.is_dir() for g in groups)
    sandbox.stop()
    assert [g for g in groups if g.exists()] == []  # removed with the sandbox's processes


def test_a_process_limit_below_what_a_sandbox_needs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_processes=3: a sandbox needs at least 16"):
        LocalServer(tmp_path / "d", max_processes=3)


def test_the_process_limit_from_the_environment_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DAYTONA_LOCAL_MAX_PROCESSES", "lots")
    with pytest.raises(ValueError, match="PYTEST_DAYTONA_LOCAL_MAX_PROCESSES='lots'"):
        LocalServer(tmp_path / "d")
