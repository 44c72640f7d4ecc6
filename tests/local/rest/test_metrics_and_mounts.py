"""Metrics from the sandbox's own processes, and volumes mounted inside its environment."""

from __future__ import annotations

import pytest
from daytona import CreateSandboxFromSnapshotParams, Daytona, DaytonaError, Sandbox, VolumeMount

from pytest_daytona.local import LocalServer
from tests.local.conftest import require_bwrap


def test_latest_metrics_come_from_the_sandboxs_processes(sandbox: Sandbox) -> None:
    idle = sandbox.get_metrics_latest()
    sandbox.process.exec("head -c 3000000 /dev/zero > blob")
    hold = "x = b'x' * 200_000_000; open('ready', 'w').close(); import time; time.sleep(60)"
    sandbox.process.exec(f'python3 -c "{hold}" >/dev/null 2>&1 &')
    sandbox.process.exec("while [ ! -e ready ]; do sleep 0.1; done", timeout=60)
    busy = sandbox.get_metrics_latest()
    assert (busy.cpu_count, busy.mem_total, busy.disk_total) == (1, 1 << 30, 3 << 30)
    assert busy.disk_used >= idle.disk_used + 3_000_000
    assert busy.mem_used >= idle.mem_used + 150_000_000
    sandbox.process.exec("timeout 20 sh -c 'while :; do :; done' >/dev/null 2>&1 &")
    assert sandbox.get_metrics_latest().cpu_used_pct > 0  # the loop's share of its one CPU


def test_metrics_history_holds_the_readings_taken(sandbox: Sandbox) -> None:
    sandbox.get_metrics_latest()
    history = sandbox.get_metrics()
    history += sandbox.get_metrics()
    assert len(sandbox.get_metrics()) >= 2  # each call adds a reading while started
    assert all(m.cpu_count == 1 and m.mem_total == 1 << 30 for m in history)
    sandbox.stop()
    assert len(sandbox.get_metrics()) >= 3  # stopped: the history stays, no new reading


@pytest.mark.quick
@pytest.mark.parametrize("mount_path", ["/home/daytona/shared", "/data/shared", "/mnt/shared"])
def test_a_volume_is_one_directory_shared_by_the_sandboxes_mounting_it(
    server: LocalServer, client: Daytona, mount_path: str
) -> None:
    require_bwrap()
    volume = client.volume.get("pd-shared", create=True)
    params = CreateSandboxFromSnapshotParams(
        volumes=[VolumeMount(volume_id=volume.id, mount_path=mount_path)]
    )
    writer, reader = client.create(params), client.create(params)
    assert writer.process.exec(f"echo from-writer > {mount_path}/note").exit_code == 0
    assert reader.process.exec(f"cat {mount_path}/note").result == "from-writer\n"
    assert writer.process.exec(f"stat -c %U {mount_path}/note").result == "daytona\n"


def test_a_mount_path_inside_the_hosts_system_tree_is_refused_clearly(
    server: LocalServer, client: Daytona
) -> None:
    volume = client.volume.get("pd-refused", create=True)
    sandbox = client.create(
        CreateSandboxFromSnapshotParams(
            volumes=[VolumeMount(volume_id=volume.id, mount_path="/usr/pd-volume")]
        )
    )
    with pytest.raises(DaytonaError, match="/usr/pd-volume") as info:
        sandbox.process.exec("true")
    assert info.value.status_code == 400


def test_a_linked_sandbox_reaches_the_one_it_is_linked_to_by_name(client: Daytona) -> None:
    owner = client.create(CreateSandboxFromSnapshotParams(name="pd-owner"))
    with pytest.raises(DaytonaError, match="ephemeral") as info:
        client.create(CreateSandboxFromSnapshotParams(linked_sandbox="pd-owner"))
    assert info.value.status_code == 400
    follower = client.create(
        CreateSandboxFromSnapshotParams(linked_sandbox="pd-owner", auto_delete_interval=0)
    )
    assert follower.linked_sandbox_id == owner.id
    with pytest.raises(DaytonaError, match="chained links"):
        client.create(
            CreateSandboxFromSnapshotParams(linked_sandbox=follower.id, auto_delete_interval=0)
        )
    assert follower.process.exec("getent hosts pd-owner").result.split()[0] == "127.0.0.1"
