"""One interpreter context: a Python process that keeps its globals between executions.

Protocol (the daemon's, v0.190.0 ``interpreter/repl_worker.py``; reimplemented): one JSON object
per line on stdin, ``{"id", "code", "envs"}``; answers are JSON lines on stdout:
``{"type": "stdout"|"stderr", "text"}`` as output is written (flushed at each newline or 1 KiB),
``{"type": "error", "name", "value", "traceback"}`` for an exception, and finally
``{"type": "control", "text": "completed"|"interrupted"}``. SIGINT interrupts the running code
(state is kept); SIGTERM ends the worker. ``envs`` apply to ``os.environ`` during one execution.
Standard library only.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import traceback
from types import FrameType, TracebackType
from typing import Any

#: Name the code is compiled under; frames with it are the user's.
SOURCE = "<string>"
_FLUSH_AT = 1024

_protocol = sys.__stdout__


def emit(chunk: dict[str, Any]) -> None:
    """Write one answer line."""
    try:
        assert _protocol is not None
        _protocol.write(json.dumps(chunk) + "\n")
        _protocol.flush()
    except (OSError, ValueError) as exc:
        sys.__stderr__ and sys.__stderr__.write(f"repl worker: cannot answer: {exc}\n")


class Emitter(io.TextIOBase):
    """A text stream whose writes become ``stdout``/``stderr`` chunks."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.pending: list[str] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: Any) -> int:
        text = text if isinstance(text, str) else str(text)
        if text:
            self.pending.append(text)
            self.size += len(text)
            if "\n" in text or self.size >= _FLUSH_AT:
                self.flush()
        return len(text)

    def flush(self) -> None:
        if self.pending:
            text = "".join(self.pending)
            self.pending, self.size = [], 0
            emit({"type": self.kind, "text": text})

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


def user_traceback(exc: BaseException) -> str:
    """The traceback as the daemon shows it: only frames of the user's code, named <stdin>."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == SOURCE]
    last = f"{type(exc).__name__}: {exc}\n"
    if not frames:
        return last
    lines = ["Traceback (most recent call last):\n"]
    for frame in frames:
        lines.append(f'  File "<stdin>", line {frame.lineno}\n')
        if frame.line:
            lines.append(f"    {frame.line}\n")
    return "".join([*lines, last])


class Worker:
    """The context's namespace and its execution loop."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        self.stopping = False
        self.running = False  # interrupts only reach user code, never the loop around it
        signal.signal(signal.SIGINT, self._interrupt)
        signal.signal(signal.SIGTERM, self._terminate)

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        if self.running:
            raise KeyboardInterrupt("Execution interrupted")

    def _terminate(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.running:
            raise KeyboardInterrupt("Shutting down")
        sys.exit(0)

    def run_code(self, code: str, envs: dict[str, Any] | None) -> None:
        """Execute `code` in the namespace and answer its chunks and control line."""
        saved = {key: os.environ.get(key) for key in envs or {}}
        for key, value in (envs or {}).items():
            if value is None:
                os.environ.pop(str(key), None)
            else:
                os.environ[str(key)] = str(value)
        out, err = Emitter("stdout"), Emitter("stderr")
        control, error = "completed", None
        old = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            compiled = compile(code, SOURCE, "exec")
            self.running = True
            try:
                exec(compiled, self.namespace)
            finally:
                self.running = False
        except KeyboardInterrupt:
            control = "interrupted"
        except SystemExit:
            pass
        except Exception as exc:
            error = {
                "type": "error",
                "name": type(exc).__name__,
                "value": str(exc),
                "traceback": user_traceback(exc),
            }
        finally:
            sys.stdout, sys.stderr = old
            out.flush()
            err.flush()
            for key, previous in saved.items():
                if previous is None:
                    os.environ.pop(str(key), None)
                else:
                    os.environ[str(key)] = previous
        if error is not None:
            emit(error)
        emit({"type": "control", "text": control})

    def handle(self, line: str) -> None:
        """One request line."""
        try:
            request = json.loads(line)
            envs = request.get("envs")
            if envs is not None and not isinstance(envs, dict):
                raise ValueError("envs must be an object")
            self.run_code(str(request.get("code") or ""), envs)
        except Exception as exc:
            emit({"type": "error", "name": type(exc).__name__, "value": str(exc), "traceback": ""})

    def serve(self) -> None:
        """Answer requests until stdin closes or SIGTERM."""
        while not self.stopping:
            try:
                line = sys.stdin.readline()
                if not line:
                    return
                if line.strip():
                    self.handle(line)
            except KeyboardInterrupt:
                continue


def _no_traceback(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    sys.__stderr__ and sys.__stderr__.write(f"repl worker: {kind.__name__}: {exc}\n")


if __name__ == "__main__":
    sys.excepthook = _no_traceback
    Worker().serve()
