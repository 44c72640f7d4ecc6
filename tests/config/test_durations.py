"""Issue 20: one duration syntax for every time setting (ini, CLI, env, marker, the cleanup
command, the local server's command line), a number alone keeping its old meaning."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_daytona.config.durations import parse_duration
from pytest_daytona.config.options import FIELD_SPECS, RUN_WIDE
from pytest_daytona.config.resolve import resolve_settings
from pytest_daytona.config.settings import Settings
from pytest_daytona.errors import SettingsError
from pytest_daytona.tools.cleanup import criteria_from

pytestmark = pytest.mark.quick

#: Every time setting and what it counts a number alone in (seconds 1, minutes 60).
TIME_SETTINGS = {name: spec.unit.seconds for name, spec in FIELD_SPECS.items() if spec.unit}


def test_the_time_settings_are_these() -> None:
    assert TIME_SETTINGS == {
        "timeout": 1,
        "retry_budget": 1,
        "lock_timeout": 1,
        "ttl": 60,
        "auto_stop_interval": 60,
        "auto_archive_interval": 60,
        "auto_delete_interval": 60,
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0),
        ("0", 0),
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1.5h", 5400),
        (" 2H ", 7200),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "5", "-1h", "1x", "1 h", "soon", "1h-", "m30"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def _resolve(pytester: pytest.Pytester, *args: str, ini: str = "") -> Settings:
    pytester.makeini("[pytest]\n" + ini)
    return resolve_settings(pytester.parseconfig(*args))


#: Each time setting with each source it has (an env var only some; a marker not the
#: run-wide ones).
SOURCES = [
    (name, where)
    for name in sorted(TIME_SETTINGS)
    for where in ("ini", "cli", "env", "marker")
    if not (where == "env" and FIELD_SPECS[name].env_var is None)
    and not (where == "marker" and name in RUN_WIDE)
]


@pytest.mark.parametrize(("name", "where"), SOURCES)
def test_every_time_setting_takes_a_duration_from_every_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str, where: str
) -> None:
    spec = FIELD_SPECS[name]
    text = "10m" if name in ("retry_budget", "timeout", "lock_timeout") else "2h"
    expected = parse_duration(text) / TIME_SETTINGS[name]
    args: list[str] = []
    ini = ""
    marker = None
    if where == "ini":
        ini = f"{spec.ini} = {text}"
    elif where == "cli":
        args = [f"{spec.option}={text}"]
    elif where == "env":
        monkeypatch.setenv(str(spec.env_var), text)
    else:
        marker = {name: text}
    pytester.makeini("[pytest]\n" + ini)
    settings = resolve_settings(pytester.parseconfig(*args), marker)
    value = getattr(settings, name)
    assert value == expected
    assert type(value) is (int if TIME_SETTINGS[name] == 60 else float)


def test_the_issues_ttl_of_2h_in_the_ini_file(pytester: pytest.Pytester) -> None:
    assert _resolve(pytester, ini="daytona_ttl = 2h").ttl == 120


@pytest.mark.parametrize(
    ("args", "name", "value"),
    [
        (["--daytona-timeout=20.5"], "timeout", 20.5),
        (["--daytona-timeout=1e2"], "timeout", 100.0),
        (["--daytona-ttl=90"], "ttl", 90),
        (["--daytona-ttl=0"], "ttl", 0),
        (["--daytona-auto-delete-interval=-1"], "auto_delete_interval", -1),
        (["--daytona-retry-budget=0"], "retry_budget", 0.0),
        (["--daytona-lock-timeout=7.5"], "lock_timeout", 7.5),
        (["--daytona-timeout=1m30s"], "timeout", 90.0),
        (["--daytona-timeout=0.5s"], "timeout", 0.5),
        (["--daytona-auto-stop-interval=1d"], "auto_stop_interval", 1440),
        (["--daytona-auto-archive-interval=1w"], "auto_archive_interval", 10080),
        (["--daytona-ttl=1.1h"], "ttl", 66),
    ],
)
def test_a_number_alone_keeps_its_unit(
    pytester: pytest.Pytester, args: list[str], name: str, value: float
) -> None:
    assert getattr(_resolve(pytester, *args), name) == value


@pytest.mark.parametrize(
    ("args", "ini", "expected"),
    [
        (["--daytona-ttl=90s"], "",
         "daytona_ttl = '90s' (from --daytona-ttl): must come to whole minutes (90s is 1.5 "
         "minutes); fix: pass whole minutes (e.g. 90) or a duration (30s, 15m, 2h, 1d, 1w or "
         "1h30m), 0 or more (0 disables the TTL)"),
        ([], "daytona_ttl = soon",
         "daytona_ttl = 'soon' (from ini daytona_ttl in {ini}): must be a whole number of "
         "minutes or a duration with a unit (s, m, h, d or w); fix: pass whole minutes (e.g. "
         "90) or a duration (30s, 15m, 2h, 1d, 1w or 1h30m), 0 or more (0 disables the TTL)"),
        (["--daytona-timeout=2d"], "",
         "daytona_timeout = '2d' (from --daytona-timeout): must be less than or equal to 86400; "
         "fix: pass seconds (e.g. 300) or a duration (30s, 15m, 2h, 1d, 1w or 1h30m), from "
         "0.001 s to 1d"),
        (["--daytona-lock-timeout=-1m"], "",
         "daytona_lock_timeout = '-1m' (from --daytona-lock-timeout): must be a number of "
         "seconds or a duration with a unit (s, m, h, d or w); fix: pass seconds (e.g. 600) or "
         "a duration (30s, 15m, 2h, 1d, 1w or 1h30m), more than 0 and at most 1d"),
    ],
)  # fmt: skip
def test_a_bad_duration_names_the_setting_its_source_and_the_forms(
    pytester: pytest.Pytester, args: list[str], ini: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as info:
        _resolve(pytester, *args, ini=ini)
    assert [str(p) for p in info.value.problems] == [expected.format(ini=pytester.path / "tox.ini")]


@pytest.mark.parametrize(("text", "seconds"), [("2h", 7200), ("0", 0), ("1h30m", 5400)])
def test_the_cleanup_age_is_parsed_the_same_way(
    pytester: pytest.Pytester, text: str, seconds: float
) -> None:
    config = pytester.parseconfig("--daytona-cleanup-older-than", text)
    assert criteria_from(config).older_than == seconds


def test_the_local_servers_transition_delay_takes_a_duration() -> None:
    from pytest_daytona.tools.cli import _parser

    assert _parser().parse_args(["serve", "--transition-delay", "2s"]).transition_delay == 2.0
    assert _parser().parse_args(["serve", "--transition-delay", "0.25"]).transition_delay == 0.25
    out = subprocess.run(
        [sys.executable, "-m", "pytest_daytona", "serve", "--transition-delay", "soon"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "--transition-delay: 'soon' is neither seconds nor a duration (30s, 15m" in out.stderr
