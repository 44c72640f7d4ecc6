"""Where a sandbox's files live on the host and how the sandbox sees them."""

from __future__ import annotations

from pathlib import Path

#: In-sandbox home (and work dir) when commands run under bubblewrap.
SANDBOX_HOME = "/home/daytona"


class SandboxPaths:
    """One sandbox's home and tmp on the host, and its work dir as the sandbox sees it.

    With bubblewrap (`isolated`) the sandbox sees its whole own view (``/home/daytona`` and
    ``/tmp`` its own, the host read-only) and file calls reach all of it, as the daemon
    does in a container. Without it the agent is a host process: file calls are confined
    to `home` and `tmp`, and the work dir is the host path of `home`.
    """

    def __init__(
        self,
        home: Path,
        tmp: Path,
        *,
        isolated: bool,
        work_dir: str | None = None,
        user_home: str | None = None,
    ) -> None:
        self.home = home
        self.tmp = tmp
        self.isolated = isolated
        self.work_dir = work_dir or (SANDBOX_HOME if isolated else str(home))
        #: The user's home as the sandbox sees it (an image's user may have another).
        self.user_home = user_home or self.work_dir

    def confine(self) -> list[str] | None:
        """Host directories file calls must stay in; None under bubblewrap."""
        return None if self.isolated else [str(self.home), str(self.tmp)]
