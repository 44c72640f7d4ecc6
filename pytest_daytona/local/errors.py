"""Errors in Daytona's JSON shape, so the SDK raises its own typed exceptions."""

from __future__ import annotations

from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

from aiohttp import web

SOURCE_API = "DAYTONA_API"
SOURCE_DAEMON = "DAYTONA_DAEMON"


class ApiError(Exception):
    """An HTTP error answer: status, message, and optionally Daytona's (source, code) pair."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        source: str = SOURCE_API,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.source = source
        self.headers = headers or {}

    def response(self, request: web.Request | None = None) -> web.Response:
        """The JSON response Daytona would send for this error (to `request`)."""
        return error_response(
            self.status,
            self.message,
            code=self.code,
            source=self.source,
            headers=self.headers,
            request=request,
        )


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    source: str = SOURCE_API,
    headers: dict[str, str] | None = None,
    request: web.Request | None = None,
) -> web.Response:
    """``{"statusCode", "message", "error", "code", "source", "timestamp"}`` with the given
    status, plus ``path`` and ``method`` of `request` (the daemon's ErrorResponse requires
    ``path`` and ``timestamp``)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body: dict[str, Any] = {
        "statusCode": status,
        "message": message,
        "error": phrase,
        "code": code or phrase.upper().replace(" ", "_"),
        "source": source,
        "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
    }
    if request is not None:
        body["path"] = request.path
        body["method"] = request.method
    return web.json_response(body, status=status, headers=headers)


def daemon_error(status: int, message: str, code: str) -> ApiError:
    """A toolbox (daemon) error, e.g. ``FILE_NOT_FOUND`` or ``PROCESS_EXECUTION_TIMEOUT``."""
    return ApiError(status, message, code=code, source=SOURCE_DAEMON)
