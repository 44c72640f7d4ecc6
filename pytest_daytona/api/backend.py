"""Where sandboxes come from: one `daytona.Daytona` client per process, pointed at Daytona or at
the embedded local server (started here, in-process, when the local backend needs it)."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import BackendError
from .calls import Caller, Kind
from .deadlines import run_with_deadline

if TYPE_CHECKING:
    from daytona import AsyncDaytona, Daytona, DaytonaConfig

    from ..config.settings import Settings
    from ..local import LocalServer
    from .async_clients import AsyncClients
    from .client import Api

__all__ = ["Backend", "embedded_isolation"]

#: How the embedded server runs sandboxes: under bubblewrap, or as plain local processes.
Isolation = Literal["bubblewrap", "none"]

log = logging.getLogger(__name__)

#: How long the end of a run waits for the SDK's event connection to close.
DISCONNECT_SECONDS = 2.0


@functools.cache
def embedded_isolation() -> Isolation:
    """How the embedded server will isolate sandboxes on this machine: what its ``auto``
    mode chooses (bubblewrap when it is installed and works here), probed once a process.
    Loads no server code: `runner` uses the standard library only."""
    from ..local.sandboxes.runner import choose_bwrap

    return "bubblewrap" if choose_bwrap("auto") is not None else "none"


class Backend:
    """Lazily builds the SDK client (and the local server) the first time a sandbox is needed,
    so a run that uses no sandbox pays neither the SDK import nor a server start.

    `connection` (URL, token) points an xdist worker at the server its controller started;
    `data_dir` keeps the embedded server's sandboxes across runs (for reuse).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        connection: tuple[str, str] | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self._connection = connection
        self._data_dir = data_dir
        self._lock = threading.RLock()
        self._client: Daytona | None = None
        self._server: LocalServer | None = None
        self._async_clients: AsyncClients | None = None
        #: The embedded server's data dir once it started on one that outlives the run
        #: (``reuse``); None while none started, or on a temporary one (removed on stop).
        self.kept_data_dir: Path | None = None
        self.caller = Caller(lambda: self.api_url, lambda: self.kind)

    @property
    def started(self) -> bool:
        """Whether a client exists (a sandbox was asked for)."""
        return self._client is not None

    @property
    def api_url(self) -> str | None:
        """The URL sandboxes are requested from (None: the SDK's default)."""
        if self._connection is not None:
            return self._connection[0]
        if self._server is not None:
            return self._server.api_url
        return self.settings.api_url

    @property
    def server(self) -> LocalServer | None:
        """The embedded server this process started, if any."""
        return self._server

    @property
    def embedded(self) -> bool:
        """Whether sandboxes come from an embedded server of this run."""
        return self.settings.backend == "local" and self.settings.api_url is None

    @property
    def kind(self) -> Kind:
        """Daytona's API, the embedded server, or a local server at a given URL (messages
        name it)."""
        if self.settings.backend != "local":
            return "daytona"
        return "embedded" if self.embedded else "served"

    def isolation(self) -> Isolation | None:
        """The embedded server's isolation: the started server's, else the one it will
        choose; None off the embedded backend (a served one's is its own)."""
        if not self.embedded:
            return None
        server = self._server
        if server is not None:
            return "bubblewrap" if server.isolated else "none"
        return embedded_isolation()

    def connection(self) -> tuple[str, str]:
        """URL and token of the embedded server, started now if need be (for xdist workers)."""
        with self._lock:
            if self._connection is None:
                server = self._start_server()
                self._connection = (server.api_url, server.token)
            return self._connection

    def _start_server(self) -> LocalServer:
        if self._server is None:
            from ..local import DataDirBusyError, LocalServer

            try:
                self._server = LocalServer(self._data_dir).start()
                self.kept_data_dir = self._data_dir
            except DataDirBusyError as exc:
                warnings.warn(
                    f"pytest-daytona: {exc}; this run keeps no sandbox after it ends", stacklevel=2
                )
                self._server = LocalServer().start()
        return self._server

    def client(self) -> Daytona:
        """The one SDK client of this process."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def warm_up(self) -> None:
        """Import the SDK and build the client now (meant for a background thread, started
        as soon as collection shows a sandbox will be needed); a failure is left for the
        first real use to report."""
        try:
            self.client()
        except Exception as exc:
            log.debug("pytest-daytona: building the SDK client ahead failed: %s", exc)

    def api(self) -> Api:
        """The client with the `Caller` that gives each call a deadline and retries."""
        from .client import Api

        return Api(self.client(), self.caller)

    def _connect(self) -> Daytona:
        from daytona import Daytona

        return Daytona(self.config())

    async def async_client(self) -> AsyncDaytona:
        """The `AsyncDaytona` client of the running event loop (one per loop, made on first
        use in it; see `async_clients`)."""
        with self._lock:
            if self._async_clients is None:
                from .async_clients import AsyncClients

                self._async_clients = AsyncClients(self.config)
            clients = self._async_clients
        return await clients.get()

    def config(self) -> DaytonaConfig:
        """The SDK configuration both clients are built from (starts the embedded server
        if this run needs one)."""
        settings = self.settings
        api_url, api_key = settings.api_url, settings.api_key
        key = api_key.get_secret_value() if api_key is not None else None
        if self._connection is not None or self.embedded:
            api_url, key = self.connection()
        elif settings.backend == "local" and key is None:
            raise BackendError(
                f"--daytona-backend local with --daytona-api-url {api_url} needs that server's "
                "token as the API key: set DAYTONA_API_KEY to the value `pytest-daytona serve` "
                "printed (or leave out --daytona-api-url to start an embedded server)"
            )
        else:
            from ..config.settings import missing_api_key_message

            missing = missing_api_key_message(settings)
            if missing is not None:
                raise BackendError(missing)
        from daytona import DaytonaConfig

        return DaytonaConfig(api_key=key, api_url=api_url, target=settings.target)

    def close(self) -> None:
        """Close the client's event connection and stop the embedded server (idempotent)."""
        with self._lock:
            client, self._client = self._client, None
            server, self._server = self._server, None
        if client is not None:
            dispatcher = getattr(client, "_event_dispatcher", None)
            if dispatcher is not None:
                # The sync SDK has no public close; its disconnect can trip over a connect
                # that is still under way, and can wait out a Socket.IO ping timeout (~30 s)
                # in python-engineio: neither may fail or hold up the run's end.
                with contextlib.suppress(Exception):
                    run_with_deadline(dispatcher.disconnect, DISCONNECT_SECONDS)
        if server is not None:
            server.stop()
