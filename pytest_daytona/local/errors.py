"""Errors in Daytona's JSON shape, so the SDK raises its own typed exceptions."""

from __future__ import annotations

from http import HTTPStatus

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

    def response(self) -> web.Response:
        """The JSON response Daytona would send for this error."""
        return error_response(
            self.status, self.message, code=self.code, source=self.source, headers=self.headers
        )


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    source: str = SOURCE_API,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """``{"statusCode", "message", "error", "code", "source"}`` with the given status."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = {
        "statusCode": status,
        "message": message,
        "error": phrase,
        "code": code or phrase.upper().replace(" ", "_"),
        "source": source,
    }
    return web.json_response(body, status=status, headers=headers)


def daemon_error(status: int, message: str, code: str) -> ApiError:
    """A toolbox (daemon) error, e.g. ``FILE_NOT_FOUND`` or ``PROCESS_EXECUTION_TIMEOUT``."""
    return ApiError(status, message, code=code, source=SOURCE_DAEMON)
