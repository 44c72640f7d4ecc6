"""The toolbox agent's own runtime inside an image: this machine's Python, brought in.

Daytona binds its daemon (one static binary) read-only into every sandbox, so the toolbox needs
nothing of the image's userland. The agent here is Python, so what is brought in is the Python
the server runs on: its interpreter and standard library, the shared libraries they link to and
the dynamic loader, each bound read-only under ``/.daytona``. The interpreter is started through
that loader with its own library path, so it runs in an image with another C library or none;
the programs the agent starts (the shell, ``python3`` of ``code_run``) are the image's own and
inherit nothing of it (the library path is the loader's argument, not an environment variable).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

ROOT = "/.daytona"
_LIB = f"{ROOT}/lib"
_PYTHON_HOME = f"{ROOT}/python"
_LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(/\S+)\s+\(0x[0-9a-f]+\)")
_LDD_LOADER = re.compile(r"^\s*(/\S+)\s+\(0x[0-9a-f]+\)")
#: Extension modules the agent never imports, whose libraries would only add binds.
_UNUSED = ("_tkinter", "_curses", "_curses_panel", "readline", "_dbm", "_gdbm", "nis")


@dataclass(frozen=True)
class AgentRuntime:
    """Read-only binds (host path, in-sandbox path) and the command line prefix that starts
    this machine's Python inside a sandbox whose root is an image."""

    binds: tuple[tuple[str, str], ...]
    python: tuple[str, ...]


@functools.cache
def agent_runtime() -> AgentRuntime:
    """The runtime of the interpreter running this server (computed once per process)."""
    executable = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    stdlib = sysconfig.get_paths()["stdlib"]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    dynload = Path(stdlib) / "lib-dynload"
    objects = [executable]
    if dynload.is_dir():
        objects += [str(p) for p in sorted(dynload.glob("*.so")) if not p.name.startswith(_UNUSED)]
    libraries, loader = _linked(objects)
    binds = [(path, f"{_LIB}/{name}") for name, path in sorted(libraries.items())]
    binds.append((loader, f"{_LIB}/{os.path.basename(loader)}"))
    binds.append((stdlib, f"{_PYTHON_HOME}/lib/{version}"))
    binds.append((executable, f"{_PYTHON_HOME}/bin/{version}"))
    python = (f"{_LIB}/{os.path.basename(loader)}", "--library-path", _LIB)
    return AgentRuntime(tuple(binds), (*python, f"{_PYTHON_HOME}/bin/{version}"))


def _linked(objects: list[str]) -> tuple[dict[str, str], str]:
    """The shared libraries `objects` need, by the name they ask for (``libffi.so.8``) with
    the file that is (by ``ldd``), and the dynamic loader."""
    libraries: dict[str, str] = {}
    loader = ""
    for obj in objects:
        try:
            out = subprocess.run(
                ["ldd", obj], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in out.splitlines():
            if (found := _LDD_LINE.match(line)) is not None:
                libraries.setdefault(found.group(1), os.path.realpath(found.group(2)))
            elif (first := _LDD_LOADER.match(line)) is not None:
                loader = loader or os.path.realpath(first.group(1))
    if not loader:
        raise RuntimeError(f"cannot find the dynamic loader of {objects[0]} (ldd)")
    return libraries, loader
