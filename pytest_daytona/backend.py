"""Where sandboxes come from: one `daytona.Daytona` client per process, pointed at Daytona or at
the embedded local server (started here, in-process, when the local backend needs it)."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from .settings import Settings, missing_api_key_message

if TYPE_CHECKING:
    from daytona import Daytona

    from .local import LocalServer

log = logging.getLogger(__name__)


class BackendError(Exception):
    """No sandbox can be had with these settings (e.g. no API key for the daytona backend)."""


class Backend:
    """Lazily builds the SDK client (and the local server) the first time a sandbox is needed,
    so a run that uses no sandbox pays neither the SDK import nor a server start."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client: Daytona | None = None
        self._server: LocalServer | None = None

    @property
    def started(self) -> bool:
        """Whether a client exists (a sandbox was asked for)."""
        return self._client is not None

    @property
    def api_url(self) -> str | None:
        """The URL sandboxes are requested from (None: the SDK's default, not yet resolved)."""
        if self._server is not None:
            return self._server.api_url
        return self.settings.api_url

    @property
    def server(self) -> LocalServer | None:
        """The embedded server this process started, if any."""
        return self._server

    def client(self) -> Daytona:
        """The one SDK client of this process."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Daytona:
        settings = self.settings
        api_url, api_key = settings.api_url, settings.api_key
        key = api_key.get_secret_value() if api_key is not None else None
        if settings.backend == "local" and api_url is None:
            from .local import LocalServer

            self._server = LocalServer().start()
            api_url, key = self._server.api_url, self._server.token
        elif settings.backend == "local" and key is None:
            raise BackendError(
                f"--daytona-backend local with --daytona-api-url {api_url} needs that server's "
                "token as the API key: set DAYTONA_API_KEY to the value `pytest-daytona serve` "
                "printed (or leave out --daytona-api-url to start an embedded server)"
            )
        else:
            missing = missing_api_key_message(settings)
            if missing is not None:
                raise BackendError(missing)
        from daytona import Daytona, DaytonaConfig

        return Daytona(DaytonaConfig(api_key=key, api_url=api_url, target=settings.target))

    def close(self) -> None:
        """Close the client's event connection and stop the embedded server (idempotent)."""
        with self._lock:
            client, self._client = self._client, None
            server, self._server = self._server, None
        if client is not None:
            dispatcher = getattr(client, "_event_dispatcher", None)
            if dispatcher is not None:
                # The sync SDK has no public close; its disconnect can trip over a connect
                # that is still under way, which must not fail the run's teardown.
                with contextlib.suppress(Exception):
                    dispatcher.disconnect()
        if server is not None:
            server.stop()
