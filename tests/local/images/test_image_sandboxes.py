"""Sandboxes from OCI images, through the unmodified SDK against the local server (bubblewrap,
a real registry on loopback): what a user sees inside, and how bad input comes back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from daytona import (
    CreateSandboxFromImageParams,
    CreateSandboxFromSnapshotParams,
    CreateSnapshotParams,
    Daytona,
    DaytonaConfig,
    DaytonaError,
    Image,
    PtySize,
    SessionExecuteRequest,
)
from daytona_api_client import SandboxState, SnapshotState

from pytest_daytona.local import LocalServer
from tests.conftest import RegistryImages
from tests.local.conftest import close_client
from tests.sdk_version import requires_sdk

#: How the SDK names the state in its error: ``SandboxState.BUILD_FAILED`` on Python 3.11 and
#: newer, ``build_failed`` before (3.11 changed how a str-mixin enum formats).
BUILD_FAILED = r"(?i)\bbuild_failed\b"


def _out(sandbox: object, command: str) -> str:
    result = sandbox.process.exec(command)  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.result
    return str(result.result).strip()


def _failed_reason(client: Daytona, error: DaytonaError) -> str:
    """The error reason of the sandbox a failed create names. The SDK's message has it only
    when it polled: a state event it applies carries the state alone (daytona 0.190.0
    `_sync/sandbox.py` `_handle_event`), so the message then says "error reason: None"."""
    found = re.search(r"Sandbox (\S+) entered error state", str(error))
    assert found is not None, error
    sandbox = client.get(found.group(1))
    assert sandbox.state == SandboxState.BUILD_FAILED
    return str(sandbox.error_reason)


def test_a_sandbox_from_an_image_sees_the_image_and_not_the_host(
    client: Daytona, test_images: RegistryImages
) -> None:
    sb = client.create(CreateSandboxFromImageParams(image=test_images.busy))

    assert sb.state == SandboxState.STARTED
    assert _out(sb, "cat /etc/ho-marker") == "from-the-image"
    assert _out(sb, "echo $HO_IMAGE_ENV") == "from-image"
    assert _out(sb, "pwd") == "/work"  # the image's WorkingDir
    assert _out(sb, "cat data.txt") == "data"
    assert _out(sb, "id -u") == "0"  # no User in the image: root, as Daytona runs it
    # Host files are not there: the host is Debian with a Python; the image is busybox only.
    assert sb.process.exec("test -e /etc/os-release").exit_code == 1
    assert sb.process.exec("test -e /usr/bin/python3").exit_code == 1
    assert sb.process.exec("test -e /etc/gone").exit_code == 1  # removed by a whiteout
    assert sb.get_work_dir() == "/work"


def test_the_image_user_runs_the_commands_in_its_home(
    client: Daytona, test_images: RegistryImages
) -> None:
    sb = client.create(CreateSandboxFromImageParams(image=test_images.app_user))

    assert _out(sb, "id -u; id -g") == "1234\n1234"
    assert _out(sb, "echo $HOME; pwd") == "/home/app\n/home/app"
    assert sb.get_user_home_dir() == "/home/app"
    sb.fs.upload_file(b"mine\n", "/home/app/mine.txt")
    assert _out(sb, "cat mine.txt") == "mine"


def test_two_sandboxes_of_one_image_are_isolated_and_the_second_pulls_nothing(
    client: Daytona, test_images: RegistryImages
) -> None:
    first = client.create(CreateSandboxFromImageParams(image=test_images.busy))
    blobs_after_first = test_images.registry.blob_requests()
    second = client.create(CreateSandboxFromImageParams(image=test_images.busy))

    assert test_images.registry.blob_requests() == blobs_after_first
    _out(first, "echo changed > /etc/ho-marker && rm data.txt && echo new > /new-file")
    assert _out(second, "cat /etc/ho-marker; cat data.txt") == "from-the-image\ndata"
    assert second.process.exec("test -e /new-file").exit_code == 1
    assert _out(first, "cat /etc/ho-marker /new-file") == "changed\nnew"


def test_the_toolbox_works_in_an_image_without_python_bash_or_git(
    client: Daytona, test_images: RegistryImages
) -> None:
    sb = client.create(CreateSandboxFromImageParams(image=test_images.busy))
    assert sb.process.exec("command -v python3 bash git").exit_code != 0

    sb.fs.upload_file(b"uploaded\n", "/work/up.txt")
    assert sb.fs.download_file("/work/up.txt") == b"uploaded\n"
    assert {f.name for f in sb.fs.list_files("/work")} >= {"data.txt", "up.txt"}
    sb.fs.create_folder("/work/sub", "755")
    assert [m.file for m in sb.fs.find_files("/work", "uploaded")] == ["/work/up.txt"]

    sb.process.create_session("s")
    sb.process.execute_session_command("s", SessionExecuteRequest(command="export X=kept"))
    got = sb.process.execute_session_command("s", SessionExecuteRequest(command="echo $X; pwd"))
    assert (got.exit_code, got.stdout) == (0, "kept\n/work\n")

    pty = sb.process.create_pty_session("t", pty_size=PtySize(rows=20, cols=70))
    pty.send_input("echo pty-$HO_IMAGE_ENV; stty size; exit 4\n")
    seen = bytearray()
    result = pty.wait(on_data=seen.extend, timeout=30)
    assert "pty-from-image" in seen.decode(errors="replace")
    assert "20 70" in seen.decode(errors="replace")
    assert result.exit_code == 4


def test_git_in_an_image_without_git_is_the_missing_program_error(
    client: Daytona, test_images: RegistryImages
) -> None:
    sb = client.create(CreateSandboxFromImageParams(image=test_images.busy))
    # Daytona's daemon has git built in; the local agent runs the image's, and says so.
    with pytest.raises(DaytonaError, match="git is not installed in this sandbox"):
        sb.git.clone("https://127.0.0.1:9/none.git", "/work/none")


def test_code_run_uses_the_image_python(client: Daytona, python_image: str) -> None:
    sb = client.create(CreateSandboxFromImageParams(image=python_image))

    run = sb.process.code_run("import sys; print(sys.version_info[:2], sys.executable)")

    assert run.exit_code == 0, run.result
    # Debian's /usr/bin/python3.11 of the image, not this machine's (a pyenv build in /root).
    assert run.result.split() == ["(3,", "11)", "/usr/bin/python3"]
    assert sb.process.exec("test -e /root/.pyenv").exit_code == 1


@pytest.mark.quick
def test_a_snapshot_from_an_image_and_a_sandbox_from_it(
    client: Daytona, test_images: RegistryImages
) -> None:
    logs: list[str] = []
    snap = client.snapshot.create(
        CreateSnapshotParams(name="busy-snap", image=test_images.busy), on_logs=logs.append
    )
    assert snap.state == SnapshotState.ACTIVE
    sb = client.create(CreateSandboxFromSnapshotParams(snapshot="busy-snap"))

    assert _out(sb, "cat /etc/ho-marker; echo $HO_IMAGE_ENV; pwd") == (
        "from-the-image\nfrom-image\n/work"
    )


def test_a_declarative_build_runs_its_steps_once_and_caches_them(
    client: Daytona, test_images: RegistryImages
) -> None:
    image = (
        Image.base(test_images.busy)
        .run_commands("echo built-by-run > /etc/run-output", "mkdir -p /opt/app")
        .env({"APP_MODE": "declared"})
        .workdir("/opt/app")
    )
    first_logs: list[str] = []
    client.snapshot.create(
        CreateSnapshotParams(name="declared-1", image=image), on_logs=first_logs.append
    )
    again_logs: list[str] = []
    client.snapshot.create(
        CreateSnapshotParams(name="declared-2", image=image), on_logs=again_logs.append
    )
    longer_logs: list[str] = []
    client.snapshot.create(
        CreateSnapshotParams(name="declared-3", image=image.run_commands("echo more > /more")),
        on_logs=longer_logs.append,
    )
    sb = client.create(CreateSandboxFromSnapshotParams(snapshot="declared-2"))

    assert _out(sb, "cat /etc/run-output; echo $APP_MODE; pwd") == (
        "built-by-run\ndeclared\n/opt/app"
    )
    first, again, longer = ("\n".join(logs) for logs in (first_logs, again_logs, longer_logs))
    assert "Step 1/4 : RUN echo built-by-run > /etc/run-output" in first
    assert "CACHED" not in first
    assert "Step" not in again  # every step cached: active at once, nothing built
    assert longer.count("---> CACHED") == 2  # the two RUN steps before the new one
    assert "Step 5/5 : RUN echo more > /more" in longer
    sb3 = client.create(CreateSandboxFromSnapshotParams(snapshot="declared-3"))
    assert _out(sb3, "cat /more /etc/run-output") == "more\nbuilt-by-run"


def test_a_sandbox_from_a_declarative_image_is_built_first(
    client: Daytona, test_images: RegistryImages
) -> None:
    image = Image.base(test_images.busy).run_commands("echo from-build > /built")
    logs: list[str] = []

    sb = client.create(
        CreateSandboxFromImageParams(image=image), on_snapshot_create_logs=logs.append
    )

    assert _out(sb, "cat /built") == "from-build"
    assert any("Step 1/1 : RUN echo from-build > /built" in line for line in logs)


def test_a_failing_build_step_is_build_failed_with_its_reason(
    client: Daytona, test_images: RegistryImages
) -> None:
    image = Image.base(test_images.busy).run_commands("echo trying; exit 3")

    with pytest.raises(DaytonaError, match=r"returned a non-zero code: 3"):
        client.snapshot.create(CreateSnapshotParams(name="broken", image=image))
    assert client.snapshot.get("broken").state == SnapshotState.BUILD_FAILED

    with pytest.raises(DaytonaError, match=BUILD_FAILED) as raised:
        client.create(CreateSandboxFromImageParams(image=image))
    assert "returned a non-zero code: 3" in _failed_reason(client, raised.value)


def test_an_unknown_image_and_an_unreachable_registry_name_image_and_cause(
    client: Daytona, server: LocalServer, test_images: RegistryImages
) -> None:
    missing = f"{test_images.registry.host}/missing:1"
    with pytest.raises(DaytonaError, match=BUILD_FAILED) as raised:
        client.create(CreateSandboxFromImageParams(image=missing))
    assert "missing:1: not found in registry" in _failed_reason(client, raised.value)
    with pytest.raises(DaytonaError, match=r"127\.0\.0\.1:9.*(refused|unreachable|connect)"):
        client.snapshot.create(CreateSnapshotParams(name="far", image="127.0.0.1:9/x:1"))
    assert client.snapshot.get("far").state == SnapshotState.ERROR
    # The server keeps serving after both.
    assert _out(client.create(CreateSandboxFromImageParams(image=test_images.busy)), "echo ok")


def test_a_build_context_says_why_it_cannot_be_uploaded(
    client: Daytona, test_images: RegistryImages, tmp_path: Path
) -> None:
    (tmp_path / "app.txt").write_text("app\n")
    image = Image.base(test_images.busy).add_local_file(tmp_path / "app.txt", "/app.txt")

    with pytest.raises(DaytonaError, match=r"plain http.*obstore|obstore.*http"):
        client.snapshot.create(CreateSnapshotParams(name="ctx", image=image))


@pytest.fixture
def default_image_client(tmp_path: Path, test_images: RegistryImages) -> Iterator[Daytona]:
    with test_images.server(tmp_path / "default", default_image=test_images.busy) as srv:
        daytona = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        yield daytona
        close_client(daytona)


def test_the_default_image_option_applies_when_no_image_is_named(
    default_image_client: Daytona,
) -> None:
    sb = default_image_client.create()

    assert _out(sb, "cat /etc/ho-marker") == "from-the-image"


def test_without_a_default_image_a_sandbox_is_the_host_userland(client: Daytona) -> None:
    sb = client.create()

    assert sb.process.exec("test -e /etc/os-release").exit_code == 0


@requires_sdk("0.202.0", reason="Sandbox.fork() appeared in daytona 0.202.0")
def test_a_fork_of_an_image_sandbox_keeps_the_image_and_its_changes(
    client: Daytona, test_images: RegistryImages
) -> None:
    source = client.create(CreateSandboxFromImageParams(image=test_images.busy))
    _out(source, "echo before-fork > /etc/changed")

    fork = source.fork(name="image-fork")
    _out(source, "echo after-fork > /etc/changed")

    assert _out(fork, "cat /etc/changed /etc/ho-marker") == "before-fork\nfrom-the-image"
