"""Tests that depend on what the installed `daytona` SDK offers.

pyproject.toml allows a range of SDK releases and CI runs the whole suite at both ends of it
(.ci/sdk-range). A test that needs an SDK feature newer than the range's lower bound says so
with `requires_sdk`, which skips it, naming the feature, only under an older SDK.
"""

from __future__ import annotations

import importlib.metadata

import pytest


def _parse(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3])


SDK_VERSION = importlib.metadata.version("daytona")


def sdk_at_least(version: str) -> bool:
    """Whether the installed daytona SDK is `version` or newer."""
    return _parse(SDK_VERSION) >= _parse(version)


def requires_sdk(version: str, reason: str) -> pytest.MarkDecorator:
    """Skip the test under a daytona SDK older than `version`; `reason` names the SDK API
    the test needs and the release it appeared in."""
    return pytest.mark.skipif(
        not sdk_at_least(version), reason=f"{reason} (installed: daytona {SDK_VERSION})"
    )


def volume_error(daytona_error: type[Exception]) -> type[Exception]:
    """What the SDK raises for a failed `Daytona.volume` call answered with `daytona_error`'s
    status: that class from daytona 0.207.1 on; before it, VolumeService let the API client's
    exception for the same status through unwrapped (its message still holds the body)."""
    if sdk_at_least("0.207.1"):
        return daytona_error
    import daytona
    from daytona_api_client import exceptions

    raw: dict[type[Exception], type[Exception]] = {
        daytona.DaytonaBadRequestError: exceptions.BadRequestException,
        daytona.DaytonaNotFoundError: exceptions.NotFoundException,
        daytona.DaytonaConflictError: exceptions.ConflictException,
    }
    return raw[daytona_error]
