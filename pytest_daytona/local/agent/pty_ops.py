"""``pty.*``: interactive terminal sessions (a login shell on a pseudo-terminal).

As the daemon (v0.190.0 ``apps/daemon/pkg/toolbox/process/pty``): the sandbox's shell runs as
``<shell> -i -l`` on its own terminal with ``TERM=xterm-256color`` unless given; any number of
clients attach and get the output from then on; input from any of them goes to the terminal.
When the shell ends (or is killed: exit code 137) the session is gone.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import queue
import signal
import struct
import subprocess
import termios
import threading
from typing import Any

from . import procs
from .ops import WORK_DIR, OpError, Request, op
from .process import shell, start_error

MAX_SIZE = 1000
Event = bytes | int | None  # output, the exit code, or "detached"


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def exit_code(returncode: int) -> int:
    """A shell's status as the daemon reports it: 128 + signal for a killed shell."""
    return 128 - returncode if returncode < 0 else returncode


class Session:
    """One terminal, its shell and the clients attached to it."""

    def __init__(self, session_id: str, cwd: str, envs: dict[str, str], cols: int, rows: int):
        self.id, self.cwd, self.envs, self.cols, self.rows = session_id, cwd, envs, cols, rows
        now = datetime.datetime.now(datetime.timezone.utc)
        self.created_at = now.isoformat().replace("+00:00", "Z")
        self.master = -1
        self.proc: subprocess.Popen[bytes] | None = None
        self.clients: dict[str, queue.Queue[Event]] = {}
        self.lock = threading.Lock()
        self.exit: int | None = None

    def info(self) -> dict[str, Any]:
        """``PtySessionInfo``."""
        return {
            "id": self.id,
            "cwd": self.cwd,
            "envs": self.envs,
            "cols": self.cols,
            "rows": self.rows,
            "createdAt": self.created_at,
            "active": self.exit is None and self.proc is not None,
            "lazyStart": False,
        }

    def start(self, env: dict[str, str]) -> None:
        """Start the login shell on a new terminal."""
        master, slave = os.openpty()
        _set_size(master, self.cols, self.rows)

        def controlling_tty() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        try:
            self.proc = subprocess.Popen(
                [shell(), "-i", "-l"],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=self.cwd,
                env={**env, **self.envs},
                start_new_session=True,
                preexec_fn=controlling_tty,
            )
        except OSError as exc:
            os.close(master)
            raise OpError(
                500, f"failed to start PTY session: {start_error(exc, self.cwd)}"
            ) from None
        finally:
            os.close(slave)
        procs.track(self.proc)
        self.master = master
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            if not data:
                break
            self._broadcast(data)
        assert self.proc is not None
        code = exit_code(self.proc.wait())
        procs.forget(self.proc)
        os.close(self.master)
        with _lock:
            if _sessions.get(self.id) is self:
                del _sessions[self.id]
        with self.lock:
            self.exit = code
        self._broadcast(code)

    def _broadcast(self, event: Event) -> None:
        with self.lock:
            for client in self.clients.values():
                client.put(event)

    def write(self, data: bytes) -> None:
        """Send input to the terminal."""
        with contextlib.suppress(OSError):
            os.write(self.master, data)

    def resize(self, cols: int, rows: int) -> None:
        """Change the terminal's size (the shell gets SIGWINCH)."""
        _set_size(self.master, cols, rows)
        self.cols, self.rows = cols, rows

    def kill(self) -> None:
        """SIGKILL the shell and everything in its session."""
        if self.proc is not None:
            procs.kill_group(self.proc.pid, signal.SIGKILL)


_lock = threading.Lock()
_sessions: dict[str, Session] = {}


def _session(session_id: str, status: int = 404) -> Session:
    with _lock:
        found = _sessions.get(session_id)
    if found is None:
        raise OpError(status, "PTY session not found", "NOT_FOUND" if status == 404 else "GONE")
    return found


def _size(value: Any, default: int, name: str) -> int:
    size = default if value is None else int(value)
    if size > MAX_SIZE:
        raise OpError(400, f"invalid value for {name} - must be less than 1000", "BAD_REQUEST")
    return size


@op("pty.create")
def create(req: Request) -> dict[str, Any]:
    """Start session ``id`` (409 when it exists) in ``cwd`` with ``envs``, ``cols`` x ``rows``."""
    session_id = str(req.params.get("id") or "")
    if not session_id:
        raise OpError(400, "session ID is required", "BAD_REQUEST")
    envs = {str(k): str(v) for k, v in (req.params.get("envs") or {}).items()}
    envs["TERM"] = envs.get("TERM") or "xterm-256color"
    cols = _size(req.params.get("cols"), 80, "cols")
    rows = _size(req.params.get("rows"), 24, "rows")
    session = Session(session_id, str(req.params.get("cwd") or WORK_DIR), envs, cols, rows)
    with _lock:
        if session_id in _sessions:
            raise OpError(409, f"PTY session with ID '{session_id}' already exists", "CONFLICT")
        _sessions[session_id] = session
    try:
        session.start(req.env())
    except OpError:
        with _lock:
            _sessions.pop(session_id, None)
        raise
    return {"sessionId": session_id}


@op("pty.attach")
def attach(req: Request) -> dict[str, Any]:
    """Stream the terminal's output (payloads) to client ``client`` after ``{"status":
    "connected"}``, until the shell exits (``{"exitCode"}``) or the client detaches."""
    session = _session(str(req.params.get("id") or ""))
    client: queue.Queue[Event] = queue.Queue()
    with session.lock:
        if session.exit is not None:
            return {"exitCode": session.exit}
        session.clients[str(req.params.get("client"))] = client
    req.stream({"status": "connected"})
    try:
        while True:
            event = client.get()
            if event is None:
                return {"detached": True}
            if isinstance(event, int):
                return {"exitCode": event}
            req.stream({}, event)
    finally:
        with session.lock:
            session.clients.pop(str(req.params.get("client")), None)


@op("pty.detach")
def detach(req: Request) -> dict[str, Any]:
    """End client ``client``'s attach call."""
    with _lock:
        session = _sessions.get(str(req.params.get("id") or ""))
    if session is not None:
        with session.lock:
            client = session.clients.get(str(req.params.get("client")))
        if client is not None:
            client.put(None)
    return {}


@op("pty.input")
def send_input(req: Request) -> dict[str, Any]:
    """Write the payload to the terminal (410 once the session is gone)."""
    _session(str(req.params.get("id") or ""), status=410).write(req.payload)
    return {}


@op("pty.list")
def list_sessions(req: Request) -> dict[str, Any]:
    """``{"sessions": [PtySessionInfo]}``."""
    with _lock:
        return {"sessions": [s.info() for s in _sessions.values()]}


@op("pty.get")
def get(req: Request) -> dict[str, Any]:
    """One session's info; 404 when unknown."""
    return _session(str(req.params.get("id") or "")).info()


@op("pty.kill")
def kill(req: Request) -> dict[str, Any]:
    """Kill the session's shell and forget the session."""
    session_id = str(req.params.get("id") or "")
    with _lock:
        session = _sessions.pop(session_id, None)
    if session is None:
        raise OpError(404, "PTY session not found", "NOT_FOUND")
    session.kill()
    return {"message": "PTY session deleted"}


@op("pty.resize")
def resize(req: Request) -> dict[str, Any]:
    """Resize the terminal (410 when the session is gone); the updated info."""
    cols = _size(req.params.get("cols"), 80, "cols")
    rows = _size(req.params.get("rows"), 24, "rows")
    if cols < 1 or rows < 1:
        raise OpError(400, "cols and rows must be at least 1", "BAD_REQUEST")
    session = _session(str(req.params.get("id") or ""), status=410)
    session.resize(cols, rows)
    return session.info()
