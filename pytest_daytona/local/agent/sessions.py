"""``sessions.*``: the toolbox's process sessions, as Daytona's daemon keeps them.

A session is a long-lived shell (see `shellsession`); the daemon's answers and messages are
kept (``not found: session not found``, ``conflict: session already exists``, ...). The
``entrypoint`` session runs the sandbox's entrypoint and refuses create, exec, input and delete.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
import uuid
from typing import BinaryIO

from .ops import OpError, Request, op
from .process import shell
from .shellsession import STDOUT_MARK, Command, Session, session_ended

ENTRYPOINT = "entrypoint"
ENTRYPOINT_COMMAND = "entrypoint_command"
#: The default entrypoint; it needs no process (it never writes, reads or ends).
IDLE_ENTRYPOINT = ["sleep", "infinity"]
#: Seconds input waits for a command that has not opened its stdin yet.
INPUT_WAIT = 10.0

_lock = threading.Lock()
_sessions: dict[str, Session] = {}
_follows: dict[str, threading.Event] = {}
_entrypoint_lock = threading.Lock()


def _session(params: dict[str, object]) -> Session:
    with _lock:
        session = _sessions.get(str(params.get("session_id") or ""))
    if session is None:
        raise OpError(404, "not found: session not found", "NOT_FOUND")
    return session


def _command(params: dict[str, object]) -> tuple[Session, Command]:
    session = _session(params)
    command = session.commands.get(str(params.get("command_id") or ""))
    if command is None:
        raise OpError(404, "not found: command not found", "NOT_FOUND")
    return session, command


def _refuse_entrypoint(params: dict[str, object], message: str) -> None:
    if params.get("session_id") == ENTRYPOINT:
        raise OpError(400, f"bad request: {message}", "BAD_REQUEST")


def _add(session_id: str, env: dict[str, str], shell_path: str | None) -> Session:
    with _lock:
        if session_id in _sessions:
            raise OpError(409, "conflict: session already exists", "CONFLICT")
        session = Session(session_id, env, shell_path)
        _sessions[session_id] = session
    return session


def _view(session: Session) -> dict[str, object]:
    return {"sessionId": session.id, "commands": [c.as_dict() for c in session.commands.values()]}


@op("sessions.create")
def create(req: Request) -> dict[str, object]:
    """A new session: a shell of the sandbox's shell, started in the work dir with its env."""
    session_id = str(req.params.get("session_id") or "")
    if not session_id:
        raise OpError(400, "invalid body request: sessionId is required", "INVALID_REQUEST_BODY")
    _refuse_entrypoint(
        req.params, "provided session ID is reserved and cannot be created/overridden"
    )
    _add(session_id, req.env(), shell())
    return {}


@op("sessions.list")
def list_sessions(req: Request) -> dict[str, object]:
    """Every session but the entrypoint's, in creation order."""
    with _lock:
        sessions = [s for s in _sessions.values() if s.id != ENTRYPOINT]
    return {"sessions": [_view(s) for s in sessions]}


@op("sessions.get")
def get(req: Request) -> dict[str, object]:
    """One session and its commands."""
    return _view(_session(req.params))


@op("sessions.command")
def get_command(req: Request) -> dict[str, object]:
    """One command of a session (``exitCode`` once it ended)."""
    return _command(req.params)[1].as_dict()


@op("sessions.delete")
def delete(req: Request) -> dict[str, object]:
    """End the session's shell and every process of its group, then forget it."""
    _refuse_entrypoint(req.params, "can't delete entrypoint session")
    session = _session(req.params)
    session.terminate()
    with _lock:
        if _sessions.get(session.id) is session:
            del _sessions[session.id]
    return {}


@op("sessions.execute")
def execute(req: Request) -> dict[str, object] | tuple[dict[str, object], bytes]:
    """Run ``command`` in the session; sync answers carry the log as payload."""
    _refuse_entrypoint(req.params, "can't execute command in entrypoint session")
    text = str(req.params.get("command") or "")
    if not text.strip():
        raise OpError(400, "command cannot be empty", "BAD_REQUEST")
    session = _session(req.params)
    command = Command(
        session.dir,
        str(req.params.get("command_id") or uuid.uuid4()),
        text,
        echo_input=not req.params.get("suppress_input_echo"),
    )
    run_async = bool(req.params.get("run_async"))
    session.start(command, run_async)
    if run_async:
        return {"cmdId": command.id}
    code = session.wait(command)
    return {"cmdId": command.id, "exitCode": code}, command.log()


@op("sessions.logs")
def logs(req: Request) -> tuple[dict[str, object], bytes]:
    """The command's log. With ``stream``: a first ``ready`` answer, then the log in chunks,
    following it (``follow``) until the command ends, the session goes or ``sessions.unfollow``
    with the same ``follow_id``."""
    session, command = _command(req.params)
    if not req.params.get("stream"):
        return {}, command.log()
    stop = threading.Event()
    follow_id = str(req.params.get("follow_id") or uuid.uuid4())
    with _lock:
        _follows[follow_id] = stop
    try:
        with command.open_log() as fh:
            req.stream({"ready": True})
            _pour(req, fh, session, command, stop, bool(req.params.get("follow")))
    finally:
        with _lock:
            _follows.pop(follow_id, None)
    return {"end": True}, b""


def _pour(
    req: Request,
    fh: BinaryIO,
    session: Session,
    command: Command,
    stop: threading.Event,
    follow: bool,
) -> None:
    ended = False
    while not stop.is_set():
        chunk = fh.read(1 << 16)
        if chunk:
            req.stream({}, chunk)
            continue
        if not follow or ended or session.deleted:
            return
        # The exit code is written after the labellers flushed: one more read gets the rest.
        ended = command.finished() is not None or not session.alive()
        if not ended:
            stop.wait(0.02)


@op("sessions.unfollow")
def unfollow(req: Request) -> dict[str, object]:
    """Stop a ``sessions.logs`` stream whose client went away."""
    with _lock:
        stop = _follows.get(str(req.params.get("follow_id") or ""))
    if stop is not None:
        stop.set()
    return {}


@op("sessions.input")
def send_input(req: Request) -> dict[str, object]:
    """Write ``data`` (newline added) to a running command's stdin; echoed into its log as
    stdout unless the command was started with ``suppress_input_echo``."""
    _refuse_entrypoint(req.params, "can't send input to entrypoint session")
    session = _session(req.params)
    if not session.alive():
        raise session_ended()
    _, command = _command(req.params)
    data = str(req.params.get("data") or "")
    if not data.endswith("\n"):
        data += "\n"
    fd = _open_input(session, command)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        os.write(fd, data.encode())
    except OSError as exc:
        raise OpError(500, f"internal server error: failed to write to input pipe: {exc}") from None
    finally:
        os.close(fd)
    if command.echo_input:
        with contextlib.suppress(OSError), open(command.log_path, "ab") as log:
            log.write(STDOUT_MARK + data.encode())
    return {}


def _completed(command: Command) -> OpError | None:
    code = command.finished()
    if code is None:
        return None
    return OpError(
        410,
        f"gone: command has already completed with exit code {code}",
        "COMMAND_ALREADY_COMPLETED",
    )


def _open_input(session: Session, command: Command) -> int:
    """The command's stdin FIFO opened for writing, once the command reads it."""
    deadline = time.monotonic() + INPUT_WAIT
    while True:
        done = _completed(command)
        if done is not None:
            raise done
        try:
            return os.open(command.input_path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno not in (errno.ENXIO, errno.ENOENT) or time.monotonic() > deadline:
                raise OpError(
                    500, f"internal server error: failed to open input pipe: {exc}"
                ) from None
            if not session.alive():
                raise session_ended() from None
        time.sleep(0.01)


@op("sessions.entrypoint")
def entrypoint(req: Request) -> dict[str, object]:
    """Start the ``entrypoint`` session with ``argv`` (each word single-quoted, as the daemon
    joins them) as its async command; once per agent."""
    argv = [str(word) for word in req.params.get("argv") or IDLE_ENTRYPOINT]
    with _entrypoint_lock:
        with _lock:
            if ENTRYPOINT in _sessions:
                return {}
        text = " ".join("'" + word.replace("'", "'\\''") + "'" for word in argv)
        idle = argv == IDLE_ENTRYPOINT
        session = _add(ENTRYPOINT, req.env(), None if idle else shell())
        command = Command(session.dir, ENTRYPOINT_COMMAND, text, echo_input=False, idle=idle)
        if idle:
            session.commands[command.id] = command
        else:
            session.start(command, run_async=True)
    return {}
