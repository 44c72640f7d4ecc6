"""``missing_key = skip``: with the daytona backend and no API key, the tests that take a
sandbox are skipped (with the reason) instead of failed; the others run as usual.

(``missing_key = local`` is a settings matter: `Settings` turns such a run into one on the
embedded backend.)
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ..run.startup import needs_sandboxes

SKIP_REASON = (
    "pytest-daytona: no Daytona API key (daytona_missing_key = skip); set DAYTONA_API_KEY "
    "to run this test on Daytona, or --daytona-backend local to run it on the embedded server"
)


def skip_reason(config: pytest.Config) -> str | None:
    """Why this run's sandbox tests are to be skipped, None when they are to run; invalid
    settings raise `pytest.UsageError` (as building the session would)."""
    from ..config.resolve import raw_values, resolve_settings
    from ..errors import SettingsError

    if str(raw_values(config).get("missing_key") or "").strip().lower() != "skip":
        return None
    from ..config.settings import missing_api_key_message

    try:
        settings = resolve_settings(config)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    if settings.missing_key != "skip" or missing_api_key_message(settings) is None:
        return None
    return SKIP_REASON


def skip_sandbox_tests(config: pytest.Config, items: Sequence[pytest.Item]) -> bool:
    """Mark every test of `items` that takes a sandbox as skipped when the run has no key and
    ``missing_key = skip``; whether it did."""
    reason = skip_reason(config)
    if reason is None:
        return False
    for item in items:
        if needs_sandboxes([item]):
            item.add_marker(pytest.mark.skip(reason=reason))
    return True
