"""The settings' names: CLI options, ini keys and env vars, and their registration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

import pytest

from .durations import FORMS, MINUTES, SECONDS, Unit

IniType = Literal["string", "bool", "linelist"]

#: Fields that hold one value for the whole run: a marker may not set them.
RUN_WIDE = frozenset(
    {"api_key", "api_url", "backend", "missing_key", "reuse", "reuse_key", "fresh"}
    | {"lock_timeout", "prewarm"}
)
#: Fields whose CLI/ini values are KEY=VALUE entries merged into a dict.
DICT_FIELDS = frozenset({"env", "labels"})
#: Fields where an explicitly empty value is an error rather than "unset".
EMPTY_IS_ERROR = frozenset({"image", "snapshot"})


@dataclass(frozen=True)
class FieldSpec:
    """How one setting is named outside Python and what to tell a user who got it wrong."""

    name: str
    help: str
    fix: str
    ini_type: IniType | None = "string"  # None: no ini key
    env_var: str | None = None
    metavar: str = "VALUE"
    #: For a time setting: what a number alone counts (a duration with units also works).
    unit: Unit | None = None

    @property
    def option(self) -> str:
        return "--daytona-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return "daytona_" + self.name

    @property
    def ini(self) -> str:
        return "daytona_" + self.name


_INT_FIX = "pass a positive integer"
_SPECS = (
    FieldSpec(
        "api_key",
        "Daytona API key (prefer the DAYTONA_API_KEY env var: options show up in process lists).",
        "set DAYTONA_API_KEY to a key from the Daytona dashboard, without spaces",
        ini_type=None,  # a secret does not belong in a committed file
        env_var="DAYTONA_API_KEY",
        metavar="KEY",
    ),
    FieldSpec(
        "api_url",
        "Daytona API URL (default: the SDK's).",
        "pass an http(s) URL such as https://app.daytona.io/api",
        env_var="DAYTONA_API_URL",
        metavar="URL",
    ),
    FieldSpec("target", "Daytona target region.", "pass a region name", env_var="DAYTONA_TARGET"),
    FieldSpec(
        "snapshot",
        "Snapshot to create sandboxes from (not with --daytona-image).",
        "pass a snapshot name, or leave the setting out",
        metavar="NAME",
    ),
    FieldSpec(
        "image",
        "Container image to create sandboxes from (not with --daytona-snapshot).",
        "pass an image such as python:3.12-slim, or leave the setting out",
        metavar="IMAGE",
    ),
    FieldSpec("language", "Sandbox language (python, typescript, ...).", "pass a language name"),
    FieldSpec(
        "timeout",
        "Time allowed for each sandbox operation and command: seconds, or a duration such "
        "as 90s or 10m (default 300 s; 0.001 s to 1d).",
        f"pass seconds (e.g. 300) or a duration ({FORMS}), from 0.001 s to 1d",
        metavar="DURATION",
        unit=SECONDS,
    ),
    FieldSpec(
        "retry_budget",
        "Time a failed API call may spend on retries (429, 502-504, lost connections): "
        "seconds, or a duration such as 2m (default 30 s, 0: no retries, at most 1h).",
        f"pass seconds (e.g. 30) or a duration ({FORMS}), from 0 (no retries) to 1h",
        env_var="PYTEST_DAYTONA_RETRY_BUDGET",
        metavar="DURATION",
        unit=SECONDS,
    ),
    FieldSpec(
        "ttl",
        "Time after which Daytona destroys a sandbox whatever its state, if nothing else "
        "did: minutes, or a duration such as 2h or 1d (default: 10 x timeout, at least 60 "
        "min, per test; 1440 for the session sandbox; 10080, renewed on each resume, for a "
        "reused one; 0: no TTL).",
        f"pass whole minutes (e.g. 90) or a duration ({FORMS}), 0 or more (0 disables the TTL)",
        env_var="PYTEST_DAYTONA_TTL",
        metavar="DURATION",
        unit=MINUTES,
    ),
    FieldSpec("cpu", "CPU cores per sandbox (image sandboxes).", _INT_FIX, metavar="N"),
    FieldSpec("memory", "Memory in GiB per sandbox (image sandboxes).", _INT_FIX, metavar="GIB"),
    FieldSpec("disk", "Disk in GiB per sandbox (image sandboxes).", _INT_FIX, metavar="GIB"),
    FieldSpec("gpu", "GPUs per sandbox (image sandboxes).", _INT_FIX, metavar="N"),
    FieldSpec(
        "auto_stop_interval",
        "Inactivity after which Daytona stops a sandbox: minutes, or a duration such as 30m "
        "or 2h (0: never).",
        f"pass whole minutes (e.g. 15) or a duration ({FORMS}), 0 or more (0: never)",
        metavar="DURATION",
        unit=MINUTES,
    ),
    FieldSpec(
        "auto_archive_interval",
        "Time a sandbox stays stopped before Daytona archives it: minutes, or a duration "
        "such as 12h or 7d (0: the maximum).",
        f"pass whole minutes (e.g. 60) or a duration ({FORMS}), 0 or more (0: the maximum)",
        metavar="DURATION",
        unit=MINUTES,
    ),
    FieldSpec(
        "auto_delete_interval",
        "Time a sandbox stays stopped before Daytona deletes it: minutes, or a duration such "
        "as 12h or 7d (0: at once, -1: never).",
        f"pass whole minutes (e.g. 60) or a duration ({FORMS}); -1 (never), 0 (at once) or more",
        metavar="DURATION",
        unit=MINUTES,
    ),
    FieldSpec(
        "reuse",
        "Keep the session sandbox (stopped) after the run and resume it next run.",
        "pass true or false",
        ini_type="bool",
        env_var="PYTEST_DAYTONA_REUSE",
    ),
    FieldSpec(
        "reuse_key",
        "Name of the reusable session sandbox, e.g. one per CI matrix cell "
        "(default: the project directory's name).",
        "use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
        env_var="PYTEST_DAYTONA_REUSE_KEY",
        metavar="KEY",
    ),
    FieldSpec(
        "fresh",
        "Destroy the reusable session sandbox of this reuse key and start from a new one.",
        "pass true or false",
        ini_type="bool",
        env_var="PYTEST_DAYTONA_FRESH",
    ),
    FieldSpec(
        "lock_timeout",
        "Time a worker waits for another to set up the shared session sandbox: seconds, or "
        "a duration such as 15m (default 600 s, at most 1d).",
        f"pass seconds (e.g. 600) or a duration ({FORMS}), more than 0 and at most 1d",
        metavar="DURATION",
        unit=SECONDS,
    ),
    FieldSpec(
        "prewarm",
        "Sandboxes each process creates ahead of the tests about to take one (default 8; "
        "never more than those tests need; 0: create each when its test starts).",
        "pass a whole number from 0 to 64",
        env_var="PYTEST_DAYTONA_PREWARM",
        metavar="N",
    ),
    FieldSpec(
        "keep",
        "Keep a test's sandbox (labelled, stopped, deleted by its TTL) instead of deleting it: "
        "'never' (default), 'failed' (when its test failed) or 'always'.",
        "pass never, failed or always",
        env_var="PYTEST_DAYTONA_KEEP",
        metavar="{never,failed,always}",
    ),
    FieldSpec(
        "backend",
        "'daytona' (the cloud, default) or 'local' (the embedded server, no account needed).",
        "pass daytona or local",
        env_var="PYTEST_DAYTONA_BACKEND",
        metavar="{daytona,local}",
    ),
    FieldSpec(
        "missing_key",
        "With the daytona backend and no API key: 'fail' the tests that take a sandbox "
        "(default), 'skip' them, or run them on the embedded server ('local'), e.g. for "
        "pull requests from forks, which get no secrets.",
        "pass fail, skip or local",
        env_var="PYTEST_DAYTONA_MISSING_KEY",
        metavar="{fail,skip,local}",
    ),
    FieldSpec(
        "workspace",
        "Name of the working directory created in the sandbox's home (default pytest-workspace).",
        "pass one directory name without '/', such as pytest-workspace",
        metavar="NAME",
    ),
    FieldSpec(
        "labels",
        "Extra sandbox label KEY=VALUE (repeatable; ini: one per line).",
        "write KEY=VALUE with a non-empty KEY",
        ini_type="linelist",
        metavar="KEY=VALUE",
    ),
    FieldSpec(
        "env",
        "Environment variable KEY=VALUE for sandbox commands (repeatable; ini: one per line).",
        "write KEY=VALUE where KEY is letters, digits and _, not starting with a digit",
        ini_type="linelist",
        metavar="KEY=VALUE",
    ),
)
#: Every setting, in the order they are documented.
FIELD_SPECS: dict[str, FieldSpec] = {spec.name: spec for spec in _SPECS}


def add_options(parser: pytest.Parser) -> None:
    """Register a ``--daytona-*`` option and a ``daytona_*`` ini key for every setting.

    Every option defaults to None so that "not given" can be told apart from any value.
    """
    group = parser.getgroup("daytona", "Daytona sandboxes")
    for spec in _SPECS:
        if spec.ini_type is not None:
            parser.addini(spec.ini, spec.help, type=spec.ini_type, default=None)
        names = [spec.option]
        kwargs: dict[str, Any] = {"dest": spec.dest, "default": None}
        if spec.ini_type == "bool":
            kwargs["action"] = "store_true"
        elif spec.name in DICT_FIELDS:
            kwargs.update(action="append", metavar=spec.metavar)
            names += ["--daytona-label"] if spec.name == "labels" else []
        else:
            # No argparse choices: every source goes through the same validation (and case
            # folding), so `--daytona-backend LOCAL` means what PYTEST_DAYTONA_BACKEND=LOCAL does.
            kwargs["metavar"] = spec.metavar
        group.addoption(*names, help=spec.help + _env_note(spec), **kwargs)
        if spec.name == "reuse":
            group.addoption(
                "--daytona-no-reuse",
                action="store_false",
                dest=spec.dest,
                default=None,
                help="Do not reuse the session sandbox (overrides ini and env).",
            )


def _env_note(spec: FieldSpec) -> str:
    if spec.env_var is None or spec.env_var in spec.help:
        return ""
    return f" Env: {spec.env_var}."


def local_for_missing_key(values: Mapping[str, object]) -> bool:
    """Whether ``missing_key = local`` turns these values (as given, not validated) into the
    embedded backend: the daytona backend is asked for and no API key is given."""
    policy, backend = (str(values.get(n) or "").strip().lower() for n in ("missing_key", "backend"))
    key = values.get("api_key")
    key = key.get_secret_value() if hasattr(key, "get_secret_value") else key
    return policy == "local" and backend in ("", "daytona") and not str(key or "").strip()


def describe_for_header(settings: Any) -> str:
    """One line for pytest's report header: backend, URL, target, image/snapshot, reuse.
    `settings`: a `Settings`, or `header_values` of values not validated yet."""
    if settings.backend == "local":
        where = f"backend=local api_url={settings.api_url or '<embedded server>'}"
    else:
        where = (
            f"backend=daytona api_url={settings.api_url or '<SDK default>'}"
            f" target={settings.target or '<SDK default>'}"
        )
    if settings.image:
        base = f"image={settings.image}"
    else:
        base = f"snapshot={settings.snapshot or '<Daytona default>'}"
    return f"daytona: {where} {base} reuse={'on' if settings.reuse else 'off'}"


def header_values(values: Mapping[str, object]) -> SimpleNamespace:
    """What `describe_for_header` reads, from values as given (`resolve.raw_values`),
    normalized as `Settings` would without importing it."""

    def text(name: str) -> str | None:
        value = values.get(name)
        return (str(value).strip() or None) if value is not None else None

    reuse = values.get("reuse")
    local = local_for_missing_key(values)
    return SimpleNamespace(
        backend="local" if local else (text("backend") or "daytona").lower(),
        api_url=None if local else (text("api_url") or "").rstrip("/") or None,
        target=text("target"),
        image=text("image"),
        snapshot=text("snapshot"),
        reuse=reuse is True or str(reuse).strip().lower() in ("1", "true", "yes", "on", "t", "y"),
    )
