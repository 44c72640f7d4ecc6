"""The local server splits commands into words as Daytona's daemon does (no shell)."""

from __future__ import annotations

import pytest

from pytest_daytona.local.runner import parse_command


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("echo hello", ["echo", "hello"]),
        ("  spaced   out  ", ["spaced", "out"]),
        ("sh -c 'echo $HOME && ls'", ["sh", "-c", "echo $HOME && ls"]),
        ('say "it\'s"', ["say", "it's"]),
        ("mix 'a\"b' \"c'd\"", ["mix", 'a"b', "c'd"]),
        ("glued'quoted part'tail", ["gluedquoted parttail"]),
        ("empty '' \"\" word", ["empty", "word"]),
        ("tab\tis\tnot\ta\tseparator", ["tab\tis\tnot\ta\tseparator"]),
        ("back\\ slash", ["back\\", "slash"]),
        ("unterminated 'quote here", ["unterminated", "quote here"]),
        ("", []),
    ],
)
def test_parse_command(command: str, words: list[str]) -> None:
    assert parse_command(command) == words
