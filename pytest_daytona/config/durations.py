"""One syntax for every time setting: a number alone in the setting's own unit (seconds or
minutes, as each setting always took), or a duration with units: ``30s``, ``15m``, ``2h``,
``1d``, ``1w``, combined (``1h30m``) and with fractions (``1.5h``). Standard library only:
the cleanup command's options and the local server's command line parse with it too."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FORMS", "MINUTES", "SECONDS", "Unit", "is_number", "parse_duration", "to_unit"]

#: Seconds per unit letter.
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
#: The forms every time setting accepts, for messages.
FORMS = "30s, 15m, 2h, 1d, 1w or 1h30m"


@dataclass(frozen=True)
class Unit:
    """The unit a time setting counts in: what a number alone means, and whether only whole
    ones are allowed (the Daytona API takes whole minutes)."""

    name: str  # plural, for messages
    seconds: float
    whole: bool = False


SECONDS = Unit("seconds", 1.0)
MINUTES = Unit("minutes", 60.0, whole=True)


def is_number(text: str) -> bool:
    """Whether `text` is a number alone (no unit): it then means the setting's own unit."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_duration(text: str) -> float:
    """Seconds in a duration with units such as ``90s``, ``30m``, ``2h``, ``1d``, ``1w``,
    ``1h30m`` or ``1.5h`` (case-insensitive; ``0`` alone also means none); `ValueError`
    otherwise, a number alone (other than 0) included: its unit would be a guess."""
    value = text.strip().lower()
    if value == "0":
        return 0.0
    if not _DURATION.fullmatch(value):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * UNITS[unit] for n, unit in _PART.findall(value))


def to_unit(text: str, unit: Unit) -> float | int:
    """A duration with units (`parse_duration`) in `unit`: a whole number for a whole unit;
    `ValueError` with a message for the settings' errors otherwise."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        kind = "a whole number of minutes" if unit.whole else f"a number of {unit.name}"
        raise ValueError(f"must be {kind} or a duration with a unit (s, m, h, d or w)") from None
    amount = round(seconds / unit.seconds, 9)  # 1.1h is 66 minutes, not 66.00000000000001
    if not unit.whole:
        return amount
    if amount != int(amount):
        raise ValueError(
            f"must come to whole {unit.name} ({text.strip()} is {amount:g} {unit.name})"
        )
    return int(amount)
