"""The toolbox git API driven by the real SDK (`sandbox.git`), offline: the origin is a bare
repository inside the sandbox, cloned by path and by ``file://`` URL.

Behaviour follows Daytona's daemon (v0.190.0 and the feat/new-git-ops branch of
`apps/daemon/pkg/toolbox/git` and `pkg/git`; go-git) and the typed error codes of SDK 0.226.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from daytona import (
    DaytonaBadRequestError,
    DaytonaConflictError,
    DaytonaForbiddenError,
    DaytonaInternalServerError,
    DaytonaNotFoundError,
    Sandbox,
)
from daytona.common.errors import (
    DaytonaGitBranchExistsError,
    DaytonaGitBranchNotFoundError,
    DaytonaGitDirtyWorktreeError,
    DaytonaGitPushRejectedError,
    DaytonaGitRepoNotFoundError,
)

SEED = (
    "git init -q --bare -b main origin.git && git clone -q origin.git seed 2>/dev/null"
    " && cd seed && git config user.name Seeder && git config user.email seed@example.com"
    " && echo one > a.txt && git add a.txt && git commit -qm first"
    " && git checkout -qb dev && echo dev > d.txt && git add d.txt && git commit -qm 'dev work'"
    " && git push -q origin main dev 2>/dev/null && git rev-parse main"
)


pytestmark = pytest.mark.usefixtures("needs_git")


@dataclass
class Origin:
    """The sandbox's bare origin: its path and the commit its ``main`` is at."""

    path: str
    main: str


def sh(sandbox: Sandbox, command: str, cwd: str | None = None) -> str:
    """Run `command` in the sandbox; it must succeed; its output."""
    result = sandbox.process.exec(command, cwd=cwd)
    assert result.exit_code == 0, result.result
    return result.result


@pytest.fixture
def origin(iso_sandbox: Sandbox) -> Origin:
    sha = sh(iso_sandbox, SEED).strip()
    return Origin(f"{iso_sandbox.get_user_home_dir()}/origin.git", sha)


@pytest.mark.quick
def test_clone_by_path_and_url_then_status_and_branches(
    iso_sandbox: Sandbox, origin: Origin
) -> None:
    git = iso_sandbox.git
    git.clone(origin.path, "work")
    git.clone(f"file://{origin.path}", "nested/by-url")
    for repo in ("work", "nested/by-url"):
        status = git.status(repo)
        assert (status.current_branch, status.ahead, status.behind) == ("main", 0, 0)
        assert status.branch_published and status.upstream == "origin/main"
        assert status.file_status == [] and not status.detached
        listing = git.branches(repo)
        assert (listing.branches, listing.current) == (["main"], "main")  # single branch
    assert sh(iso_sandbox, "cat work/a.txt") == "one\n"
    assert git.remote_get("work", "origin") == origin.path


def test_clone_a_branch_a_commit_and_a_depth(iso_sandbox: Sandbox, origin: Origin) -> None:
    git = iso_sandbox.git
    git.clone(origin.path, "dev", branch="dev")
    assert git.status("dev").current_branch == "dev"
    assert sh(iso_sandbox, "git rev-list --count HEAD", cwd="dev").strip() == "2"
    git.clone(origin.path, "pinned", branch="dev", commit_id=origin.main)
    status = git.status("pinned")
    assert (status.current_branch, status.detached) == ("HEAD", True)
    assert sh(iso_sandbox, "git rev-parse HEAD", cwd="pinned").strip() == origin.main
    git.clone(origin.path, "shallow", branch="dev", depth=1)
    assert sh(iso_sandbox, "git rev-list --count HEAD", cwd="shallow").strip() == "1"


def test_clone_errors(iso_sandbox: Sandbox, origin: Origin) -> None:
    git = iso_sandbox.git
    git.clone(origin.path, "work")
    with pytest.raises(DaytonaConflictError, match="repository already exists"):
        git.clone(origin.path, "work")
    with pytest.raises(DaytonaGitRepoNotFoundError) as missing:
        git.clone(f"{origin.path}-missing", "other")
    assert missing.value.status_code == 404
    with pytest.raises(DaytonaGitBranchNotFoundError):
        git.clone(origin.path, "other", branch="no-such-branch")
    with pytest.raises(DaytonaNotFoundError, match="object not found"):
        git.clone(origin.path, "other2", commit_id="0" * 40)
    sh(iso_sandbox, "git init -q --bare empty.git")
    with pytest.raises(DaytonaNotFoundError, match="remote repository is empty"):
        git.clone("empty.git", "from-empty")
    assert iso_sandbox.process.exec("test -e from-empty").exit_code == 1  # cleaned up
    with pytest.raises(DaytonaBadRequestError, match="depth must be non-negative"):
        git.clone(origin.path, "other3", depth=-1)


def test_status_names_each_file_state(iso_sandbox: Sandbox, origin: Origin) -> None:
    git = iso_sandbox.git
    git.clone(origin.path, "work")
    sh(
        iso_sandbox,
        "echo two >> a.txt && mkdir -p new/deep && echo n > new/deep/n.txt && echo s > s.txt"
        " && git add s.txt && echo gone > g.txt && git add g.txt && rm g.txt",
        cwd="work",
    )
    states = {f.name: (f.staging, f.worktree, f.extra) for f in git.status("work").file_status}
    assert states == {
        "a.txt": ("Unmodified", "Modified", ""),
        "new/deep/n.txt": ("Untracked", "Untracked", ""),
        "s.txt": ("Added", "Unmodified", ""),
        "g.txt": ("Added", "Deleted", ""),
    }
    git.add("work", ["."])
    git.commit("work", "snapshot", "A", "a@example.com")
    sh(iso_sandbox, "git mv s.txt t.txt && git rm -q a.txt", cwd="work")
    moved = {f.name: (f.staging, f.worktree) for f in git.status("work").file_status}
    # go-git detects no renames: an add and a delete
    assert moved == {
        "a.txt": ("Deleted", "Unmodified"),
        "s.txt": ("Deleted", "Unmodified"),
        "t.txt": ("Added", "Unmodified"),
    }
    with pytest.raises(DaytonaGitRepoNotFoundError, match="repository does not exist"):
        git.status("work/new")  # not a repository itself: no search upwards


def test_add_and_commit(iso_sandbox: Sandbox, origin: Origin) -> None:
    git = iso_sandbox.git
    git.clone(origin.path, "work")
    sh(iso_sandbox, "echo b > b.txt && echo c > c.txt", cwd="work")
    git.add("work", ["b.txt"])
    result = git.commit("work", "add b\n\n  body kept  ", "Ann Author", "ann@example.com")
    assert result.sha == sh(iso_sandbox, "git rev-parse HEAD", cwd="work").strip()
    shown = sh(iso_sandbox, "git log -1 --format='%an|%ae|%cn|%ce|%B'", cwd="work")
    assert shown == "Ann Author|ann@example.com|Ann Author|ann@example.com|add b\n\n  body kept  \n"
    assert [f.name for f in git.status("work").file_status] == ["c.txt"]
    with pytest.raises(DaytonaInternalServerError, match="cannot create empty commit"):
        git.commit("work", "nothing", "A", "a@example.com")
    empty = git.commit("work", "empty", "A", "a@example.com", allow_empty=True)
    assert empty.sha != result.sha
    assert git.status("work").ahead == 2
    with pytest.raises(DaytonaGitRepoNotFoundError):
        git.add("missing", ["x"])


def test_branches_create_checkout_delete(iso_sandbox: Sandbox, origin: Origin) -> None:
    git = iso_sandbox.git
    git.clone(origin.path, "work")
    git.create_branch("work", "feature")  # go-git: created and checked out
    assert git.branches("work").current == "feature"
    assert git.branches("work").branches == ["feature", "main"]
    with pytest.raises(DaytonaGitBranchExistsError):
        git.create_branch("work", "main")
    git.checkout_branch("work", "main")
    assert git.status("work").current_branch == "main"
    with pytest.raises(DaytonaGitBranchNotFoundError):
        git.checkout_branch("work", "dev")  # only on the remote: no guessing
    git.checkout_branch("work", origin.main)
    assert git.status("work").detached
    git.checkout_branch("work", "main")
    sh(iso_sandbox, "echo changed > a.txt", cwd="work")
    with pytest.raises(DaytonaGitDirtyWorktreeError):
        git.checkout_branch("work", "feature")
    git.restore("work", ["a.txt"])
    git.delete_branch("work", "feature")
    git.delete_branch("work", "never-existed")  # go-git removes refs without asking
    assert git.branches("work").branches == ["main"]


def test_push_then_pull_between_two_clones(iso_sandbox: Sandbox, origin: Origin) -> None:
    git = iso_sandbox.git
    git.clone(origin.path, "alice")
    git.clone(f"file://{origin.path}", "bob")
    sh(iso_sandbox, "echo from-alice > alice.txt", cwd="alice")
    git.add("alice", ["alice.txt"])
    pushed = git.commit("alice", "alice's change", "Alice", "alice@example.com").sha
    assert git.status("alice").ahead == 1
    git.push("alice")
    assert git.status("alice").ahead == 0
    git.pull("bob")
    assert sh(iso_sandbox, "cat alice.txt", cwd="bob") == "from-alice\n"
    assert sh(iso_sandbox, "git rev-parse HEAD", cwd="bob").strip() == pushed
    git.pull("bob")  # already up to date: fine
    for who in ("alice", "bob"):  # both diverge from the origin
        sh(iso_sandbox, f"echo {who} > {who}-2.txt", cwd=who)
        git.add(who, ["."])
        git.commit(who, f"{who} again", who, f"{who}@example.com")
    git.push("bob")
    with pytest.raises(DaytonaGitPushRejectedError):
        git.push("alice")
    with pytest.raises(DaytonaConflictError):
        git.pull("alice")  # divergent: no merge commit, as go-git


def test_push_a_new_branch_with_upstream_and_pull_a_named_branch(
    iso_sandbox: Sandbox, origin: Origin
) -> None:
    git = iso_sandbox.git
    git.clone(origin.path, "work")
    git.create_branch("work", "topic")
    assert not git.status("work").branch_published
    git.push("work", branch="topic", set_upstream=True)
    assert sh(iso_sandbox, "git config branch.topic.merge", cwd="work") == "refs/heads/topic\n"
    # A single-branch clone fetches main only, so no origin/topic is stored: the daemon's
    # `rev-parse @{upstream}` fails and the branch counts as unpublished.
    assert not git.status("work").branch_published
    assert "topic" in sh(iso_sandbox, f"git --git-dir={origin.path} branch")
    git.checkout_branch("work", "main")
    git.pull("work", branch="dev", remote="origin")  # main fast-forwards to dev
    assert sh(iso_sandbox, "cat d.txt", cwd="work") == "dev\n"
    with pytest.raises(DaytonaNotFoundError, match="remote not found"):
        git.push("work", remote="upstream")
    with pytest.raises(DaytonaNotFoundError):
        git.pull("work", branch="no-such-branch")


def test_init_remotes_and_history(iso_sandbox: Sandbox, origin: Origin) -> None:
    git = iso_sandbox.git
    git.init("fresh", initial_branch="trunk")
    listing = git.branches("fresh")
    assert (listing.branches, listing.current) == ([], "trunk")
    with pytest.raises(DaytonaNotFoundError, match="reference not found"):
        git.status("fresh")  # go-git: HEAD does not resolve before the first commit
    with pytest.raises(DaytonaConflictError, match="repository already exists"):
        git.init("fresh")
    git.init("bare.git", bare=True)
    assert sh(iso_sandbox, "git --git-dir=bare.git rev-parse --is-bare-repository") == "true\n"
    git.init("plain")
    assert git.branches("plain").current == "master"  # go-git's default branch
    git.remote_add("fresh", "origin", origin.path, fetch=True)
    assert "origin/main" in sh(iso_sandbox, "git branch -r", cwd="fresh")
    with pytest.raises(DaytonaConflictError, match="remote already exists"):
        git.remote_add("fresh", "origin", "https://example.com/x.git")
    git.remote_add("fresh", "origin", "https://user:secret@example.com/x.git", overwrite=True)
    assert [(r.name, r.url) for r in git.remotes("fresh").remotes] == [
        ("origin", "https://user@example.com/x.git")
    ]
    assert git.remote_get("fresh", "nope") is None
    git.clone(origin.path, "work")
    commits = git._api_client.get_commit_history(path="work")
    assert [c.message for c in commits] == ["first\n"]
    assert commits[0].hash == origin.main and commits[0].author == "Seeder"


def test_config_and_user(iso_sandbox: Sandbox, origin: Origin) -> None:
    git = iso_sandbox.git
    git.clone(origin.path, "work")
    assert git.get_config("user.name") is None
    git.configure_user("Global Name", "global@example.com")
    assert git.get_config("user.email") == "global@example.com"
    assert "Global Name" in sh(iso_sandbox, "cat ~/.gitconfig")
    git.configure_user("Local Name", "local@example.com", scope="local", path="work")
    assert sh(iso_sandbox, "git config user.name", cwd="work") == "Local Name\n"
    git.set_config("branch.main.rebase", "true", scope="local", path="work")
    assert git.get_config("branch.main.rebase", scope="local", path="work") == "true"
    with pytest.raises(DaytonaBadRequestError, match="path is required when scope is local"):
        git.get_config("user.name", scope="local")
    with pytest.raises(DaytonaBadRequestError, match="path is required when scope is local"):
        git.set_config("user.name", "x", scope="local")
    with pytest.raises(DaytonaInternalServerError, match="invalid config key"):
        git.set_config("nodot", "x")
    with pytest.raises(DaytonaInternalServerError, match="unsupported config scope"):
        git.set_config("user.name", "x", scope="worktree")
    # system scope: read-only /etc under bubblewrap; without it the host's file is refused
    isolated = iso_sandbox.get_user_home_dir() == "/home/daytona"
    with pytest.raises(DaytonaInternalServerError if isolated else DaytonaForbiddenError):
        git.set_config("pytest-daytona.probe", "x", scope="system")
    assert git.get_config("pytest-daytona.probe", scope="system") is None
    with pytest.raises(DaytonaBadRequestError, match="path is required"):
        git.status("")


def test_reset_and_restore(iso_sandbox: Sandbox, origin: Origin) -> None:
    git = iso_sandbox.git
    git.clone(origin.path, "work")
    sh(iso_sandbox, "echo changed > a.txt", cwd="work")
    git.restore("work", ["a.txt"])
    assert sh(iso_sandbox, "cat a.txt", cwd="work") == "one\n"
    sh(iso_sandbox, "echo staged > a.txt", cwd="work")
    git.add("work", ["a.txt"])
    git.restore("work", ["a.txt"], staged=True)
    [entry] = git.status("work").file_status
    assert (entry.staging, entry.worktree) == ("Unmodified", "Modified")
    git.add("work", ["a.txt"])
    git.commit("work", "second", "A", "a@example.com")
    git.reset("work", mode="soft", target="HEAD~1")
    [entry] = git.status("work").file_status
    assert entry.staging == "Modified"
    git.reset("work")  # mixed: unstaged
    assert git.status("work").file_status[0].staging == "Unmodified"
    git.reset("work", mode="hard")
    assert git.status("work").file_status == []
    git.restore("work", ["a.txt"], source=origin.main)
    with pytest.raises(DaytonaInternalServerError, match="unsupported reset mode"):
        git.reset("work", mode="sideways")
    with pytest.raises(DaytonaNotFoundError, match="reference not found"):
        git.reset("work", target="no-such-rev")
    with pytest.raises(DaytonaInternalServerError, match="did not match"):
        git.restore("work", ["no-such-file"])
