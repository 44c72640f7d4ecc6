"""Running the git CLI for the toolbox's git operations, and the daemon's errors for its failures.

Every git started here runs with hooks disabled (Daytona's daemon does most git work through
go-git, which runs no hooks), no terminal prompt, the C locale, and never looks for a repository
above the one it was given. Credentials reach git through a one-shot ``GIT_ASKPASS`` helper
that reads them from git's environment: never through argv, the URL or a config file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from . import procs
from .ops import WORK_DIR, OpError, Request

_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s' "$GIT_USERNAME" ;;
  Password*) printf '%s' "$GIT_PASSWORD" ;;
esac
"""

#: Variables git would take from the sandbox's environment that would redirect or prompt.
_DROPPED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_ASKPASS", "SSH_ASKPASS")


@dataclass
class Auth:
    """Basic-auth credentials of one call (only when both were given, as the daemon does)."""

    username: str
    password: str

    @classmethod
    def of(cls, params: dict[str, object]) -> Auth | None:
        """The call's credentials, or None."""
        username, password = params.get("username"), params.get("password")
        if isinstance(username, str) and isinstance(password, str):
            return cls(username, password)
        return None

    def redact(self, text: str) -> str:
        """`text` without the password or the username (password first: it may contain it)."""
        for secret in (self.password, self.username):
            if secret:
                text = text.replace(secret, "***")
        return text


@dataclass
class Result:
    """A finished git: exit status and output (stdout and stderr, or stdout alone)."""

    code: int
    out: str


def resolve(path: object) -> str:
    """An in-sandbox path made absolute (relative = relative to the work dir)."""
    return os.path.normpath(os.path.join(WORK_DIR, str(path or "")))


def git(
    req: Request,
    args: list[str],
    *,
    cwd: str | None = None,
    auth: Auth | None = None,
    stdin: str = "",
    env: dict[str, str] | None = None,
    split: bool = False,
) -> Result:
    """Run ``git <args>`` in `cwd` (the work dir when None); `split` keeps stderr out of `out`."""
    base = {k: v for k, v in req.env().items() if k not in _DROPPED}
    base.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "C"})
    if cwd is not None:
        base["GIT_CEILING_DIRECTORIES"] = os.path.dirname(cwd)
    base.update(env or {})
    argv = ["git", "-c", "core.hooksPath=/dev/null", *args]
    with _askpass(base, auth):
        try:
            proc = procs.popen(
                argv,
                cwd=cwd or WORK_DIR,
                env=base,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if split else subprocess.STDOUT,
            )
        except FileNotFoundError:
            # Daytona's daemon carries its own git; the local agent runs the sandbox's.
            raise OpError(
                500,
                "git is not installed in this sandbox: the local backend runs the git of the"
                " sandbox's image (add git to the image, e.g. Image.base(...).run_commands("
                "'apt-get install -y git'))",
            ) from None
        except OSError as exc:
            raise OpError(500, f"internal server error: {exc.strerror or exc}") from None
        try:
            out, _ = proc.communicate(stdin.encode())
        finally:
            procs.forget(proc)
    text = out.decode(errors="replace")
    return Result(proc.returncode, auth.redact(text) if auth else text)


@contextlib.contextmanager
def _askpass(env: dict[str, str], auth: Auth | None) -> Iterator[None]:
    if auth is None:
        yield
        return
    folder = tempfile.mkdtemp(prefix="daytona-git-")
    try:
        helper = os.path.join(folder, "askpass.sh")
        fd = os.open(helper, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        with os.fdopen(fd, "w") as fh:
            fh.write(_ASKPASS)
        env.update(GIT_ASKPASS=helper, GIT_USERNAME=auth.username, GIT_PASSWORD=auth.password)
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def checked(result: Result, op: str) -> Result:
    """`result` when git succeeded, else the daemon's error for its output."""
    if result.code != 0:
        raise classify(result.out, op)
    return result


def last_line(output: str) -> str:
    """Git's last meaningful line (its error), without the ``fatal:``/``error:`` prefix."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for line in reversed(lines):
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line[len(prefix) :]
    return lines[-1] if lines else ""


_RULES: tuple[tuple[tuple[str | re.Pattern[str], ...], int, str, str], ...] = (
    (
        (
            "authentication failed",
            "invalid username or password",
            "could not read username",
            "could not read password",
            "terminal prompts disabled",
            "returned error: 401",
        ),
        401,
        "GIT_AUTH_FAILED",
        "authentication required",
    ),
    (("returned error: 403", "remote: permission"), 403, "FORBIDDEN", "authorization failed"),
    (
        (
            "repository not found",
            "returned error: 404",
            "remote: not found",
            "does not appear to be a git repository",
            re.compile(r"repository '.*' does not exist"),
        ),
        404,
        "GIT_REPO_NOT_FOUND",
        "repository not found",
    ),
    (
        ("couldn't find remote ref", "not found in upstream"),
        404,
        "GIT_BRANCH_NOT_FOUND",
        "branch not found",
    ),
    (
        (
            "does not match any",
            "you are not currently on a branch",
            "unknown revision or path not in the working tree",
            "bad revision",
            "not a valid object name",
        ),
        404,
        "NOT_FOUND",
        "not found: reference not found",
    ),
    (("[remote rejected]",), 422, "GIT_REMOTE_REJECTED", "remote rejected the update"),
    (
        (
            "non-fast-forward",
            "fetch first",
            "updates were rejected",
            "stale info",
            "not possible to fast-forward",
        ),
        409,
        "GIT_PUSH_REJECTED",
        "non-fast-forward update",
    ),
    (
        ("would be overwritten", "please commit your changes or stash them", "needs merge"),
        409,
        "GIT_DIRTY_WORKTREE",
        "worktree contains unstaged changes",
    ),
    (
        (
            "could not resolve host",
            "failed to connect",
            "connection refused",
            "connection timed out",
            "ssl certificate problem",
            "unable to access",
        ),
        502,
        "GIT_TRANSPORT_FAILED",
        "transport failed",
    ),
)


def classify(output: str, op: str) -> OpError:
    """The daemon's error (status, code) for a git that failed with `output`."""
    lowered = output.lower()
    detail = last_line(output)
    for needles, status, code, message in _RULES:
        if any(_found(needle, lowered) for needle in needles):
            return OpError(status, f"{message} ({detail})" if detail else message, code)
    return OpError(500, f"internal server error: {op}: {detail}", "INTERNAL_SERVER_ERROR")


def _found(needle: str | re.Pattern[str], text: str) -> bool:
    return needle in text if isinstance(needle, str) else needle.search(text) is not None


def repo_not_found() -> OpError:
    """go-git's ErrRepositoryNotExists as the daemon answers it."""
    return OpError(404, "repository does not exist", "GIT_REPO_NOT_FOUND")


def reference_not_found() -> OpError:
    """plumbing.ErrReferenceNotFound as the daemon answers it."""
    return OpError(404, "not found: reference not found", "NOT_FOUND")


def bad_request(message: str) -> OpError:
    """The daemon's 400 for a request it refuses before touching git."""
    return OpError(400, f"bad request: {message}", "BAD_REQUEST")


def internal(message: str) -> OpError:
    """The daemon's 500 for an error it does not classify."""
    return OpError(500, f"internal server error: {message}", "INTERNAL_SERVER_ERROR")


def is_repository(path: str) -> bool:
    """Whether `path` itself is a repository (go-git's PlainOpen: no search upwards)."""
    if os.path.exists(os.path.join(path, ".git")):
        return True
    return os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(
        os.path.join(path, "objects")
    )


def open_repo(req: Request) -> str:
    """The repository the call names (``path``), or 404 GIT_REPO_NOT_FOUND."""
    path = resolve(req.params.get("path"))
    if not is_repository(path):
        raise repo_not_found()
    return path


def head_ref(req: Request, repo: str) -> str | None:
    """HEAD's symbolic target (``refs/heads/x``, even unborn), or None when detached."""
    result = git(req, ["symbolic-ref", "-q", "HEAD"], cwd=repo, split=True)
    return result.out.strip() or None if result.code == 0 else None


def resolves(req: Request, repo: str, rev: str) -> str | None:
    """The commit `rev` names, or None."""
    result = git(req, ["rev-parse", "-q", "--verify", f"{rev}^{{commit}}"], cwd=repo, split=True)
    return result.out.strip() if result.code == 0 else None


def dirty_worktree(req: Request, repo: str) -> bool:
    """Whether tracked files differ from the index (go-git's ErrUnstagedChanges condition)."""
    return git(req, ["diff", "--quiet", "--no-ext-diff"], cwd=repo).code != 0
