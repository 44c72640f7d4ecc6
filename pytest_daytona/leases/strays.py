"""Creates that may still complete after the plugin gave up on them, and their deletion.

A create whose answer was lost (a gateway timeout, a dropped connection, a missed deadline)
may still complete on the server. Its attempt name is watched: looked up now, again every
few seconds in the background until the end of the run, and once more at the end after a
short settling window. A sandbox that appears under a watched name is deleted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config.settings import Settings
from ..errors import BackendCallError
from . import lease

if TYPE_CHECKING:
    from daytona import Sandbox

    from ..api.client import Api

log = logging.getLogger(__name__)

#: Seconds between background lookups of the watched names.
POLL_SECONDS = 2.0
#: How long after a name was first watched the end of the run still waits for it to appear.
SETTLE_SECONDS = 3.0


class Strays:
    """The names of this process's create attempts that may still turn into sandboxes."""

    def __init__(self, api: Callable[[], Api], settings: Settings) -> None:
        self._api = api
        self._settings = settings.model_copy(update={"retry_budget": 0.0})
        self._watched: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.deleted: list[str] = []

    @property
    def watched(self) -> list[str]:
        """Names still watched."""
        with self._lock:
            return list(self._watched)

    def watch(self, name: str) -> None:
        """Keep looking for `name` until the end of the run."""
        with self._lock:
            self._watched.setdefault(name, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._poll, name="pytest-daytona-strays", daemon=True
                )
                self._thread.start()

    def check(self, name: str) -> bool:
        """Look `name` up once; delete the sandbox if it is there. True when it was."""
        try:
            if not lease.destroy_by_id(self._api(), self._settings, name):
                return False
        except BackendCallError as exc:
            log.info("pytest-daytona: looking for stray %s: %s", name, exc)
            return False
        self._forget(name)
        return True

    def delete_late(self, sandbox: Sandbox) -> None:
        """Delete a sandbox whose create completed after nobody waited for it any more."""
        try:
            lease.destroy(self._api(), sandbox, self._settings)
        except BackendCallError:
            self.watch(str(sandbox.name))
            return
        self._forget(str(sandbox.name))

    def _forget(self, name: str) -> None:
        with self._lock:
            if self._watched.pop(name, None) is not None:
                self.deleted.append(name)

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            for name in self.watched:
                self.check(name)

    def finish(self) -> list[str]:
        """End of the run: stop polling, give each watched name its settling window, delete
        what appeared. Returns the names that never turned into a sandbox."""
        self._stop.set()
        while True:
            with self._lock:
                pending = dict(self._watched)
            for name in pending:
                self.check(name)
            if not self.watched or time.monotonic() >= max(pending.values()) + SETTLE_SECONDS:
                return self.watched
            time.sleep(0.5)
