"""The package's layout is its architecture (issue 17): layers that import only the ones below
them, no import cycle, a short top level, no module over 400 lines. Read from the source with
`ast`, so that imports under ``TYPE_CHECKING`` and inside functions count as well."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pytest_daytona

#: The quick development loop (`pytest -m quick`, README: Development) runs all of these.
pytestmark = pytest.mark.quick

ROOT = Path(pytest_daytona.__file__).parent

#: Each part of the plugin and its layer: a module imports only from its own part or from
#: parts of a lower layer (the README's "Layout" picture, bottom to top).
LAYERS = {
    "errors": 0,
    "_files": 0,
    "results": 1,
    "config": 2,
    "local": 2,  # the embedded server: apart from the plugin, it shares only `_files`
    "api": 3,
    "handle": 4,
    "leases": 5,
    "newhooks": 6,
    "run": 7,
    "report": 8,
    "tools": 9,
    "default_hooks": 10,
    "fixtures": 10,
    "async_fixtures": 11,
    "plugin": 12,
    "__init__": 12,
    "__main__": 12,
}
MAX_TOP_LEVEL = 12
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Every module of the package and the modules of the package it imports."""
    modules = {_module_name(path): path for path in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[: len(here) - node.level + 1]
                    base = ".".join([*here, base] if base else here)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_module_imports_another_that_imports_it_back() -> None:
    graph = _imports()
    assert len(graph) > 100  # the walk saw the whole package, the embedded server included
    assert _cycle(graph) is None


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_each_part_imports_only_its_own_and_lower_layers() -> None:
    graph = _imports()
    assert {_part(name) for name in graph} == set(LAYERS)  # a new part gets its layer here
    upward = sorted(
        f"{name} -> {target}"
        for name, targets in graph.items()
        for target in targets
        if _part(target) != _part(name) and LAYERS[_part(target)] >= LAYERS[_part(name)]
    )
    assert upward == []


def test_the_top_level_is_short() -> None:
    top = sorted(path.name for path in ROOT.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top


@pytest.mark.parametrize("part", ["plugin", "local"])
def test_no_module_is_over_400_lines(part: str) -> None:
    paths = [p for p in ROOT.rglob("*.py") if (part == "local") == ("local" in p.parts)]
    assert paths
    long = {
        str(p.relative_to(ROOT)): n
        for p in paths
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
