"""``interp.*``: the code interpreter's contexts, each a persistent Python worker process.

As the daemon (v0.190.0 ``apps/daemon/pkg/toolbox/process/interpreter``): a context is a
``repl_worker.py`` process started with ``python3`` in the context's cwd; executions in one
context run one at a time, in order. A timeout sends SIGINT, then kills the worker after a
2 s grace; the answer's close code is 4008 in both cases. A worker that ended is restarted (with
fresh state) by the next execution. The ``default`` context starts on first use.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import queue
import shutil
import signal
import subprocess
import threading
import time
import uuid
from typing import IO, Any

from . import procs
from .coderun import SCRIPTS
from .ops import WORK_DIR, OpError, Request, op
from .process import start_error

DEFAULT = "default"
#: Seconds a worker gets to stop after SIGINT (timeout) or SIGTERM (delete) before SIGKILL.
GRACE = 2.0
#: Default execution timeout (seconds): the daemon's 10 minutes.
DEFAULT_TIMEOUT = 600
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_INTERNAL, CLOSE_TIMEOUT = (
    1000,
    1001,
    1008,
    1011,
    4008,
)

Chunk = dict[str, Any]


def _python(env: dict[str, str]) -> str:
    for name in ("python3", "python"):
        if shutil.which(name, path=env.get("PATH")):
            return name
    return "python3"


class Context:
    """One interpreter context and its worker process."""

    def __init__(self, context_id: str, cwd: str, env: dict[str, str]) -> None:
        self.id = context_id
        self.cwd = cwd
        self.env = env
        now = datetime.datetime.now(datetime.timezone.utc)
        self.created_at = now.isoformat().replace("+00:00", "Z")
        self.proc: subprocess.Popen[bytes] | None = None
        self.chunks: queue.Queue[Chunk | None] = queue.Queue()
        self.turn = threading.Lock()

    @property
    def active(self) -> bool:
        """Whether the worker is running."""
        return self.proc is not None and self.proc.poll() is None

    def info(self) -> dict[str, Any]:
        """The context as the API shows it (``InterpreterContext``)."""
        return {
            "id": self.id,
            "cwd": self.cwd,
            "createdAt": self.created_at,
            "active": self.active,
            "language": "python",
        }

    def start(self) -> None:
        """Start the worker (fresh state); OpError 500 when it cannot start."""
        argv = [_python(self.env), f"{SCRIPTS}/repl_worker.py"]
        try:
            proc = procs.popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=self.cwd,
                env=self.env,
            )
        except OSError as exc:
            raise OpError(
                500,
                f"failed to start context: {start_error(exc, self.cwd)}",
                "INTERNAL_SERVER_ERROR",
            ) from None
        self.chunks = queue.Queue()
        self.proc = proc
        threading.Thread(target=self._read, args=(proc, self.chunks), daemon=True).start()

    @staticmethod
    def _read(proc: subprocess.Popen[bytes], chunks: queue.Queue[Chunk | None]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            # Lines that are not JSON (a child process writing to the worker's stdout) are
            # dropped, as the daemon drops them.
            with contextlib.suppress(ValueError):
                chunk = json.loads(line)
                if isinstance(chunk, dict):
                    chunks.put(chunk)
        proc.wait()
        procs.forget(proc)
        chunks.put(None)

    def _send(self, line: bytes) -> bool:
        stdin: IO[bytes] | None = self.proc.stdin if self.proc is not None else None
        try:
            assert stdin is not None
            stdin.write(line)
            stdin.flush()
        except (OSError, AssertionError):
            return False
        return True

    def signal(self, sig: int) -> None:
        """Signal the worker process (not its children)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the worker's process group."""
        if self.proc is not None:
            procs.kill_group(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of the whole group after the grace."""
        proc = self.proc
        if proc is None:
            return
        self.signal(signal.SIGTERM)
        try:
            proc.wait(GRACE)
        except subprocess.TimeoutExpired:
            self.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(GRACE)

    def execute(self, req: Request, code: str, envs: Any, timeout: float) -> tuple[int, str]:
        """Run `code`, streaming each chunk; the close code and reason for the client."""
        with self.turn:
            if not self.active:
                self.start()
            command = {"id": str(uuid.uuid4()), "code": code, "envs": envs}
            if not self._send((json.dumps(command) + "\n").encode()):
                return CLOSE_INTERNAL, "failed to send code to the interpreter"
            deadline = time.monotonic() + timeout if timeout > 0 else None
            interrupted = False
            while True:
                wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                try:
                    chunk = self.chunks.get(timeout=wait)
                except queue.Empty:
                    if interrupted:  # the grace is over: the worker is killed
                        self.kill()
                        return CLOSE_TIMEOUT, ""
                    interrupted = True
                    self.signal(signal.SIGINT)
                    deadline = time.monotonic() + GRACE
                    continue
                if chunk is None:
                    return CLOSE_GOING_AWAY, "worker process ended"
                req.stream({"chunk": _output(chunk)})
                if chunk.get("type") == "control":
                    if chunk.get("text") == "interrupted":
                        return CLOSE_TIMEOUT, ""
                    return CLOSE_NORMAL, ""


def _output(chunk: Chunk) -> dict[str, str]:
    """A worker chunk as the daemon sends it to the client: all five fields, strings."""
    fields = ("type", "text", "name", "value", "traceback")
    return {key: v if isinstance(v := chunk.get(key), str) else "" for key in fields}


_lock = threading.Lock()
_contexts: dict[str, Context] = {}


def _context(context_id: str) -> Context | None:
    with _lock:
        return _contexts.get(context_id)


@op("interp.create")
def create(req: Request) -> dict[str, Any]:
    """Start a new context in ``cwd`` (the work dir by default); python only."""
    language = req.params.get("language") or "python"
    if language != "python":
        message = f"unsupported language: {language} (only 'python' is supported currently)"
        raise OpError(400, message, "BAD_REQUEST")
    context = Context(str(uuid.uuid4()), str(req.params.get("cwd") or WORK_DIR), req.env())
    context.start()
    with _lock:
        _contexts[context.id] = context
    return context.info()


@op("interp.list")
def list_contexts(req: Request) -> dict[str, Any]:
    """Every context but the default one."""
    with _lock:
        found = [c.info() for c in _contexts.values() if c.id != DEFAULT]
    return {"contexts": found}


@op("interp.delete")
def delete(req: Request) -> dict[str, Any]:
    """Stop a context's worker and forget it; the default context cannot be deleted."""
    context_id = str(req.params.get("id") or "")
    if context_id == DEFAULT:
        raise OpError(400, "cannot delete default context", "BAD_REQUEST")
    with _lock:
        context = _contexts.pop(context_id, None)
    if context is None:
        raise OpError(404, f"context with ID '{context_id}' not found", "NOT_FOUND")
    context.stop()
    return {"message": "Context deleted successfully"}


@op("interp.execute")
def execute(req: Request) -> dict[str, Any]:
    """Run ``code`` in context ``contextId`` (default when absent); every chunk is streamed as
    ``{"chunk": {...}}``; the final answer is the WebSocket close ``{"code", "reason"}``."""
    code = req.params.get("code")
    timeout = req.params.get("timeout")
    if not isinstance(code, str) or not code:
        return {"code": CLOSE_POLICY, "reason": "code is required"}
    if timeout is None:
        timeout = DEFAULT_TIMEOUT
    if not isinstance(timeout, int | float) or timeout < 0:
        return {"code": CLOSE_POLICY, "reason": "timeout must be greater than or equal to 0"}
    context_id = req.params.get("contextId")
    if context_id is None:
        with _lock:
            context = _contexts.get(DEFAULT)
            if context is None:
                context = _contexts[DEFAULT] = Context(DEFAULT, WORK_DIR, req.env())
    else:
        found = _context(str(context_id))
        if found is None:
            return {"code": CLOSE_POLICY, "reason": f"context not found: {context_id}"}
        context = found
    try:
        close, reason = context.execute(req, code, req.params.get("envs"), float(timeout))
    except OpError as exc:
        return {"code": CLOSE_INTERNAL, "reason": exc.message}
    return {"code": close, "reason": reason}
