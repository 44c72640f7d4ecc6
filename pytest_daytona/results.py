"""What a command did in a sandbox (`ExecResult`); `check()` raises `errors.CommandError`."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .errors import CommandError

__all__ = ["ExecResult"]

#: Decimals of a duration in a repr (milliseconds); the value itself stays exact.
REPR_DECIMALS = 3


def rounded_repr(record: object) -> str:
    """The dataclass repr of `record`, with its ``duration`` rounded to milliseconds (a
    ``duration=0.010182824000366963`` only makes a failure message harder to read)."""
    parts = []
    for spec in fields(record):  # type: ignore[arg-type]
        if not spec.repr:
            continue
        value = getattr(record, spec.name)
        if spec.name == "duration" and isinstance(value, float):
            value = round(value, REPR_DECIMALS)
        parts.append(f"{spec.name}={value!r}")
    return f"{type(record).__qualname__}({', '.join(parts)})"


@dataclass(frozen=True, repr=False)
class ExecResult:
    """What one command did in a sandbox (its repr rounds `duration` to milliseconds)."""

    exit_code: int | None  # None when the command timed out
    stdout: str
    stderr: str
    timed_out: bool
    duration: float  # seconds
    command: str  # as shell text, for messages

    def __post_init__(self) -> None:
        if self.timed_out and self.exit_code is not None:
            raise ValueError("a command that timed out has no exit code")

    def __repr__(self) -> str:
        return rounded_repr(self)

    @property
    def ok(self) -> bool:
        """Whether the command exited 0 in time."""
        return self.exit_code == 0 and not self.timed_out

    def check(self) -> ExecResult:
        """Return self if the command succeeded, else raise `CommandError`."""
        __tracebackhide__ = True
        if not self.ok:
            raise CommandError(self)
        return self
