"""``git.*``: the toolbox's git operations, done by the git CLI as the sandbox's user.

Behaviour follows Daytona's daemon (go-git for most operations, see gitcli for errors): no
hooks run, credentials stay out of argv and files, answers have the daemon's shapes.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any

from .gitcli import (
    Auth,
    checked,
    dirty_worktree,
    git,
    head_ref,
    internal,
    is_repository,
    open_repo,
    reference_not_found,
    resolve,
    resolves,
)
from .ops import OpError, Request, op

_NO_HELPER = ["-c", "credential.helper="]
_FULL_HASH = re.compile(r"[0-9a-fA-F]{40}")
#: porcelain v2 status letters -> the daemon's (go-git's) status names.
_STATUS = {
    ".": "Unmodified",
    "M": "Modified",
    "T": "Modified",
    "A": "Added",
    "D": "Deleted",
    "R": "Renamed",
    "C": "Copied",
    "U": "Updated but unmerged",
}


def _conflict(what: str, code: str = "CONFLICT") -> OpError:
    return OpError(409, f"conflict: {what}" if code == "CONFLICT" else what, code)


@op("git.clone")
def clone(req: Request) -> dict[str, Any]:
    """Clone ``url`` (single branch, as go-git) into ``path``; ``commit_id`` detaches there."""
    p = req.params
    dest = resolve(p.get("path"))
    if is_repository(dest):
        raise _conflict("repository already exists")
    existed = os.path.isdir(dest)
    args = list(_NO_HELPER)
    if p.get("insecure_skip_tls"):
        args += ["-c", "http.sslVerify=false"]
    # --no-local: a local path goes through upload-pack as with go-git (so depth applies).
    args += ["clone", "--single-branch", "--no-local", "--quiet"]
    if p.get("branch"):
        args += ["--branch", str(p["branch"])]
    if p.get("depth"):
        args += ["--depth", str(int(p["depth"]))]
    args += ["--", str(p.get("url") or ""), dest]
    checked(git(req, args, auth=Auth.of(p)), "git clone")
    if resolves(req, dest, "HEAD") is None:  # go-git refuses an empty remote and cleans up
        _remove_clone(dest, existed)
        raise OpError(404, "not found: remote repository is empty", "NOT_FOUND")
    commit = p.get("commit_id")
    if commit:
        commit = str(commit)
        if not _FULL_HASH.fullmatch(commit) or resolves(req, dest, commit) is None:
            raise OpError(404, "not found: object not found", "NOT_FOUND")
        checked(git(req, ["checkout", "-q", "--detach", commit], cwd=dest), "git checkout")
    return {}


def _remove_clone(dest: str, existed: bool) -> None:
    if not existed:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for name in os.listdir(dest):
        target = os.path.join(dest, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target, ignore_errors=True)
        else:
            os.unlink(target)


@op("git.status")
def status(req: Request) -> dict[str, Any]:
    """Current branch, ahead/behind its upstream and every changed file (go-git's view:
    untracked files one by one, renames as an add and a delete)."""
    repo = open_repo(req)
    args = ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", "--no-renames"]
    out = checked(git(req, args, cwd=repo, split=True), "git status").out
    head, oid, upstream, ahead, behind, counted = "", "", "", 0, 0, False
    files: list[dict[str, str]] = []
    for record in out.split("\0"):
        if record.startswith("# branch.head "):
            head = record[len("# branch.head ") :]
        elif record.startswith("# branch.oid "):
            oid = record[len("# branch.oid ") :]
        elif record.startswith("# branch.upstream "):
            upstream = record[len("# branch.upstream ") :]
        elif record.startswith("# branch.ab "):
            plus, minus = record[len("# branch.ab ") :].split()
            ahead, behind, counted = int(plus), -int(minus), True
        elif record[:2] in ("1 ", "u "):
            fields = record.split(" ", 8 if record[0] == "1" else 10)
            staging, worktree = _STATUS.get(fields[1][0], ""), _STATUS.get(fields[1][1], "")
            if record[0] == "u":
                staging = worktree = _STATUS["U"]
            files.append(_file(fields[-1], staging, worktree))
        elif record.startswith("? "):
            files.append(_file(record[2:], "Untracked", "Untracked"))
    if oid == "(initial)":  # go-git: HEAD does not resolve yet
        raise reference_not_found()
    detached = head == "(detached)"
    if not counted:
        upstream = ""  # configured but its remote-tracking branch is gone: the daemon sees none
    answer: dict[str, Any] = {
        "currentBranch": "HEAD" if detached else head,
        "fileStatus": sorted(files, key=lambda f: f["name"]),
        "branchPublished": bool(upstream),
        "ahead": ahead,
        "behind": behind,
    }
    if detached:
        answer["detached"] = True
    if upstream:
        answer["upstream"] = upstream
    return answer


def _file(name: str, staging: str, worktree: str) -> dict[str, str]:
    return {"name": name, "extra": "", "staging": staging, "worktree": worktree}


@op("git.branches")
def branches(req: Request) -> dict[str, Any]:
    """Local branches, and the checked-out one (also before the first commit)."""
    repo = open_repo(req)
    args = ["for-each-ref", "--format=%(refname)", "refs/heads/"]
    out = checked(git(req, args, cwd=repo, split=True), "git for-each-ref").out
    names = [line[len("refs/heads/") :] for line in out.splitlines() if line]
    answer: dict[str, Any] = {"branches": names}
    current = head_ref(req, repo)
    if current and current.startswith("refs/heads/"):
        answer["current"] = current[len("refs/heads/") :]
    return answer


@op("git.add")
def add(req: Request) -> dict[str, Any]:
    """Stage ``files`` (paths relative to the repository; ``.`` for everything)."""
    repo = open_repo(req)
    files = [str(f) for f in req.params.get("files") or []]
    if files:
        checked(git(req, ["add", "--", *files], cwd=repo), "git add")
    return {}


@op("git.commit")
def commit(req: Request) -> dict[str, Any]:
    """Commit the index with ``author``/``email`` as author and committer; the message is
    kept verbatim. Nothing staged without ``allow_empty`` is go-git's ErrEmptyCommit (500)."""
    repo = open_repo(req)
    p = req.params
    name, email = str(p.get("author") or ""), str(p.get("email") or "")
    env = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    args = ["commit", "-q", "--no-verify", "--no-gpg-sign", "--cleanup=verbatim"]
    args += ["--allow-empty-message", "-F", "-"]
    if p.get("allow_empty"):
        args.append("--allow-empty")
    elif git(req, ["diff", "--cached", "--quiet"], cwd=repo).code == 0:
        raise internal("cannot create empty commit: clean working tree")
    checked(git(req, args, cwd=repo, stdin=str(p.get("message") or ""), env=env), "git commit")
    return {"hash": resolves(req, repo, "HEAD") or ""}


def _branch_exists(req: Request, repo: str, name: str) -> bool:
    args = ["show-ref", "--verify", "--quiet", f"refs/heads/{name}"]
    return git(req, args, cwd=repo).code == 0


def _require_clean(req: Request, repo: str) -> None:
    if dirty_worktree(req, repo):
        raise _conflict("worktree contains unstaged changes", "GIT_DIRTY_WORKTREE")


@op("git.create_branch")
def create_branch(req: Request) -> dict[str, Any]:
    """Create branch ``name`` at HEAD and check it out (go-git's Checkout with Create)."""
    repo = open_repo(req)
    name = str(req.params.get("name") or "")
    if _branch_exists(req, repo, name):
        raise _conflict("branch already exists", "GIT_BRANCH_EXISTS")
    if resolves(req, repo, "HEAD") is None:
        raise reference_not_found()
    _require_clean(req, repo)
    checked(git(req, ["checkout", "-q", "-b", name], cwd=repo), "git checkout")
    return {}


@op("git.checkout")
def checkout(req: Request) -> dict[str, Any]:
    """Check out local branch ``branch``, else the commit it names by full hash (detached)."""
    repo = open_repo(req)
    target = str(req.params.get("branch") or "")
    if _branch_exists(req, repo, target):
        _require_clean(req, repo)
        args = ["checkout", "-q", "--no-guess", target, "--"]
    elif _FULL_HASH.fullmatch(target) and resolves(req, repo, target):
        _require_clean(req, repo)
        args = ["checkout", "-q", "--detach", target, "--"]
    else:
        raise OpError(404, f'branch "{target}" not found: branch not found', "GIT_BRANCH_NOT_FOUND")
    checked(git(req, args, cwd=repo), "git checkout")
    return {}


@op("git.delete_branch")
def delete_branch(req: Request) -> dict[str, Any]:
    """Remove the branch's ref, as go-git does: no merge check, missing branches included."""
    repo = open_repo(req)
    name = str(req.params.get("name") or "")
    checked(git(req, ["update-ref", "-d", f"refs/heads/{name}"], cwd=repo), "git branch -d")
    return {}


def _remote(req: Request, repo: str) -> str:
    remote = str(req.params.get("remote") or "origin")
    names = git(req, ["remote"], cwd=repo, split=True).out.split()
    if remote not in names:
        raise OpError(404, "not found: remote not found", "NOT_FOUND")
    return remote


@op("git.push")
def push(req: Request) -> dict[str, Any]:
    """Push ``branch`` (default: the current one) to the same name on ``remote``."""
    repo = open_repo(req)
    p = req.params
    ref = f"refs/heads/{p['branch']}" if p.get("branch") else head_ref(req, repo)
    if not ref:
        raise reference_not_found()
    args = [*_NO_HELPER, "push", "--quiet", _remote(req, repo), f"{ref}:{ref}"]
    if p.get("set_upstream"):
        args.insert(-2, "--set-upstream")
    checked(git(req, args, cwd=repo, auth=Auth.of(p)), "git push")
    return {}


@op("git.pull")
def pull(req: Request) -> dict[str, Any]:
    """Fast-forward the current branch from ``branch`` on ``remote`` (default: its upstream,
    else the remote's HEAD as go-git does); a divergent history is refused."""
    repo = open_repo(req)
    p = req.params
    remote = _remote(req, repo)
    args = [*_NO_HELPER, "pull", "--quiet", "--ff-only", "--no-rebase", remote]
    if p.get("branch"):
        args.append(str(p["branch"]))
    else:
        current = head_ref(req, repo)
        tracked = current and git(req, ["config", f"branch.{current[11:]}.merge"], cwd=repo)
        if not tracked or tracked.code != 0:
            args.append("HEAD")
    checked(git(req, args, cwd=repo, auth=Auth.of(p)), "git pull")
    return {}


@op("git.init")
def init(req: Request) -> dict[str, Any]:
    """A new repository (``bare`` or not) whose first branch is ``initial_branch`` (go-git's
    default: master); an existing one is go-git's ErrRepositoryAlreadyExists (409)."""
    p = req.params
    dest = resolve(p.get("path"))
    if is_repository(dest):
        raise _conflict("repository already exists")
    branch = str(p.get("initial_branch") or "master")
    args = ["init", "-q", f"--initial-branch={branch}"] + (["--bare"] if p.get("bare") else [])
    checked(git(req, [*args, dest]), "git init")
    return {}


_RESET_MODES = ("soft", "mixed", "hard", "merge", "keep")


@op("git.reset")
def reset(req: Request) -> dict[str, Any]:
    """``git reset`` with ``mode`` (default mixed), ``target`` (default HEAD) and ``files``."""
    repo = open_repo(req)
    p = req.params
    mode = str(p.get("mode") or "mixed")
    if mode not in _RESET_MODES:
        raise internal(f'unsupported reset mode "{mode}" (supported: {", ".join(_RESET_MODES)})')
    target = str(p.get("target") or "")
    if target and resolves(req, repo, target) is None:
        raise reference_not_found()
    files = [str(f) for f in p.get("files") or []]
    args = ["reset", "-q"] + ([] if files and mode == "mixed" else [f"--{mode}"])
    args += [target] if target else []
    args += ["--", *files] if files else []
    checked(git(req, args, cwd=repo), "git reset")
    return {}


@op("git.restore")
def restore(req: Request) -> dict[str, Any]:
    """``git restore``: the working tree by default, the index with ``staged``."""
    repo = open_repo(req)
    p = req.params
    files = [str(f) for f in p.get("files") or []]
    if not files:
        raise internal("at least one path is required")
    staged, worktree = p.get("staged"), p.get("worktree")
    if staged is None and worktree is None:
        worktree = True
    if not staged and not worktree:
        raise internal("at least one of staged or worktree must be true")
    args = ["restore"] + (["--staged"] if staged else []) + (["--worktree"] if worktree else [])
    if p.get("source"):
        args.append(f"--source={p['source']}")
    checked(git(req, [*args, "--", *files], cwd=repo), "git restore")
    return {}


@op("git.history")
def history(req: Request) -> dict[str, Any]:
    """Commits reachable from HEAD, newest first: hash, author, email, message, timestamp."""
    repo = open_repo(req)
    if resolves(req, repo, "HEAD") is None:
        raise reference_not_found()
    fmt = "--format=%H%x00%an%x00%ae%x00%aI%x00%B"
    out = checked(git(req, ["log", "-z", fmt, "HEAD"], cwd=repo, split=True), "git log").out
    fields = out.split("\0")
    commits = []
    for i in range(0, len(fields) - 4, 5):
        sha, name, email, when, message = fields[i : i + 5]
        when = when[:-6] + "Z" if when.endswith("+00:00") else when  # Go's RFC 3339
        commits.append(
            {"hash": sha, "author": name, "email": email, "message": message, "timestamp": when}
        )
    return {"commits": commits}
