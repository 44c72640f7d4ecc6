"""A sandbox on this machine's userland sees no host secrets and writes no host path
(issue 19, point 1): asserted from inside sandboxes, through the unmodified SDK."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from daytona import Daytona, DaytonaConfig, Sandbox

from pytest_daytona.local import LocalServer
from pytest_daytona.local.sandboxes.hostview import etc_view, is_secret
from pytest_daytona.tools.cli import main
from tests.local.conftest import close_client, require_bwrap

CHECKOUT = Path(__file__).resolve().parents[3]


@pytest.fixture
def boxed(server: LocalServer, client: Daytona) -> Sandbox:
    require_bwrap()
    return client.create()


def _run(sandbox: Sandbox, command: str) -> tuple[int, str]:
    done = sandbox.process.exec(command)
    return int(done.exit_code), done.result


@pytest.mark.quick
def test_host_secrets_and_directories_stay_outside(server: LocalServer, boxed: Sandbox) -> None:
    for secret in ("/etc/shadow", "/etc/gshadow", "/etc/machine-id"):
        code, out = _run(boxed, f"cat {secret}")
        assert code != 0 and "No such file" in out, (secret, out)
    code, out = _run(boxed, "find /etc -name 'ssh_host_*_key' 2>/dev/null; echo end")
    assert out == "end\n"
    for host_dir in (CHECKOUT, server.data_dir.resolve(), Path("/work"), Path("/opt/pypi-more")):
        code, out = _run(boxed, f"ls -A {host_dir}")
        assert code != 0 or out == "", (host_dir, out)  # absent, or an empty stand-in
    code, out = _run(boxed, f"test -e {CHECKOUT}/pyproject.toml && echo seen || echo unseen")
    assert out == "unseen\n"
    code, out = _run(boxed, "env; cat /proc/1/environ 2>/dev/null")
    assert server.token not in out


@pytest.mark.quick
def test_host_files_keep_their_owners_and_refuse_writes(boxed: Sandbox) -> None:
    code, out = _run(boxed, "stat -c %U /usr/bin/ls /etc/os-release /usr")
    expected = "root" if os.geteuid() == 0 else "nobody"
    assert out.split() == [expected] * 3
    assert _run(boxed, "id -un; stat -c %U /home/daytona")[1] == "daytona\ndaytona\n"
    before = Path("/etc/os-release").read_bytes()
    for target in ("/etc/os-release", "/usr/pd-probe", "/etc/pd-probe", "/opt/pd-probe", "/pd"):
        code, out = _run(boxed, f"echo x > {target}")
        assert code != 0 and ("Read-only" in out or "Permission denied" in out), (target, out)
    assert Path("/etc/os-release").read_bytes() == before
    assert not Path("/usr/pd-probe").exists()
    assert _run(boxed, "echo x > /var/tmp/ok && cat /var/tmp/ok")[1] == "x\n"  # its own


def test_userland_tools_still_run(boxed: Sandbox) -> None:
    code, out = _run(boxed, "python3 -c 'print(6*7)' && git --version && sh -c 'echo ok'")
    assert code == 0 and out.startswith("42\ngit version")


def test_a_host_path_shared_on_purpose_is_seen_read_only(data_dir: Path, tmp_path: Path) -> None:
    require_bwrap()
    shared = tmp_path / "fixtures"
    shared.mkdir()
    (shared / "data.txt").write_text("shared")
    unshared = tmp_path / "private"
    unshared.mkdir()
    with LocalServer(data_dir, share_host_paths=[str(shared)]) as srv:
        client = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        sandbox = client.create()
        assert _run(sandbox, f"cat {shared}/data.txt")[1] == "shared"
        code, out = _run(sandbox, f"echo x > {shared}/new")
        assert code != 0 and "Read-only" in out
        assert _run(sandbox, f"test -e {unshared} && echo seen || echo unseen")[1] == "unseen\n"
        close_client(client)


def test_a_shared_path_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"share_host_paths: .*missing does not exist"):
        LocalServer(tmp_path / "d", share_host_paths=[str(tmp_path / "missing")])


@pytest.fixture
def fake_etc(tmp_path: Path) -> Iterator[Path]:
    etc = tmp_path / "etc"
    (etc / "ssh").mkdir(parents=True)
    (etc / "ssh" / "ssh_host_ed25519_key").write_text("private")
    (etc / "ssh" / "ssh_host_ed25519_key.pub").write_text("public")
    (etc / "ssh" / "sshd_config").write_text("cfg")
    (etc / "ssl" / "certs").mkdir(parents=True)
    (etc / "ssl" / "certs" / "ca.pem").write_text("ca")
    (etc / "shadow").write_text("root:x")
    (etc / "wifi.conf").write_text("psk")
    (etc / "wifi.conf").chmod(0o600)
    (etc / "hostname").write_text("h")
    (etc / "passwd").write_text("host users")
    etc_view.cache_clear()
    yield etc
    etc_view.cache_clear()


@pytest.mark.quick
def test_the_etc_view_leaves_out_secrets_and_binds_the_rest_where_it_is(fake_etc: Path) -> None:
    args = etc_view(str(fake_etc))
    bound = {args[i + 2]: args[i + 1] for i, a in enumerate(args) if a == "--ro-bind"}
    assert bound == {
        "/etc/hostname": f"{fake_etc}/hostname",
        "/etc/ssl": f"{fake_etc}/ssl",  # nothing secret under it: bound whole
        "/etc/ssh/ssh_host_ed25519_key.pub": f"{fake_etc}/ssh/ssh_host_ed25519_key.pub",
        "/etc/ssh/sshd_config": f"{fake_etc}/ssh/sshd_config",
    }
    assert "/etc/ssh" in args  # rebuilt entry by entry, without the private key


@pytest.mark.quick
def test_is_secret_reads_the_mode() -> None:
    assert is_secret("/etc/anything", stat.S_IFREG | 0o600)
    assert is_secret("/etc/dir", stat.S_IFDIR | 0o750)
    assert not is_secret("/etc/hosts", stat.S_IFREG | 0o644)
    assert is_secret("/etc/shadow", stat.S_IFREG | 0o644)


def test_serve_refuses_a_shared_path_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--data-dir", str(tmp_path / "d"), "--share", str(tmp_path / "nope")])
    assert exited.value.code == 2
    assert f"share_host_paths: {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
