"""The toolbox file API through the real SDK (``sandbox.fs``), as the daemon answers it.

Both isolation modes where the behaviour is the same; under bubblewrap the sandbox's whole
view (host read-only, home and tmp its own) as the daemon sees its container; without it
calls stay inside the sandbox's home and tmp.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import resource
from pathlib import Path

import httpx
import pytest
from daytona import (
    AsyncDaytona,
    DaytonaBadRequestError,
    DaytonaConfig,
    DaytonaConflictError,
    DaytonaError,
    DaytonaFileAccessDeniedError,
    DaytonaFileNotFoundError,
    FileDownloadRequest,
    FileUpload,
    Sandbox,
)
from daytona._sync.filesystem import FileSystem

from pytest_daytona.local import LocalServer
from tests.local.conftest import require_bwrap
from tests.sdk_version import requires_sdk

GO_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC$")
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _owner(server: LocalServer) -> str:
    """The uid the daemon reports for the sandbox user's files (numeric, as it formats it)."""
    return "1000" if server.isolated else str(os.getuid())


def test_folder_info_and_listing(iso_server: LocalServer, iso_sandbox: Sandbox) -> None:
    fs = iso_sandbox.fs
    fs.create_folder("proj/src/pkg", "700")
    fs.create_folder("proj/src/pkg", "755")  # an existing folder is fine and keeps its mode
    fs.upload_file(b"print(1)\n", "proj/src/main.py")
    info = fs.get_file_info("proj/src/pkg")
    assert (info.name, info.is_dir, info.permissions, info.mode) == (
        "pkg",
        True,
        "0700",
        "drwx------",
    )
    assert info.owner == info.group == _owner(iso_server)
    assert GO_TIME.match(info.mod_time) and info.modified_at and ISO_TIME.match(info.modified_at)
    work = iso_sandbox.get_work_dir()
    assert info.path == f"{work}/proj/src/pkg"
    main = fs.get_file_info(f"{work}/proj/src/main.py")
    assert (main.size, main.is_dir, main.mode, main.permissions) == (9, False, "-rw-r--r--", "0644")
    assert [f.name for f in fs.list_files("proj/src")] == ["main.py", "pkg"]
    assert [f.name for f in fs.list_files("")] == ["proj"]  # no path: the work dir
    tree = fs.list_files("proj", depth=3)
    assert [f.path for f in tree] == [
        f"{work}/proj/src",
        f"{work}/proj/src/main.py",
        f"{work}/proj/src/pkg",
    ]
    with pytest.raises(DaytonaError, match="depth must be at least 1"):
        fs.list_files("proj", depth=0)  # the SDK checks this itself
    with pytest.raises(DaytonaFileNotFoundError, match="no such file or directory"):
        fs.list_files("nowhere")
    with pytest.raises(DaytonaFileNotFoundError):
        fs.get_file_info("proj/none.txt")
    with pytest.raises(DaytonaBadRequestError, match="invalid mode format"):
        fs.create_folder("proj/bad", "rwx")
    with pytest.raises(DaytonaBadRequestError, match="not a directory"):
        fs.create_folder("proj/src/main.py/sub", "755")


def test_delete_recursive_and_links(iso_sandbox: Sandbox) -> None:
    fs = iso_sandbox.fs
    fs.upload_files([FileUpload(b"1", "d/a/one.txt"), FileUpload(b"2", "d/two.txt")])
    iso_sandbox.process.exec("ln -s d link-to-d && ln -s missing dangling")
    with pytest.raises(DaytonaBadRequestError, match="cannot delete directory without recursive"):
        fs.delete_file("d")
    with pytest.raises(DaytonaBadRequestError, match="without recursive"):
        fs.delete_file("link-to-d")  # a link to a directory counts as one, as in the daemon
    with pytest.raises(DaytonaFileNotFoundError):
        fs.delete_file("dangling")  # the daemon stats through the link first
    fs.delete_file("link-to-d", recursive=True)  # removes the link, not its target
    assert fs.download_file("d/two.txt") == b"2"
    fs.delete_file("d/two.txt")
    fs.delete_file("d", recursive=True)
    assert [f.name for f in fs.list_files(".")] == []  # the dangling link is not listed
    with pytest.raises(DaytonaFileNotFoundError):
        fs.delete_file("d")


def test_upload_sources_and_download_targets(iso_sandbox: Sandbox, tmp_path: Path) -> None:
    fs = iso_sandbox.fs
    local = tmp_path / "local.bin"
    local.write_bytes(b"from a local file")
    fs.upload_files(
        [FileUpload(b"from bytes", "up/bytes.txt"), FileUpload(str(local), "up/deep/file.bin")]
    )
    sent: list[int] = []
    fs.upload_file_stream(
        io.BytesIO(b"x" * 300_000), "up/stream.bin", on_progress=lambda p: sent.append(p.bytes_sent)
    )
    fs.upload_file_stream(str(local), "up/stream-path.bin")
    fs.upload_file(b"", "up/empty.txt")
    assert sent and sent[-1] == 300_000
    assert fs.download_file("up/bytes.txt") == b"from bytes"
    assert fs.download_file("up/empty.txt") == b""
    target = tmp_path / "out" / "copy.bin"
    fs.download_file("up/deep/file.bin", str(target))
    assert target.read_bytes() == b"from a local file"
    received: list[int] = []
    chunks = list(
        fs.download_file_stream(
            "up/stream.bin", on_progress=lambda p: received.append(p.bytes_received)
        )
    )
    assert b"".join(chunks) == b"x" * 300_000 and received[-1] == 300_000
    assert b"".join(fs.download_file_stream("up/stream-path.bin")) == b"from a local file"
    fs.upload_file(b"overwritten", "up/bytes.txt")
    assert fs.download_file("up/bytes.txt") == b"overwritten"


def test_download_errors_per_file_and_streamed(iso_sandbox: Sandbox) -> None:
    fs = iso_sandbox.fs
    fs.upload_file(b"here", "dl/present.txt")
    results = fs.download_files(
        [
            FileDownloadRequest(source="dl/present.txt"),
            FileDownloadRequest(source="dl/absent.txt"),
            FileDownloadRequest(source="dl"),
        ]
    )
    assert results[0].result == b"here" and results[0].error is None
    absent, directory = results[1].error_details, results[2].error_details
    assert absent is not None and directory is not None
    assert (absent.status_code, absent.code) == (404, "FILE_NOT_FOUND")
    assert absent.message == "file not found: dl/absent.txt"
    assert (directory.status_code, directory.code) == (400, "INVALID_FILE_PATH")
    assert directory.message == "invalid file path: path points to a directory: dl"
    with pytest.raises(DaytonaFileNotFoundError, match=re.escape("file not found: dl/absent.txt")):
        fs.download_file("dl/absent.txt")
    with pytest.raises(DaytonaFileNotFoundError):
        list(fs.download_file_stream("dl/absent.txt"))


@requires_sdk("0.203.0", reason="daytona.DaytonaInvalidFilePathError appeared in daytona 0.203.0")
def test_streamed_directory_download_is_an_invalid_file_path(sandbox: Sandbox) -> None:
    from daytona import DaytonaInvalidFilePathError

    sandbox.fs.create_folder("dl", "755")
    with pytest.raises(DaytonaInvalidFilePathError):
        list(sandbox.fs.download_file_stream("dl"))


def test_download_parts_name_the_path_both_ways(
    iso_server: LocalServer, iso_sandbox: Sandbox
) -> None:
    name = 'dl/ünï "q" ✓.txt'
    iso_sandbox.fs.upload_file(b"odd name", name)
    assert iso_sandbox.fs.download_file(name) == b"odd name"
    url = f"{iso_server.api_url}/toolbox/{iso_sandbox.id}/files/bulk-download"
    headers = {"Authorization": f"Bearer {iso_server.token}"}
    raw = httpx.post(url, json={"paths": [name]}, headers=headers, timeout=10)
    assert raw.headers["content-type"] == "multipart/form-data; boundary=DAYTONA-FILE-BOUNDARY"
    disposition = re.search(rb"Content-Disposition: ([^\r]*)", raw.content)
    assert disposition is not None
    assert disposition.group(1).decode("latin-1") == (
        'form-data; name="file"; filename="dl/\xfcn\xef \\"q\\" _.txt"; '
        "filename*=utf-8''dl%2F%C3%BCn%C3%AF%20%22q%22%20%E2%9C%93.txt"
    )
    assert b"Content-Length: 8\r\n" in raw.content
    assert raw.content.endswith(b"\r\n--DAYTONA-FILE-BOUNDARY--\r\n")


def test_large_file_round_trip_keeps_memory_bounded(iso_sandbox: Sandbox, tmp_path: Path) -> None:
    size = 50 << 20
    source = tmp_path / "big.bin"
    with source.open("wb") as fh:
        for i in range(size >> 20):
            fh.write(hashlib.sha256(str(i).encode()).digest() * (1 << 15))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    iso_sandbox.fs.upload_file(str(source), "/tmp/big.bin" if _isolated(iso_sandbox) else "big.bin")
    target = tmp_path / "back.bin"
    iso_sandbox.fs.download_file(
        "/tmp/big.bin" if _isolated(iso_sandbox) else "big.bin", str(target)
    )
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert target.stat().st_size == size
    assert _digest(target) == _digest(source)
    # The server runs in this process: neither direction held the file in memory whole.
    assert grown_kib < 32 * 1024


def _isolated(sandbox: Sandbox) -> bool:
    return sandbox.get_work_dir() == "/home/daytona"


def _put(fs: FileSystem, files: dict[str, bytes]) -> None:
    fs.upload_files([FileUpload(data, path) for path, data in files.items()])


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def test_find_files_is_a_literal_line_match(iso_sandbox: Sandbox) -> None:
    fs = iso_sandbox.fs
    _put(
        fs,
        {
            "src/one.txt": b"alpha a.c\r\nabc\nTODO: a.c again",
            "src/sub/two.txt": b"nothing here\n",
            "src/bin.dat": b"a.c\0binary",
            "src/sub/three.md": b"x a.c",
        },
    )
    matches = fs.find_files("src", "a.c")
    assert [(m.file, m.line, m.content) for m in matches] == [
        ("src/one.txt", 1, "alpha a.c"),
        ("src/one.txt", 3, "TODO: a.c again"),
        ("src/sub/three.md", 1, "x a.c"),
    ]  # "abc" does not match: the pattern is not a regex; the binary file is skipped
    work = iso_sandbox.get_work_dir()
    assert [m.file for m in fs.find_files(f"{work}/src/sub/", "a.c")] == [
        f"{work}/src/sub/three.md"
    ]
    assert fs.find_files("src/one.txt", "abc")[0].line == 2
    assert fs.find_files("no-such-dir", "x") == []
    with pytest.raises(DaytonaBadRequestError, match="path and pattern are required"):
        fs.find_files("src", "")


def test_search_files_matches_names_with_go_globs(iso_sandbox: Sandbox) -> None:
    fs = iso_sandbox.fs
    names = ["test_a.py", "test_bb.py", "pkg/b.py", "pkg/[x].txt", "notes.PY"]
    _put(fs, {f"tree/{name}": b"" for name in names})
    iso_sandbox.process.exec("ln -s pkg tree/link")
    assert fs.search_files("tree", "*.py").files == [
        "tree/pkg/b.py",
        "tree/test_a.py",
        "tree/test_bb.py",
    ]
    assert fs.search_files("tree", "test_?.py").files == ["tree/test_a.py"]
    assert fs.search_files("tree", "[^t]*.py").files == ["tree/pkg/b.py"]
    assert fs.search_files("tree", "\\[x\\].txt").files == ["tree/pkg/[x].txt"]
    assert fs.search_files("tree", "tree").files == ["tree"]  # the root itself counts
    assert fs.search_files("tree", "l*").files == ["tree/link"]  # links are not followed
    assert fs.search_files("tree", "[").files == []  # a malformed glob matches nothing
    assert fs.search_files("absent", "*").files == []


@pytest.mark.quick
def test_replace_in_files_per_file_results(iso_sandbox: Sandbox) -> None:
    fs = iso_sandbox.fs
    fs.upload_files([FileUpload(b"foo.bar foo", "r/a.txt"), FileUpload(b"no match", "r/b.txt")])
    fs.set_file_permissions("r/a.txt", mode="600")
    results = fs.replace_in_files(["r/a.txt", "r/b.txt", "r/missing.txt"], "foo.", "X")
    assert [(r.file, r.success) for r in results] == [
        ("r/a.txt", True),
        ("r/b.txt", True),
        ("r/missing.txt", False),
    ]
    assert results[0].error is None
    assert results[2].error == "open r/missing.txt: no such file or directory"
    assert fs.download_file("r/a.txt") == b"Xbar foo"  # literal: "foo " did not match "foo."
    assert fs.get_file_info("r/a.txt").permissions == "0600"  # an existing file keeps its mode


def test_move_files(iso_sandbox: Sandbox) -> None:
    fs = iso_sandbox.fs
    fs.upload_files([FileUpload(b"1", "m/one.txt"), FileUpload(b"2", "m/dir/two.txt")])
    fs.move_files("m/one.txt", "m/renamed.txt")
    fs.move_files("m/dir", "m/moved-dir")
    assert fs.download_file("m/moved-dir/two.txt") == b"2"
    with pytest.raises(DaytonaConflictError, match="destination already exists"):
        fs.move_files("m/renamed.txt", "m/moved-dir")
    with pytest.raises(DaytonaFileNotFoundError):
        fs.move_files("m/one.txt", "m/x.txt")
    with pytest.raises(DaytonaFileNotFoundError):
        fs.move_files("m/renamed.txt", "m/no-parent/x.txt")
    assert sorted(f.name for f in fs.list_files("m")) == ["moved-dir", "renamed.txt"]


def test_set_file_permissions(iso_server: LocalServer, iso_sandbox: Sandbox) -> None:
    fs = iso_sandbox.fs
    fs.upload_file(b"#!/bin/sh\necho ran\n", "p/run.sh")
    fs.set_file_permissions("p/run.sh", mode="755")
    info = fs.get_file_info("p/run.sh")
    assert (info.permissions, info.mode) == ("0755", "-rwxr-xr-x")
    assert iso_sandbox.process.exec("./p/run.sh").result == "ran\n"
    me = "daytona" if iso_server.isolated else _owner(iso_server)
    fs.set_file_permissions("p/run.sh", owner=me, group=me)  # the file's own owner: fine
    with pytest.raises(DaytonaBadRequestError, match="user not found"):
        fs.set_file_permissions("p/run.sh", owner="no-such-user")
    with pytest.raises(DaytonaBadRequestError, match="group not found"):
        fs.set_file_permissions("p/run.sh", group="no-such-group")
    with pytest.raises(DaytonaBadRequestError, match="invalid mode format"):
        fs.set_file_permissions("p/run.sh", mode="9z")
    with pytest.raises(DaytonaFileNotFoundError):
        fs.set_file_permissions("p/none", mode="644")


@pytest.mark.parametrize("isolation", ["bwrap"], indirect=True)
def test_sandbox_view_is_reachable_but_host_read_only(iso_sandbox: Sandbox) -> None:
    fs = iso_sandbox.fs
    passwd = fs.download_file("/etc/passwd").decode()
    assert "daytona:x:1000:1000" in passwd  # the sandbox's own /etc/passwd
    assert "passwd" in {f.name for f in fs.list_files("/etc")}
    assert fs.get_file_info("/tmp").mode == "dtrwxrwxrwx"
    with pytest.raises(DaytonaError) as info:
        fs.upload_files([FileUpload(b"ok", "good.txt"), FileUpload(b"x", "/etc/daytona-probe")])
    assert info.value.status_code == 400 and "read-only file system" in str(info.value)
    assert fs.download_file("good.txt") == b"ok"  # written anyway, as the daemon streams parts
    with pytest.raises(DaytonaBadRequestError, match="read-only file system"):
        fs.create_folder("/usr/daytona-probe", "755")
    with pytest.raises(DaytonaBadRequestError, match="read-only file system"):
        fs.delete_file("/etc/passwd")
    with pytest.raises(DaytonaBadRequestError, match="operation not permitted"):
        fs.set_file_permissions("good.txt", owner="root")
    fs.upload_file(b"in tmp", "/tmp/t.txt")
    fs.move_files("/tmp/t.txt", "from-tmp.txt")  # another mount: copied, then removed
    assert fs.download_file("from-tmp.txt") == b"in tmp"
    assert fs.search_files("/tmp", "t.txt").files == []


def test_unreadable_directory_is_access_denied(sandbox: Sandbox) -> None:
    """Under bubblewrap (the sandbox user is not root); without it the agent runs as the
    server's user, which is root in CI, so nothing could be denied."""
    require_bwrap()
    fs = sandbox.fs
    fs.upload_file(b"s", "locked/secret.txt")
    fs.set_file_permissions("locked", mode="000")
    try:
        with pytest.raises(DaytonaFileAccessDeniedError):
            fs.list_files("locked")
        with pytest.raises(DaytonaFileAccessDeniedError):
            fs.get_file_info("locked/secret.txt")
        denied = fs.download_files([FileDownloadRequest(source="locked/secret.txt")])[0]
        assert denied.error_details is not None
        assert (denied.error_details.status_code, denied.error_details.code) == (
            403,
            "FILE_ACCESS_DENIED",
        )
        assert fs.find_files(".", "s") == []  # unreadable directories are skipped
    finally:
        fs.set_file_permissions("locked", mode="755")


@pytest.mark.parametrize("isolation", ["none"], indirect=True)
def test_without_isolation_every_call_stays_in_home_and_tmp(
    iso_server: LocalServer, iso_sandbox: Sandbox, tmp_path: Path
) -> None:
    fs = iso_sandbox.fs
    outside = tmp_path / "outside.txt"
    outside.write_text("host")
    host_tmp = iso_server.data_dir / "sandboxes" / iso_sandbox.id / "tmp"
    fs.upload_file(b"in the sandbox's tmp", f"{host_tmp}/t.txt")
    assert fs.download_file(f"{host_tmp}/t.txt") == b"in the sandbox's tmp"
    fs.upload_file(b"mine", "mine.txt")
    refused = [
        lambda: fs.get_file_info(str(outside)),
        lambda: fs.list_files("/etc"),
        lambda: fs.find_files("/etc", "root"),
        lambda: fs.search_files("/", "*"),
        lambda: fs.move_files("mine.txt", str(tmp_path / "stolen.txt")),
        lambda: fs.move_files(str(outside), "taken.txt"),
        lambda: fs.set_file_permissions(str(outside), mode="777"),
        lambda: fs.download_file(str(outside)),
        lambda: fs.delete_file(iso_sandbox.get_work_dir(), recursive=True),
    ]
    for call in refused:
        with pytest.raises(DaytonaError) as info:
            call()
        assert info.value.status_code == 400
    result = fs.replace_in_files([str(outside)], "host", "pwned")[0]
    assert not result.success and result.error and "outside the sandbox" in result.error
    assert outside.read_text() == "host" and oct(outside.stat().st_mode)[-3:] != "777"
    assert fs.download_file("mine.txt") == b"mine"


def test_async_sdk_transfers(server: LocalServer, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncDaytona(DaytonaConfig(api_key=server.token, api_url=server.api_url)) as d:
            sandbox = await d.create()
            await sandbox.fs.upload_files([FileUpload(b"async", "a/x.txt")])
            assert await sandbox.fs.download_file("a/x.txt") == b"async"
            chunks = [c async for c in await sandbox.fs.download_file_stream("a/x.txt")]
            assert b"".join(chunks) == b"async"
            await sandbox.fs.download_file("a/x.txt", str(tmp_path / "x.txt"))
            assert (tmp_path / "x.txt").read_bytes() == b"async"
            assert [f.name for f in await sandbox.fs.list_files("a")] == ["x.txt"]
            await d.delete(sandbox)

    asyncio.run(scenario())
