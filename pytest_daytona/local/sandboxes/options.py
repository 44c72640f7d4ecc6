"""The local server's sandbox settings: host paths shared on purpose, the process limit."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from .confinement import DEFAULT_MAX_PROCESSES
from .hostview import check_shared

#: Environment variables that set the options a caller leaves out (the plugin starts the
#: server without options): host paths, separated by ``:``, and a number.
ENV_SHARE = "PYTEST_DAYTONA_LOCAL_SHARE"
ENV_MAX_PROCESSES = "PYTEST_DAYTONA_LOCAL_MAX_PROCESSES"


@dataclass(frozen=True)
class SandboxOptions:
    """Host paths every sandbox on this machine's userland sees read-only (nothing else of
    the host beyond its system directories), and how many processes one sandbox may have."""

    shared: tuple[str, ...] = ()
    max_processes: int = DEFAULT_MAX_PROCESSES

    @classmethod
    def resolve(cls, share: Sequence[str] | None, max_processes: int | None) -> SandboxOptions:
        """Arguments given win; the environment variables fill in the rest."""
        source = "share_host_paths"
        if share is None:
            source = ENV_SHARE
            share = [p for p in os.environ.get(ENV_SHARE, "").split(os.pathsep) if p]
        try:
            shared = check_shared(share)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        if max_processes is None:
            raw = os.environ.get(ENV_MAX_PROCESSES, "").strip()
            if raw and not raw.isdigit():
                raise ValueError(
                    f"{ENV_MAX_PROCESSES}={raw!r}: not a whole number; set it to the number "
                    f"of processes one sandbox may have (default {DEFAULT_MAX_PROCESSES})"
                )
            max_processes = int(raw) if raw else DEFAULT_MAX_PROCESSES
        if max_processes < 16:
            raise ValueError(
                f"max_processes={max_processes}: a sandbox needs at least 16 processes "
                f"(its agent, shell and commands); the default is {DEFAULT_MAX_PROCESSES}"
            )
        return cls(shared, max_processes)
