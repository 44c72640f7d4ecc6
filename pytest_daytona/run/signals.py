"""SIGTERM and SIGHUP end a run the way Ctrl-C does, so its sandboxes are released.

CI cancellations, job timeouts, ``timeout``, ``docker stop`` and Kubernetes send SIGTERM;
a closed terminal sends SIGHUP. By default either kills Python on the spot and every sandbox
the run holds is left behind. While pytest runs, both raise `Terminated` (a KeyboardInterrupt)
in the main thread instead, so pytest unwinds, fixtures tear down and the end of the run
releases what is left. While that final release runs, one more SIGINT/SIGTERM/SIGHUP is
announced and ignored; a second one ends the cleanup (the sandboxes' TTL is then the net).
Handlers other code installed are left alone. Where a signal does not exist (Windows has no
SIGHUP), it is left out: the plugin imports and handles the others.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

#: The signals handled like Ctrl-C, those of them this platform has.
HANDLED: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Terminated(KeyboardInterrupt):
    """The run got SIGTERM or SIGHUP."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    raise Terminated(f"pytest-daytona: got {name}, ending the run and releasing its sandboxes")


def install() -> dict[int, Any]:
    """Make SIGTERM and SIGHUP raise `Terminated` where nothing else handles them; returns
    what to give `restore`. Does nothing off the main thread."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in HANDLED:
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, _raise_terminated)
    return previous


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers `install` replaced (only where ours is still in place)."""
    for sig, handler in previous.items():
        if signal.getsignal(sig) is _raise_terminated:
            signal.signal(sig, handler)


@contextlib.contextmanager
def shielded(what: str) -> Iterator[None]:
    """Run the final release: the first signal is announced and ignored, the next one
    interrupts (`Terminated`, or KeyboardInterrupt for SIGINT)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        if len(seen) > 1:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            _raise_terminated(signum, frame)
        name = signal.Signals(signum).name
        sys.stderr.write(
            f"\npytest-daytona: {name} while {what}; finishing that first "
            "(send it again to stop waiting: the sandboxes' TTL will remove them)\n"
        )

    saved: dict[int, Any] = {}
    sig: int
    for sig in (signal.SIGINT, *HANDLED):
        with contextlib.suppress(ValueError, OSError):
            saved[sig] = signal.signal(sig, note)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
