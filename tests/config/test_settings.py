"""Settings: options, precedence, validation messages, secrecy and the sandbox signature."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import ValidationError

from pytest_daytona.config.options import FIELD_SPECS, RUN_WIDE, describe_for_header
from pytest_daytona.config.resolve import resolve_settings
from pytest_daytona.config.settings import Settings, missing_api_key_message
from pytest_daytona.errors import SettingsError

#: The quick development loop (`pytest -m quick`, README: Development) runs all of these.
pytestmark = pytest.mark.quick

ENV_VARS = (
    "DAYTONA_API_KEY",
    "DAYTONA_API_URL",
    "DAYTONA_TARGET",
    "PYTEST_DAYTONA_BACKEND",
    "PYTEST_DAYTONA_REUSE",
)
NODE = "test_mod.py::test_x"
MARK = f"@pytest.mark.daytona in {NODE}"
SECRET = "dtn_0123456789abcdefSECRET"


@dataclass
class Run:
    """One configuration to resolve: CLI args, ini lines, env vars and marker kwargs."""

    args: Sequence[str] = ()
    ini: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    marker: Mapping[str, object] | None = None


Resolve = Callable[[Run], Settings]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ini_path(pytester: pytest.Pytester) -> Path:
    return pytester.path / "tox.ini"


@pytest.fixture
def resolve(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Resolve:
    def run(spec: Run) -> Settings:
        pytester.makeini("[pytest]\n" + spec.ini)
        for name in ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        for name, value in spec.env.items():
            monkeypatch.setenv(name, value)
        config = pytester.parseconfig(*spec.args)
        return resolve_settings(config, spec.marker, marker_origin=NODE)

    return run


def problems_of(resolve: Resolve, spec: Run) -> list[str]:
    with pytest.raises(SettingsError) as info:
        resolve(spec)
    lines = [str(problem) for problem in info.value.problems]
    assert str(info.value).splitlines()[1:] == [f"  {line}" for line in lines]
    return lines


def test_defaults_come_from_the_model(resolve: Resolve) -> None:
    settings = resolve(Run())
    assert settings == Settings()
    assert (settings.timeout, settings.reuse, settings.backend) == (300.0, False, "daytona")
    assert (settings.workspace, settings.env, settings.labels) == ("pytest-workspace", {}, {})
    assert all(settings.source(name) == "default" for name in FIELD_SPECS)


@dataclass
class Layered:
    field: str
    ini: str
    env: tuple[str, str] | None
    cli: list[str]
    marker: object
    expected: tuple[object, ...]  # after ini, (env,) cli, (marker)


LAYERED = [
    Layered("target", "t-ini", ("DAYTONA_TARGET", "t-env"), ["--daytona-target=t-cli"], "t-mk",
            ("t-ini", "t-env", "t-cli", "t-mk")),
    Layered("cpu", "1", None, ["--daytona-cpu", "2"], 3, (1, 2, 3)),
    Layered("timeout", "10", None, ["--daytona-timeout=20.5"], 30, (10.0, 20.5, 30.0)),
    Layered("reuse", "true", ("PYTEST_DAYTONA_REUSE", "0"), ["--daytona-reuse"], None,
            (True, False, True)),
    Layered("reuse_key", "ini-key", ("PYTEST_DAYTONA_REUSE_KEY", "env-key"),
            ["--daytona-reuse-key", "cli-key"], None, ("ini-key", "env-key", "cli-key")),
    Layered("fresh", "false", ("PYTEST_DAYTONA_FRESH", "1"), ["--daytona-fresh"], None,
            (False, True, True)),
    Layered("lock_timeout", "5", None, ["--daytona-lock-timeout=7.5"], None, (5.0, 7.5)),
    Layered("backend", "local", ("PYTEST_DAYTONA_BACKEND", "daytona"),
            ["--daytona-backend=local"], None, ("local", "daytona", "local")),
    Layered("api_url", "http://ini.test", ("DAYTONA_API_URL", "http://env.test"),
            ["--daytona-api-url=http://cli.test/"], None,
            ("http://ini.test", "http://env.test", "http://cli.test")),
]  # fmt: skip


@pytest.mark.parametrize("case", LAYERED, ids=lambda case: case.field)
def test_precedence_is_marker_cli_env_ini_default(
    resolve: Resolve, ini_path: Path, case: Layered
) -> None:
    ini = f"daytona_{case.field} = {case.ini}"
    env = dict([case.env]) if case.env else {}
    layers = [(Run(ini=ini), f"ini daytona_{case.field} in {ini_path}")]
    if case.env:
        layers.append((Run(ini=ini, env=env), f"env {case.env[0]}"))
    layers.append((Run(case.cli, ini, env), FIELD_SPECS[case.field].option))
    if case.marker is not None:
        layers.append((Run(case.cli, ini, env, {case.field: case.marker}), MARK))
    assert len(layers) == len(case.expected)
    for (run, source), expected in zip(layers, case.expected, strict=True):
        settings = resolve(run)
        assert (getattr(settings, case.field), settings.source(case.field)) == (expected, source)


def test_blank_cli_and_env_values_count_as_unset(resolve: Resolve, ini_path: Path) -> None:
    settings = resolve(
        Run(["--daytona-target", "  "], "daytona_target = eu", {"DAYTONA_TARGET": ""})
    )
    assert (settings.target, settings.source("target")) == (
        "eu",
        f"ini daytona_target in {ini_path}",
    )


def test_override_ini_is_named_as_such(resolve: Resolve) -> None:
    settings = resolve(Run(["-o", "daytona_cpu=4"], "daytona_cpu = 2"))
    assert (settings.cpu, settings.source("cpu")) == (4, "-o daytona_cpu")


def test_strings_are_trimmed_and_url_slash_stripped(resolve: Resolve) -> None:
    settings = resolve(
        Run(
            ["--daytona-language", " python "],
            "daytona_snapshot =  base  ",
            {"DAYTONA_API_URL": " https://daytona.test/api/ "},
        )
    )
    assert (settings.language, settings.snapshot) == ("python", "base")
    assert settings.api_url == "https://daytona.test/api"


def test_env_and_labels_merge_across_layers(resolve: Resolve, ini_path: Path) -> None:
    run = Run(
        ["--daytona-env", "B=cli", "--daytona-env=C = cli", "--daytona-label", "team=qa"],
        "daytona_env =\n    A=ini\n    B=ini\ndaytona_labels =\n    team=core\n    tier=1\n",
        marker={"env": {"C": "mark", "D": "x=y"}, "labels": {"tier": "2"}},
    )
    settings = resolve(run)
    assert settings.env == {"A": "ini", "B": "cli", "C": "mark", "D": "x=y"}
    assert settings.labels == {"team": "qa", "tier": "2"}
    ini = f"ini daytona_env in {ini_path}"
    assert settings.source("env") == f"{ini}, --daytona-env, {MARK}"


def test_a_higher_layer_choosing_image_or_snapshot_replaces_both(resolve: Resolve) -> None:
    run = Run(["--daytona-snapshot=snap"], "daytona_image = python:3.12")
    settings = resolve(run)
    assert (settings.snapshot, settings.image) == ("snap", None)
    settings = resolve(Run(run.args, run.ini, marker={"image": "node:22"}))
    assert (settings.snapshot, settings.image) == (None, "node:22")
    assert settings.source("image") == MARK


def test_marker_none_resets_to_the_default(resolve: Resolve) -> None:
    run = Run(
        ["--daytona-env", "A=1"],
        "daytona_cpu = 2\ndaytona_timeout = 5",
        marker={"cpu": None, "timeout": None, "env": None},
    )
    settings = resolve(run)
    assert (settings.cpu, settings.timeout, settings.env) == (None, 300.0, {})


def test_no_reuse_flag_overrides_ini(resolve: Resolve) -> None:
    settings = resolve(Run(["--daytona-no-reuse"], "daytona_reuse = true"))
    assert (settings.reuse, settings.source("reuse")) == (False, "--daytona-no-reuse")


INI = "ini {name} in {ini_path}"
TIMEOUT_FIX = (
    "fix: pass seconds (e.g. 300) or a duration (30s, 15m, 2h, 1d, 1w or 1h30m), from 0.001 s to 1d"
)
INVALID = [
    (Run(["--daytona-cpu=-2"]),
     "daytona_cpu = '-2' (from --daytona-cpu): must be greater than 0; "
     "fix: pass a positive integer"),
    (Run(["--daytona-cpu=abc"]),
     "daytona_cpu = 'abc' (from --daytona-cpu): must be a whole number; "
     "fix: pass a positive integer"),
    (Run(ini="daytona_memory = 1.5"),
     f"daytona_memory = '1.5' (from {INI}): must be a whole number; fix: pass a positive integer"),
    (Run(marker={"gpu": 0}),
     f"daytona_gpu = 0 (from {MARK}): must be greater than 0; fix: pass a positive integer"),
    (Run(marker={"disk": True}),
     f"daytona_disk = True (from {MARK}): must be a whole number, not a boolean; "
     "fix: pass a positive integer"),
    (Run(["--daytona-timeout=0"]),
     "daytona_timeout = '0' (from --daytona-timeout): must be greater than or equal to 0.001; "
     f"{TIMEOUT_FIX}"),
    (Run(ini="daytona_timeout = 86401"),
     f"daytona_timeout = '86401' (from {INI}): must be less than or equal to 86400; "
     f"{TIMEOUT_FIX}"),
    (Run(["--daytona-timeout", "nan"]),
     "daytona_timeout = 'nan' (from --daytona-timeout): must be a finite number; "
     f"{TIMEOUT_FIX}"),
    (Run(env={"DAYTONA_API_URL": "ftp://files.test"}),
     "daytona_api_url = 'ftp://files.test' (from env DAYTONA_API_URL): must be an http(s) URL; "
     "fix: pass an http(s) URL such as https://app.daytona.io/api"),
    (Run(["--daytona-api-url=http://host.test:99999"]),
     "daytona_api_url = 'http://host.test:99999' (from --daytona-api-url): must be an http(s) "
     "URL; fix: pass an http(s) URL such as https://app.daytona.io/api"),
    (Run(["--daytona-image="]),
     "daytona_image = '' (from --daytona-image): must not be empty; "
     "fix: pass an image such as python:3.12-slim, or leave the setting out"),
    (Run(ini="daytona_snapshot ="),
     f"daytona_snapshot = '' (from {INI}): must not be empty; "
     "fix: pass a snapshot name, or leave the setting out"),
    (Run(marker={"image": "python:3.12", "snapshot": "base"}),
     f"daytona_image = 'python:3.12' (from {MARK}): cannot be combined with snapshot 'base' "
     f"(from {MARK}); fix: set either image or snapshot, not both"),
    (Run(["--daytona-image=img", "--daytona-snapshot=snap"]),
     "daytona_image = 'img' (from --daytona-image): cannot be combined with snapshot 'snap' "
     "(from --daytona-snapshot); fix: set either image or snapshot, not both"),
    (Run(["--daytona-auto-stop-interval=-1"]),
     "daytona_auto_stop_interval = '-1' (from --daytona-auto-stop-interval): must be greater "
     "than or equal to 0; fix: pass whole minutes (e.g. 15) or a duration (30s, 15m, 2h, 1d, "
     "1w or 1h30m), 0 or more (0: never)"),
    (Run(marker={"auto_delete_interval": -2}),
     f"daytona_auto_delete_interval = -2 (from {MARK}): must be greater than or equal to -1; "
     "fix: pass whole minutes (e.g. 60) or a duration (30s, 15m, 2h, 1d, 1w or 1h30m); -1 "
     "(never), 0 (at once) or more"),
    (Run(env={"PYTEST_DAYTONA_BACKEND": "cloud"}),
     "daytona_backend = 'cloud' (from env PYTEST_DAYTONA_BACKEND): must be 'daytona' or "
     "'local'; fix: pass daytona or local"),
    (Run(env={"PYTEST_DAYTONA_REUSE": "maybe"}),
     "daytona_reuse = 'maybe' (from env PYTEST_DAYTONA_REUSE): must be true or false; "
     "fix: pass true or false"),
    (Run(ini="daytona_reuse = maybe"),
     f"daytona_reuse (from {INI}): must be true or false; fix: pass true or false"),
    (Run(["--daytona-workspace=a/b"]),
     "daytona_workspace = 'a/b' (from --daytona-workspace): must be one directory name, without "
     "'/' and not '.' or '..'; fix: pass one directory name without '/', such as "
     "pytest-workspace"),
    (Run(marker={"workspace": ".."}),
     f"daytona_workspace = '..' (from {MARK}): must be one directory name, without '/' and not "
     "'.' or '..'; fix: pass one directory name without '/', such as pytest-workspace"),
    (Run(marker={"workspace": "  "}),
     f"daytona_workspace = '  ' (from {MARK}): must not be empty; fix: pass one directory name "
     "without '/', such as pytest-workspace"),
    (Run(["--daytona-env", "1BAD=x"]),
     "daytona_env = '1BAD' (from --daytona-env): key '1BAD' must be letters, digits and _, not "
     "starting with a digit; fix: write KEY=VALUE where KEY is letters, digits and _, not "
     "starting with a digit"),
    (Run(["--daytona-env", "NOEQUALS"]),
     "daytona_env = 'NOEQUALS' (from --daytona-env): must be KEY=VALUE; fix: write KEY=VALUE "
     "where KEY is letters, digits and _, not starting with a digit"),
    (Run(ini="daytona_labels =\n    =orphan"),
     f"daytona_labels = '' (from {INI}): key '' must not be empty; "
     "fix: write KEY=VALUE with a non-empty KEY"),
    (Run(marker={"env": {"A": 1}}),
     f"daytona_env = 1 (from {MARK}): value of 'A' must be a string; fix: write KEY=VALUE where "
     "KEY is letters, digits and _, not starting with a digit"),
    (Run(marker={"labels": "team=qa"}),
     f"daytona_labels = 'team=qa' (from {MARK}): must be a mapping of KEY to VALUE; "
     "fix: write KEY=VALUE with a non-empty KEY"),
    (Run(marker={"cpus": 2}),
     f"cpus (from {MARK}): is not a pytest-daytona setting; fix: did you mean 'cpu'? the marker "
     "takes target, snapshot, image, language, timeout, retry_budget, ttl, cpu, memory, disk, gpu, "
     "auto_stop_interval, auto_archive_interval, auto_delete_interval, keep, workspace, "
     "labels, env"),
    (Run(["--daytona-reuse-key", "has space"]),
     "daytona_reuse_key = 'has space' (from --daytona-reuse-key): is not a valid reuse key; "
     "fix: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"),
    (Run(["--daytona-lock-timeout", "0"]),
     "daytona_lock_timeout = '0' (from --daytona-lock-timeout): must be greater than 0; "
     "fix: pass seconds (e.g. 600) or a duration (30s, 15m, 2h, 1d, 1w or 1h30m), more than 0 "
     "and at most 1d"),
    (Run(marker={"reuse": True}),
     f"daytona_reuse (from {MARK}): cannot be set in a marker; fix: set it for the whole run "
     "with --daytona-reuse or env PYTEST_DAYTONA_REUSE"),
    (Run(marker={"backend": "local"}),
     f"daytona_backend (from {MARK}): cannot be set in a marker; fix: set it for the whole run "
     "with --daytona-backend or env PYTEST_DAYTONA_BACKEND"),
    (Run(["--daytona-api-key", "two words"]),
     "daytona_api_key (from --daytona-api-key): must not contain whitespace; fix: set "
     "DAYTONA_API_KEY to a key from the Daytona dashboard, without spaces"),
]  # fmt: skip


@pytest.mark.parametrize(("run", "expected"), INVALID)
def test_each_invalid_setting_is_reported_with_source_and_fix(
    resolve: Resolve, ini_path: Path, run: Run, expected: str
) -> None:
    name = expected.partition(" ")[0]
    assert problems_of(resolve, run) == [expected.format(name=name, ini_path=ini_path)]


def test_every_problem_is_listed_at_once_in_setting_order(resolve: Resolve, ini_path: Path) -> None:
    run = Run(
        ["--daytona-cpu=abc", "--daytona-env", "NOEQUALS"],
        "daytona_memory = -1\ndaytona_reuse = maybe",
        {"DAYTONA_API_URL": "nope"},
        {"gpus": 1, "timeout": "soon"},
    )
    with pytest.raises(SettingsError) as info:
        resolve(run)
    got = [(p.setting, p.source) for p in info.value.problems]
    assert got == [
        ("gpus", MARK),
        ("daytona_api_url", "env DAYTONA_API_URL"),
        ("daytona_timeout", MARK),
        ("daytona_cpu", "--daytona-cpu"),
        ("daytona_memory", f"ini daytona_memory in {ini_path}"),
        ("daytona_reuse", f"ini daytona_reuse in {ini_path}"),
        ("daytona_env", "--daytona-env"),
    ]
    assert str(info.value).startswith("7 invalid pytest-daytona settings:\n  gpus (from ")
    assert all("; fix: " in str(problem) for problem in info.value.problems)


@pytest.mark.parametrize("key", sorted(RUN_WIDE))
def test_run_wide_settings_are_refused_in_a_marker(resolve: Resolve, key: str) -> None:
    (line,) = problems_of(resolve, Run(marker={key: SECRET}))
    assert line.startswith(f"daytona_{key} (from {MARK}): cannot be set in a marker; fix: ")
    assert SECRET not in line


def test_api_key_never_shows(resolve: Resolve) -> None:
    env = {"DAYTONA_API_KEY": f" {SECRET} ", "DAYTONA_API_URL": SECRET}
    settings = resolve(Run(env={"DAYTONA_API_KEY": f" {SECRET} "}))
    assert settings.api_key is not None and settings.api_key.get_secret_value() == SECRET
    assert settings.source("api_key") == "env DAYTONA_API_KEY"
    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        describe_for_header(settings),
    ]
    assert not [text for text in shown if SECRET in text]
    # A key pasted into the wrong variable is blanked out of the message too.
    with pytest.raises(SettingsError) as info:
        resolve(Run(["--daytona-cpu=0"], env=env, marker={"api_key": SECRET}))
    message = str(info.value)
    assert SECRET not in message and SECRET not in repr(info.value.problems)
    assert "daytona_api_url = '<redacted>' (from env DAYTONA_API_URL)" in message
    with pytest.raises(ValidationError) as direct:
        Settings(api_key=f"{SECRET} x", cpu=0)  # type: ignore[arg-type]
    assert SECRET not in str(direct.value)


def test_signature_is_stable_and_ignores_run_wide_settings() -> None:
    base = Settings()
    assert base.signature() == "4a581eadc7e76e94"  # the same in every process and version
    assert len(base.signature()) == 16
    same = Settings(
        api_key="k",  # type: ignore[arg-type]
        api_url="http://other.test",
        timeout=5,
        reuse=True,
        backend="local",
        workspace="elsewhere",
    )
    assert same.signature() == base.signature()
    assert (
        Settings(env={"A": "1", "B": "2"}).signature()
        == Settings(env={"B": "2", "A": "1"}).signature()
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("image", "python:3.12"),
        ("snapshot", "base"),
        ("language", "python"),
        ("target", "eu"),
        ("cpu", 2),
        ("memory", 4),
        ("disk", 10),
        ("gpu", 1),
        ("auto_stop_interval", 0),
        ("auto_archive_interval", 60),
        ("auto_delete_interval", -1),
        ("env", {"A": "1"}),
        ("labels", {"team": "qa"}),
    ],
)
def test_signature_changes_with_each_sandbox_setting(name: str, value: object) -> None:
    assert Settings.model_validate({name: value}).signature() != Settings().signature()


def test_options_and_ini_keys_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    text = result.stdout.str()
    for spec in FIELD_SPECS.values():
        assert spec.option in text
        assert (spec.ini in text) is (spec.name != "api_key")  # no secret in committed files
    for extra in ("--daytona-label", "--daytona-no-reuse", "prefer the DAYTONA_API_KEY env var"):
        assert extra in text


def test_backend_option_only_takes_its_choices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(daytona_sandbox): pass")  # settings checked when used
    result = pytester.runpytest("--daytona-backend=cloud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*daytona_backend = 'cloud' (from --daytona-backend): must be 'daytona' or 'local'*"]
    )


@pytest.mark.parametrize(
    "run",
    [
        Run(["--daytona-backend", "LOCAL", "--daytona-language", "Python", "--daytona-reuse"]),
        Run(ini="daytona_backend = Local\ndaytona_language = PYTHON\ndaytona_reuse = TRUE"),
        Run(
            env={"PYTEST_DAYTONA_BACKEND": " LOCAL ", "PYTEST_DAYTONA_REUSE": "Yes"},
            ini="daytona_language = Python",
        ),
    ],
    ids=["cli", "ini", "env"],
)
def test_values_are_case_normalised_alike_from_cli_ini_and_env(resolve: Resolve, run: Run) -> None:
    settings = resolve(run)
    assert (settings.backend, settings.language, settings.reuse) == ("local", "python", True)


def test_field_specs_cover_the_model_exactly() -> None:
    assert list(FIELD_SPECS) == list(Settings.model_fields)
    assert {spec.dest for spec in FIELD_SPECS.values()} == {f"daytona_{n}" for n in FIELD_SPECS}


def test_header_line() -> None:
    cloud = Settings(api_key=SECRET, target="eu", image="python:3.12", reuse=True)  # type: ignore[arg-type]
    assert describe_for_header(cloud) == (
        "daytona: backend=daytona api_url=<SDK default> target=eu image=python:3.12 reuse=on"
    )
    local = Settings(backend="local", snapshot="base")
    assert describe_for_header(local) == (
        "daytona: backend=local api_url=<embedded server> snapshot=base reuse=off"
    )


def test_missing_api_key_message() -> None:
    message = missing_api_key_message(Settings())
    assert message is not None
    assert "DAYTONA_API_KEY" in message and "--daytona-backend local" in message
    assert missing_api_key_message(Settings(api_key="k")) is None  # type: ignore[arg-type]
    assert missing_api_key_message(Settings(backend="local")) is None


def test_importing_settings_and_executor_does_not_import_the_sdk() -> None:
    code = (
        "import sys, pytest_daytona.config.settings, pytest_daytona.handle.executor;"
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('daytona')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
