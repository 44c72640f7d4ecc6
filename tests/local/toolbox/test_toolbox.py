"""Toolbox API through the real SDK: dirs, process execute, files; in both isolation modes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from daytona import (
    DaytonaError,
    DaytonaFileNotFoundError,
    DaytonaProcessExecutionTimeoutError,
    FileDownloadRequest,
    FileUpload,
    Sandbox,
)

from pytest_daytona.local import LocalServer
from pytest_daytona.local.sandboxes.sandboxfs import SANDBOX_HOME
from tests.local.conftest import processes_mentioning


def test_work_dir_and_home(iso_server: LocalServer, iso_sandbox: Sandbox) -> None:
    expected = (
        SANDBOX_HOME
        if iso_server.isolated
        else str(iso_server.data_dir / "sandboxes" / iso_sandbox.id / "home")
    )
    assert iso_sandbox.get_work_dir() == expected
    assert iso_sandbox.get_user_home_dir() == expected
    assert iso_sandbox.process.exec("pwd").result.strip() == expected


@pytest.mark.quick
def test_isolation_mode_is_what_was_asked(iso_server: LocalServer, isolation: str) -> None:
    assert iso_server.isolated is (isolation == "bwrap")
    assert iso_server.stats()["isolation"] == isolation


def test_exec_exit_code_combined_output_env_cwd(iso_sandbox: Sandbox) -> None:
    iso_sandbox.fs.create_folder("sub/dir", "755")
    result = iso_sandbox.process.exec(
        'sh -c \'printf "out:%s\\n" "$GREETING"; echo "err:$FROM_CREATE" >&2; '
        'basename "$PWD"; exit 7\'',
        cwd="sub/dir",
        env={"GREETING": "héllo wörld $x 'q'"},
    )
    assert result.exit_code == 7
    assert result.result.splitlines() == ["out:héllo wörld $x 'q'", "err:yes", "dir"]


def test_exec_does_not_leak_server_environment(
    iso_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DAYTONA_HOST_SECRET", "must-not-leak")
    env = iso_sandbox.process.exec("env").result
    assert "must-not-leak" not in env
    assert "FROM_CREATE=yes" in env


def test_exec_timeout_kills_whole_process_group(iso_sandbox: Sandbox) -> None:
    marker = f"pd-timeout-{uuid.uuid4().hex}"
    with pytest.raises(DaytonaProcessExecutionTimeoutError) as info:
        iso_sandbox.process.exec(f'sh -c "sleep 300 & sleep 301 & echo {marker}; wait"', timeout=1)
    assert info.value.status_code == 408
    assert info.value.code == "PROCESS_EXECUTION_TIMEOUT"
    # Nothing of the command survives: no sleeper from that command line is left on the host.
    assert processes_mentioning(marker) == []
    assert iso_sandbox.process.exec("echo still-usable").result.strip() == "still-usable"


def test_file_roundtrip_list_and_delete(iso_sandbox: Sandbox) -> None:
    payload = bytes(range(256)) * 1000
    iso_sandbox.fs.upload_files(
        [FileUpload(payload, "data/blob.bin"), FileUpload("ünïcode ✓".encode(), "data/t.txt")]
    )
    assert iso_sandbox.fs.download_file("data/blob.bin") == payload
    work = iso_sandbox.get_work_dir()
    assert iso_sandbox.fs.download_file(f"{work}/data/t.txt").decode() == "ünïcode ✓"
    listing = {f.name: f for f in iso_sandbox.fs.list_files("data")}
    assert set(listing) == {"blob.bin", "t.txt"}
    assert listing["blob.bin"].size == len(payload)
    assert not listing["blob.bin"].is_dir
    iso_sandbox.fs.create_folder("data/inner", "700")
    inner = {f.name: f for f in iso_sandbox.fs.list_files("data")}["inner"]
    assert inner.is_dir and inner.permissions == "0700"
    assert iso_sandbox.process.exec("cat data/t.txt").result == "ünïcode ✓"
    iso_sandbox.fs.delete_file("data/t.txt")
    with pytest.raises(DaytonaError):
        iso_sandbox.fs.delete_file("data")  # a directory needs recursive=True
    iso_sandbox.fs.delete_file("data", recursive=True)
    assert iso_sandbox.fs.list_files(".") == []


def test_bulk_download_reports_per_file_errors(iso_sandbox: Sandbox) -> None:
    iso_sandbox.fs.upload_file(b"here", "present.txt")
    results = iso_sandbox.fs.download_files(
        [FileDownloadRequest(source="present.txt"), FileDownloadRequest(source="absent.txt")]
    )
    assert results[0].result == b"here" and results[0].error is None
    assert results[1].result is None
    assert results[1].error is not None and "absent.txt" in results[1].error
    assert results[1].error_details is not None
    assert results[1].error_details.error_code == "FILE_NOT_FOUND"


def test_missing_file_raises_file_not_found(iso_sandbox: Sandbox) -> None:
    with pytest.raises(DaytonaFileNotFoundError):
        iso_sandbox.fs.delete_file("nothing-here")
    with pytest.raises(DaytonaError):
        iso_sandbox.fs.download_file("nothing-here")


@pytest.mark.parametrize("isolation", ["none"], indirect=True)
@pytest.mark.parametrize(
    "bad_path",
    ["../escape.txt", "a/../../escape.txt", "/etc/pytest-daytona-escape", "/root/escape.txt"],
)
def test_paths_outside_the_sandbox_are_refused(
    iso_server: LocalServer, iso_sandbox: Sandbox, bad_path: str
) -> None:
    # Without bubblewrap the agent is a host process: file calls stay in home and tmp.
    # (Under bubblewrap the whole view of the sandbox is reachable: toolbox/test_files.py.)
    before = sorted(p.name for p in iso_server.data_dir.rglob("*"))
    with pytest.raises(DaytonaError) as info:
        iso_sandbox.fs.upload_files([FileUpload(b"ok", "fine.txt"), FileUpload(b"x", bad_path)])
    assert info.value.status_code == 400
    with pytest.raises(DaytonaError) as info:
        iso_sandbox.fs.create_folder(bad_path, "755")
    assert info.value.status_code == 400
    with pytest.raises(DaytonaError) as info:
        iso_sandbox.fs.delete_file(bad_path)
    assert info.value.status_code == 400
    # Nothing written anywhere: not the good file of the batch, not the escaping one.
    assert sorted(p.name for p in iso_server.data_dir.rglob("*")) == before
    assert not Path("/etc/pytest-daytona-escape").exists()
    assert not (iso_server.data_dir / "sandboxes" / "escape.txt").exists()


def test_symlink_out_of_the_sandbox_is_refused(
    iso_server: LocalServer, iso_sandbox: Sandbox, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host secret")
    home = iso_server.data_dir / "sandboxes" / iso_sandbox.id / "home"
    (home / "link").symlink_to(outside)
    with pytest.raises(DaytonaError):
        iso_sandbox.fs.download_file("link/secret.txt")
    with pytest.raises(DaytonaError) as info:
        iso_sandbox.fs.upload_file(b"overwrite", "link/secret.txt")
    assert info.value.status_code == 400
    assert (outside / "secret.txt").read_text() == "host secret"


def test_bwrap_isolates_filesystem_tmp_and_pids(data_dir: Path) -> None:
    from daytona import Daytona, DaytonaConfig

    from tests.local.conftest import close_client, require_bwrap

    require_bwrap()
    with LocalServer(data_dir, isolation="bwrap") as srv:
        daytona = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        try:
            one, two = daytona.create(), daytona.create()
            denied = one.process.exec("touch /usr/pytest-daytona-probe")
            assert denied.exit_code != 0 and "Read-only file system" in denied.result
            one.process.exec('sh -c "echo mine > /tmp/private"')
            assert one.process.exec("cat /tmp/private").result == "mine\n"  # /tmp persists
            assert two.process.exec("cat /tmp/private").exit_code != 0  # and is private
            pids = one.process.exec("sh -c \"ls /proc | grep -c '^[0-9]'\"").result.strip()
            assert int(pids) < 10  # its own PID namespace, not the host's processes
            # Other sandboxes' files (the server's data dir) are hidden from commands.
            peek = one.process.exec(f"ls {srv.data_dir / 'sandboxes' / two.id}")
            assert peek.exit_code != 0
        finally:
            close_client(daytona)


def test_no_isolation_is_announced_once(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level("WARNING", logger="pytest_daytona.local"),
        LocalServer(data_dir, isolation="none"),
    ):
        pass
    notices = [r for r in caplog.records if "NO isolation" in r.getMessage()]
    assert len(notices) == 1
    assert "Do not run untrusted code this way" in notices[0].getMessage()
    assert "network_allow_list cannot be enforced" in notices[0].getMessage()
