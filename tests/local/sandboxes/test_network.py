"""network_block_all and network_allow_list are enforced on the local backend (issue 19,
point 2): connections from inside sandboxes to a listener on this machine's loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from daytona import (
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaBadRequestError,
    DaytonaConfig,
    DaytonaConflictError,
    Sandbox,
    SessionExecuteRequest,
)

from pytest_daytona.local import LocalServer
from pytest_daytona.local.sandboxes import egress
from tests.local.conftest import close_client, require, require_bwrap

#: What a sandbox with an allow list reaches this machine's loopback as (slirp4netns).
HOST = egress.GATEWAY

_CONNECT = (
    'python3 -c "import socket, sys\n'
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).recv(5)\n"
    "    print('connected')\n"
    "except OSError as exc:\n"
    "    print('refused', exc)\" {host} {port}"
)


@pytest.fixture
def listener() -> Iterator[int]:
    """A port on this machine's loopback that answers every connection with ``hello``."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"hello")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def _connect(sandbox: Sandbox, host: str, port: int) -> str:
    return sandbox.process.exec(_CONNECT.format(host=host, port=port)).result


def _create(client: Daytona, **network: object) -> Sandbox:
    require_bwrap()
    return client.create(CreateSandboxFromSnapshotParams(**network))  # type: ignore[arg-type]


def _require_egress() -> None:
    require(egress.egress_tools() is not None, "apt-get install slirp4netns iproute2")


@pytest.mark.quick
def test_block_all_stops_what_a_default_sandbox_reaches(client: Daytona, listener: int) -> None:
    default = _create(client)
    blocked = _create(client, network_block_all=True)
    assert _connect(default, "127.0.0.1", listener) == "connected\n"
    assert _connect(blocked, "127.0.0.1", listener).startswith("refused")  # its own loopback
    assert "unreachable" in _connect(blocked, HOST, listener)
    assert blocked.process.exec("echo toolbox").result == "toolbox\n"  # the toolbox still works


def test_an_allow_list_admits_exactly_its_networks(client: Daytona, listener: int) -> None:
    _require_egress()
    admitted = _create(client, network_allow_list=f"{HOST}/32")
    elsewhere = _create(client, network_allow_list="192.0.2.0/24")
    assert _connect(admitted, HOST, listener) == "connected\n"
    assert "unreachable" in _connect(admitted, "10.0.2.4", listener)  # beside it, not in it
    assert "unreachable" in _connect(admitted, "198.51.100.7", listener)
    assert "unreachable" in _connect(elsewhere, HOST, listener)
    routes = admitted.process.exec("cat /proc/net/route").result
    assert "00000000" not in [line.split()[1] for line in routes.splitlines()[1:]]  # no default


def test_a_preview_link_reaches_a_sandbox_without_network(client: Daytona) -> None:
    blocked = _create(client, network_block_all=True)
    blocked.process.exec("mkdir site && echo inside > site/index.html")
    blocked.process.create_session("web")
    blocked.process.execute_session_command(
        "web",
        SessionExecuteRequest(command="cd site && python3 -m http.server 8123", run_async=True),
    )
    link = blocked.get_preview_link(8123)
    for _ in range(50):
        answer = httpx.get(link.url, headers={"x-daytona-preview-token": link.token})
        if answer.status_code == 200:
            break
        threading.Event().wait(0.1)
    assert answer.status_code == 200 and answer.text == "inside\n"


def test_a_started_sandbox_keeps_its_network_until_restarted(
    client: Daytona, listener: int
) -> None:
    sandbox = _create(client)
    with pytest.raises(DaytonaConflictError, match="stop the sandbox, update"):
        sandbox.update_network_settings(network_block_all=True)
    assert _connect(sandbox, "127.0.0.1", listener) == "connected\n"
    sandbox.stop()
    sandbox.update_network_settings(network_block_all=True)
    sandbox.start()
    assert _connect(sandbox, "127.0.0.1", listener).startswith("refused")


def test_an_allow_list_that_cannot_be_enforced_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A machine without slirp4netns: made here by hiding it from the in-process server."""
    require_bwrap()
    monkeypatch.setattr(egress, "egress_tools", lambda: None)
    with LocalServer() as srv:
        client = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        sandbox = client.create(CreateSandboxFromSnapshotParams(network_allow_list="10.1.0.0/16"))
        refused = r"network_allow_list cannot be enforced: .*slirp4netns"
        with pytest.raises(DaytonaBadRequestError, match=refused):
            sandbox.process.exec("true")
        close_client(client)


def test_network_settings_without_isolation_are_refused_not_ignored() -> None:
    with LocalServer(isolation="none") as srv:
        client = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        sandbox = client.create(CreateSandboxFromSnapshotParams(network_block_all=True))
        with pytest.raises(DaytonaBadRequestError, match="cannot be enforced without bubblewrap"):
            sandbox.process.exec("true")
        close_client(client)
