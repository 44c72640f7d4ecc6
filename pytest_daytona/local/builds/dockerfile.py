"""Dockerfile instructions as the SDK's declarative ``Image`` writes them, parsed for a build."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

#: Instructions that only describe the image (no build work, no layer).
CONFIG_ONLY = frozenset({"ENV", "WORKDIR", "USER", "ENTRYPOINT", "CMD", "ARG", "LABEL"})
#: Instructions recorded in the log and otherwise ignored, as a runtime ignores them.
IGNORED = frozenset({"EXPOSE", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "MAINTAINER", "ONBUILD"})
BUILDING = frozenset({"RUN", "COPY", "ADD"})


class DockerfileError(ValueError):
    """A Dockerfile this server cannot build, with the line and the reason."""


@dataclass(frozen=True)
class Instruction:
    """One logical line: its keyword (upper case) and the rest, as written."""

    keyword: str
    rest: str

    @property
    def line(self) -> str:
        """The instruction as one line (for logs and cache keys)."""
        return f"{self.keyword} {self.rest}"

    def words(self) -> list[str]:
        """Exec form (a JSON array) as its items, else the words of the shell form."""
        if self.rest.startswith("["):
            try:
                parsed = json.loads(self.rest)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list):
                return [str(item) for item in parsed]
        return shlex.split(self.rest)

    def is_exec_form(self) -> bool:
        """Whether the arguments are a JSON array (run without a shell)."""
        try:
            return isinstance(json.loads(self.rest), list)
        except json.JSONDecodeError:
            return False


def parse(text: str) -> tuple[str, list[Instruction]]:
    """The base image (``FROM``) and the instructions after it."""
    instructions = [_split(line) for line in logical_lines(text)]
    if not instructions or instructions[0].keyword != "FROM":
        raise DockerfileError("the Dockerfile must start with FROM")
    words = [w for w in instructions[0].words() if not w.startswith("--")]
    if not words:
        raise DockerfileError("FROM names no image")
    rest = instructions[1:]
    for instruction in rest:
        if instruction.keyword == "FROM":
            raise DockerfileError(
                f"{instruction.line}: multi-stage builds are not supported by the local server"
            )
        known = CONFIG_ONLY | IGNORED | BUILDING | {"SHELL"}
        if instruction.keyword not in known:
            raise DockerfileError(f"{instruction.line}: unknown instruction")
    return words[0], rest


def _split(line: str) -> Instruction:
    keyword, _, rest = line.partition(" ")
    return Instruction(keyword.upper(), rest.strip())


def logical_lines(text: str) -> list[str]:
    """Lines joined at trailing backslashes, without comments and blank lines."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append((pending + stripped).strip())
        pending = ""
    if pending.strip():
        lines.append(pending.strip())
    return lines


def env_pairs(rest: str) -> dict[str, str]:
    """``ENV`` arguments: ``K=V K2="V 2"`` or the legacy ``K value with spaces``."""
    words = shlex.split(rest)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words if "=" in word)


def copy_pair(instruction: Instruction) -> tuple[list[str], str]:
    """``COPY``/``ADD`` sources and destination (options such as ``--chown`` dropped)."""
    words = [w for w in instruction.words() if not w.startswith("--")]
    if len(words) < 2:
        raise DockerfileError(f"{instruction.line}: needs a source and a destination")
    return words[:-1], words[-1]
