"""Settings for one test, resolved marker > CLI > env > ini > default and validated once;
every invalid value is reported at once with its source and fix."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import Problem, SettingsError
from .options import DICT_FIELDS, EMPTY_IS_ERROR, FIELD_SPECS, RUN_WIDE, FieldSpec

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["resolve_settings"]


@dataclass(frozen=True)
class _Given:
    value: object
    source: str


_Layer = dict[str, _Given]
_NAMED_ERRORS = {
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be a mapping of KEY to VALUE",
    "string_pattern_mismatch": "must be letters, digits and _, not starting with a digit",
    "string_too_short": "must not be empty",
}


def resolve_settings(
    config: pytest.Config,
    marker_kwargs: Mapping[str, object] | None = None,
    *,
    marker_origin: str | None = None,
) -> Settings:
    """The settings for one test: marker > CLI > env > ini > default, per setting.

    `marker_kwargs` are the ``@pytest.mark.daytona(...)`` keyword arguments (or a factory's
    overrides); `marker_origin` names where they were given, such as the test's node id.
    A marker value of None resets that setting to its default; marker ``env``/``labels`` are
    merged over the run-wide ones. Whichever layer sets image or snapshot sets both (the
    other one from lower layers is dropped). Raises `SettingsError` listing every problem.
    """
    from pydantic import ValidationError

    from .settings import Settings

    problems: list[Problem] = []
    marker_source = "@pytest.mark.daytona" + (f" in {marker_origin}" if marker_origin else "")
    layers = [
        *_run_layers(config, problems),
        _marker_layer(marker_kwargs or {}, marker_source, problems),
    ]
    chosen, sources, key_sources = _choose(layers)
    try:
        settings = Settings.model_validate(chosen)
    except ValidationError as exc:
        problems += [_problem(err, chosen, sources, key_sources) for err in exc.errors()]
    if problems:
        secrets = [str(g.value) for layer in layers if (g := layer.get("api_key"))]
        order = {spec.ini: i for i, spec in enumerate(FIELD_SPECS.values())}
        problems.sort(key=lambda p: order.get(p.setting, -1))
        raise SettingsError(_redact(p, secrets) for p in problems)
    settings._sources = sources
    return settings


def raw_values(config: pytest.Config) -> dict[str, Any]:
    """The run-wide values as given (CLI > env > ini), not validated: cheap, for the report
    header of a run that may never need a sandbox (no pydantic, no SDK)."""
    return _choose(_run_layers(config, []))[0]


def _run_layers(config: pytest.Config, problems: list[Problem]) -> list[_Layer]:
    return [_ini_layer(config, problems), _env_layer(), _cli_layer(config, problems)]


def _choose(
    layers: list[_Layer],
) -> tuple[dict[str, Any], dict[str, str], dict[str, dict[str, str]]]:
    """The value each setting gets from the highest layer giving it, its source(s), and the
    source of each key of the dict settings."""
    chosen: dict[str, Any] = {}
    sources: dict[str, str] = {}
    key_sources: dict[str, dict[str, str]] = {name: {} for name in DICT_FIELDS}
    top_image_layer = max(
        (i for i, layer in enumerate(layers) if "image" in layer or "snapshot" in layer), default=-1
    )
    for name in FIELD_SPECS:
        for index, layer in enumerate(layers):
            given = layer.get(name)
            if given is None or (name in EMPTY_IS_ERROR and index != top_image_layer):
                continue
            if name in DICT_FIELDS and isinstance(given.value, Mapping):
                merged = chosen.get(name, {})
                chosen[name] = {**merged, **given.value}
                key_sources[name].update(dict.fromkeys(given.value, given.source))
                sources[name] = _join(sources.get(name), given.source)
            else:
                chosen[name] = given.value
                sources[name] = given.source
    for name, value in list(chosen.items()):
        if value is None:
            del chosen[name]  # an explicit None means the default
    return chosen, sources, key_sources


def _join(previous: str | None, source: str) -> str:
    if not previous:
        return source
    return previous if source in previous.split(", ") else f"{previous}, {source}"


def _offer(layer: _Layer, spec: FieldSpec, value: object, source: str, out: list[Problem]) -> None:
    """Put a CLI/env/ini value into `layer` unless it counts as not given."""
    if value is None:
        return
    if spec.name in DICT_FIELDS and isinstance(value, (list, str)):
        entries = value.splitlines() if isinstance(value, str) else value
        parsed = _parse_entries(spec, entries, source, out)
        if parsed:
            layer[spec.name] = _Given(parsed, source)
        return
    if isinstance(value, str):
        value = value.strip()
        if not value and spec.name not in EMPTY_IS_ERROR:
            return
    layer[spec.name] = _Given(value, source)


def _parse_entries(
    spec: FieldSpec, entries: Iterable[str], source: str, out: list[Problem]
) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for entry in entries:
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        if not sep:
            out.append(Problem(spec.ini, source, "must be KEY=VALUE", repr(entry), spec.fix))
            continue
        parsed[key.strip()] = value.strip()
    return parsed


def _ini_layer(config: pytest.Config, out: list[Problem]) -> _Layer:
    overrides = config.getoption("override_ini", None) or []
    overridden = {str(item).partition("=")[0].strip() for item in overrides}
    layer: _Layer = {}
    for spec in FIELD_SPECS.values():
        if spec.ini_type is None:
            continue
        if spec.ini in overridden:
            source = f"-o {spec.ini}"
        else:
            source = f"ini {spec.ini} in {config.inipath}"
        try:
            value = config.getini(spec.ini)
        except pytest.UsageError:  # pytest refused to convert it (a bool that is not one)
            out.append(Problem(spec.ini, source, "must be true or false", None, spec.fix))
            continue
        _offer(layer, spec, value, source, out)
    return layer


def _env_layer() -> _Layer:
    layer: _Layer = {}
    for spec in FIELD_SPECS.values():
        if spec.env_var is not None:
            _offer(layer, spec, os.environ.get(spec.env_var), f"env {spec.env_var}", [])
    return layer


def _cli_layer(config: pytest.Config, out: list[Problem]) -> _Layer:
    layer: _Layer = {}
    for spec in FIELD_SPECS.values():
        value = config.getoption(spec.dest, None)
        source = "--daytona-no-reuse" if value is False and spec.name == "reuse" else spec.option
        _offer(layer, spec, value, source, out)
    return layer


def _marker_layer(kwargs: Mapping[str, object], source: str, out: list[Problem]) -> _Layer:
    layer: _Layer = {}
    allowed = [name for name in FIELD_SPECS if name not in RUN_WIDE]
    for key, value in kwargs.items():
        spec = FIELD_SPECS.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            fix = f"{hint}the marker takes {', '.join(allowed)}"
            out.append(Problem(key, source, "is not a pytest-daytona setting", None, fix))
        elif key in RUN_WIDE:
            how = f"{spec.option} or env {spec.env_var}" if spec.env_var else spec.option
            fix = f"set it for the whole run with {how}"
            out.append(Problem(spec.ini, source, "cannot be set in a marker", None, fix))
        else:
            layer[key] = _Given(dict(value) if isinstance(value, Mapping) else value, source)
    return layer


def _problem(
    err: Mapping[str, Any],
    chosen: Mapping[str, Any],
    sources: Mapping[str, str],
    key_sources: Mapping[str, Mapping[str, str]],
) -> Problem:
    """Map one pydantic error back to the setting, the value as given and its source."""
    from .settings import CONFLICT

    loc = err["loc"]
    name = str(loc[0])
    spec = FIELD_SPECS[name]
    source = sources.get(name, "default")
    value = None if name == "api_key" else repr(chosen.get(name))
    message = _NAMED_ERRORS.get(err["type"]) or err["msg"].removeprefix("Value error, ")
    if name == "reuse_key" and err["type"] == "string_pattern_mismatch":
        message = "is not a valid reuse key"
    message = message.replace("Input should be ", "must be ", 1)
    fix = spec.fix
    if name in DICT_FIELDS and len(loc) > 1:
        key = loc[1]
        source = key_sources.get(name, {}).get(str(key), source)
        if loc[-1] == "[key]":
            message, value = f"key {key!r} {message}", repr(key)
        else:
            message = f"value of {key!r} {message}"
            value = repr(chosen[name].get(key))
    if message == CONFLICT:
        message += f" {chosen['snapshot']!r} (from {sources.get('snapshot', 'default')})"
        fix = "set either image or snapshot, not both"
    return Problem(spec.ini, source, message, value, fix)


def _redact(problem: Problem, secrets: Iterable[str]) -> Problem:
    """Blank out the API key wherever a mistake put it, e.g. into DAYTONA_API_URL."""
    value, message = problem.value, problem.message
    for secret in {s for raw in secrets for s in (raw, raw.strip()) if len(s.strip()) >= 4}:
        value = value.replace(secret, "<redacted>") if value is not None else None
        message = message.replace(secret, "<redacted>")
    return replace(problem, value=value, message=message)
