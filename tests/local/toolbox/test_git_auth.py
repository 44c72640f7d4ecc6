"""Git credentials through the toolbox: clone, push and pull against a password-protected
smart-HTTP server on this machine, and `dangerously_authenticate`.

The daemon passes credentials to git in memory only (go-git's BasicAuth; its CLI path a
one-shot GIT_ASKPASS helper reading them from git's environment), so a password given to a call
must show in no command line and in no file of the sandbox.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from daytona import DaytonaBadRequestError, Sandbox
from daytona.common.errors import DaytonaGitAuthFailedError

from tests.local.conftest import processes_mentioning
from tests.local.git_http import GitHttpServer

USER = "tester"
PASSWORD = "s3cret-pd-7f1c0a"  # unique enough to grep for


pytestmark = pytest.mark.usefixtures("needs_git")


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[GitHttpServer]:
    root = tmp_path / "served"
    seed = tmp_path / "seed"
    run = ["git", "-c", "user.name=Seeder", "-c", "user.email=seed@example.com"]
    subprocess.run(
        ["git", "init", "-q", "--bare", "-b", "main", str(root / "repo.git")], check=True
    )
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True)
    (seed / "a.txt").write_text("one\n")
    subprocess.run([*run, "-C", str(seed), "add", "a.txt"], check=True)
    subprocess.run([*run, "-C", str(seed), "commit", "-qm", "first"], check=True)
    push = ["git", "-C", str(seed), "push", "-q", str(root / "repo.git"), "main"]
    subprocess.run(push, check=True)
    with GitHttpServer(root, USER, PASSWORD) as server:
        yield server


def secrets_in_home(sandbox: Sandbox) -> str:
    """Files under the sandbox home that contain the password (grep's answer)."""
    return sandbox.process.exec(f"grep -rl -- {PASSWORD} ~ 2>/dev/null; true").result.strip()


def test_clone_needs_the_credentials(iso_sandbox: Sandbox, remote: GitHttpServer) -> None:
    url = remote.url("repo.git")
    with pytest.raises(DaytonaGitAuthFailedError) as anonymous:
        iso_sandbox.git.clone(url, "anon")
    assert anonymous.value.status_code == 401
    with pytest.raises(DaytonaGitAuthFailedError) as wrong:
        iso_sandbox.git.clone(url, "wrong", username=USER, password="not-it")
    assert "not-it" not in str(wrong.value)
    assert iso_sandbox.process.exec("test -e anon || test -e wrong").exit_code == 1


def test_password_never_in_a_command_line_or_a_file(
    iso_sandbox: Sandbox, remote: GitHttpServer
) -> None:
    url = remote.url("repo.git")
    errors: list[BaseException] = []

    def clone() -> None:
        try:
            iso_sandbox.git.clone(url, "work", username=USER, password=PASSWORD)
        except BaseException as exc:  # reported below
            errors.append(exc)

    with remote.hold() as entered:
        worker = threading.Thread(target=clone)
        worker.start()
        assert entered.wait(30), "the clone never reached the server"
        assert processes_mentioning(url), "git is running right now"
        assert processes_mentioning(PASSWORD) == []  # every process, the sandbox's included
        listed = iso_sandbox.process.exec("ps -eo args").result
        assert "clone" in listed and PASSWORD not in listed
    worker.join(60)
    assert not errors, errors
    assert iso_sandbox.process.exec("cat a.txt", cwd="work").result == "one\n"
    assert iso_sandbox.git.remote_get("work", "origin") == url  # no credentials in the URL
    assert secrets_in_home(iso_sandbox) == ""
    assert iso_sandbox.process.exec("ls -d ${TMPDIR:-/tmp}/daytona-git-* 2>/dev/null").result == ""


def test_push_and_pull_with_credentials(iso_sandbox: Sandbox, remote: GitHttpServer) -> None:
    git = iso_sandbox.git
    url = remote.url("repo.git")
    git.clone(url, "alice", username=USER, password=PASSWORD)
    git.clone(url, "bob", username=USER, password=PASSWORD)
    iso_sandbox.process.exec("echo two > b.txt", cwd="alice")
    git.add("alice", ["b.txt"])
    git.commit("alice", "second", "Alice", "alice@example.com")
    with pytest.raises(DaytonaGitAuthFailedError):
        git.push("alice")
    with pytest.raises(DaytonaGitAuthFailedError):
        git.push("alice", username=USER)  # a username alone is no credential
    git.push("alice", username=USER, password=PASSWORD)
    with pytest.raises(DaytonaGitAuthFailedError):
        git.pull("bob")
    git.pull("bob", username=USER, password=PASSWORD)
    assert iso_sandbox.process.exec("cat b.txt", cwd="bob").result == "two\n"
    assert secrets_in_home(iso_sandbox) == ""


@pytest.mark.quick
def test_dangerously_authenticate_stores_the_credential_where_git_does(
    iso_sandbox: Sandbox,
) -> None:
    git = iso_sandbox.git
    git.dangerously_authenticate(USER, PASSWORD, host="git.example.com")
    assert git.get_config("credential.helper") == "store"
    stored = iso_sandbox.process.exec("cat ~/.git-credentials").result
    assert stored == f"https://{USER}:{PASSWORD}@git.example.com\n"
    assert secrets_in_home(iso_sandbox).endswith(".git-credentials")
    with pytest.raises(DaytonaBadRequestError, match="newline"):
        git.dangerously_authenticate(USER, "two\nlines")
