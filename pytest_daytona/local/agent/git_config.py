"""``git.*`` for remotes, config values and stored credentials, as Daytona's daemon does them.

Config values are read and written in the file the daemon picks for a scope (local: the
repository's ``.git/config``, or ``config`` of a bare one; global: ``$GIT_CONFIG_GLOBAL``, else
``~/.gitconfig`` unless only the XDG file exists; system: ``$GIT_CONFIG_SYSTEM`` or
``/etc/gitconfig``).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import Any

from .gitcli import bad_request, checked, git, internal, open_repo, resolve
from .ops import HOME, OpError, Request, op

_KEY = re.compile(r"[^.]+(\.[^\n]+)?\.[^.]+")


def _config_file(req: Request, scope: str, path: object, *, writing: bool = False) -> str:
    env = req.env()
    scope = scope or "global"
    if scope == "local":
        if not path:
            raise internal("local config scope requires a repository path")
        repo = resolve(path)
        dot_git = os.path.join(repo, ".git")
        return os.path.join(dot_git if os.path.isdir(dot_git) else repo, "config")
    if scope == "global":
        if env.get("GIT_CONFIG_GLOBAL"):
            return env["GIT_CONFIG_GLOBAL"]
        home_file = os.path.join(HOME, ".gitconfig")
        xdg = env.get("XDG_CONFIG_HOME") or os.path.join(HOME, ".config")
        xdg_file = os.path.join(xdg, "git", "config")
        if not os.path.exists(home_file) and os.path.exists(xdg_file):
            return xdg_file
        return home_file
    if scope == "system":
        if writing and not req.params.get("isolated"):
            raise OpError(
                403,
                "forbidden: without bubblewrap the system git config is the host's",
                "FORBIDDEN",
            )
        return env.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig"
    raise internal(f'unsupported config scope "{scope}" (supported: global, local, system)')


def _check_key(key: str) -> None:
    if not _KEY.fullmatch(key):
        raise internal(
            f'invalid config key "{key}" (expected section.name or section.subsection.name)'
        )


def set_value(req: Request, key: str, value: str, scope: str, path: object) -> None:
    """Set `key` (every value of it) in the scope's file, creating the file."""
    _check_key(key)
    target = _config_file(req, scope, path, writing=True)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    except OSError as exc:
        raise internal(str(exc)) from None
    args = ["config", "--file", target, "--replace-all", key, value]
    checked(git(req, args), "git config")


@op("git.set_config")
def set_config(req: Request) -> dict[str, Any]:
    """Set ``key`` to ``value`` at ``scope`` (global by default)."""
    p = req.params
    set_value(
        req, str(p.get("key") or ""), str(p.get("value") or ""), p.get("scope") or "", p.get("path")
    )
    return {}


@op("git.get_config")
def get_config(req: Request) -> dict[str, Any]:
    """``{"value": ...}``, or ``{}`` when the key (or the file) is not there."""
    p = req.params
    key = str(p.get("key") or "")
    _check_key(key)
    target = _config_file(req, p.get("scope") or "", p.get("path"))
    if not os.path.exists(target):
        return {}
    result = git(req, ["config", "--file", target, "--get", key], split=True)
    if result.code == 1:
        return {}
    return {"value": checked(result, "git config").out.rstrip("\n")}


@op("git.configure_user")
def configure_user(req: Request) -> dict[str, Any]:
    """``user.name`` and ``user.email`` at ``scope``."""
    p = req.params
    scope, path = p.get("scope") or "", p.get("path")
    set_value(req, "user.name", str(p.get("name") or ""), scope, path)
    set_value(req, "user.email", str(p.get("email") or ""), scope, path)
    return {}


@op("git.authenticate")
def authenticate(req: Request) -> dict[str, Any]:
    """Store credentials for ``host`` with git's plaintext ``store`` helper (global config);
    the credential goes to git on stdin."""
    p = req.params
    username, password = str(p.get("username") or ""), str(p.get("password") or "")
    host, protocol = str(p.get("host") or "github.com"), str(p.get("protocol") or "https")
    if any(ch in field for field in (username, password, host, protocol) for ch in "\n\r\0"):
        raise bad_request("credential fields must not contain newline or NUL characters")
    set_value(req, "credential.helper", "store", "global", None)
    record = f"protocol={protocol}\nhost={host}\nusername={username}\npassword={password}\n\n"
    result = git(req, ["credential", "approve"], stdin=record)
    if result.code != 0:
        redacted = result.out.replace(password, "***") if password else result.out
        raise internal(f"git credential approve: {redacted.strip()}")
    return {}


def _redact_url(url: str) -> str:
    """The URL without an embedded password (the username stays), as the daemon lists it."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc or ":" not in parts.netloc.rsplit("@", 1)[0]:
        return url
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
    netloc = f"{user}@{parts.netloc.rsplit('@', 1)[1]}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@op("git.remotes")
def remotes(req: Request) -> dict[str, Any]:
    """Every remote with its first URL, by name."""
    repo = open_repo(req)
    names = git(req, ["remote"], cwd=repo, split=True).out.split()
    found = []
    for name in sorted(names):
        result = git(req, ["config", "--get-all", f"remote.{name}.url"], cwd=repo, split=True)
        urls = result.out.splitlines() if result.code == 0 else []
        found.append({"name": name, "url": _redact_url(urls[0]) if urls else ""})
    return {"remotes": found}


@op("git.remote_add")
def remote_add(req: Request) -> dict[str, Any]:
    """Add remote ``name`` -> ``url`` (replacing it with ``overwrite``), ``fetch`` it."""
    repo = open_repo(req)
    p = req.params
    name, url = str(p.get("name") or ""), str(p.get("url") or "")
    if not name:
        raise internal("remote config: empty name")
    if not url:
        raise internal("remote config: empty URL")
    names = git(req, ["remote"], cwd=repo, split=True).out.split()
    if name in names:
        if not p.get("overwrite"):
            raise OpError(409, "conflict: remote already exists", "CONFLICT")
        args = ["config", "--remove-section", f"remote.{name}"]
        checked(git(req, args, cwd=repo), "git remote remove")
    checked(git(req, ["remote", "add", "--", name, url], cwd=repo), "git remote add")
    if p.get("fetch"):
        fetch = ["-c", "credential.helper=", "fetch", "--quiet", name]
        checked(git(req, fetch, cwd=repo), "git fetch")
    return {}
