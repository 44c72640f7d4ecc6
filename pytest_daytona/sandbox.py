"""The sandbox handle the fixtures yield, and the one path every command takes (`run`)."""

from __future__ import annotations

import contextlib
import math
import os
import posixpath
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .executor import (
    ExecResult,
    build_script,
    command_to_shell,
    new_delimiter,
    result_from_output,
    toolbox_command,
    validate_env_keys,
)

if TYPE_CHECKING:
    from daytona import Sandbox

#: Directory under the sandbox work dir for the plugin's own temporary files (stdin).
SCRATCH_DIR = ".pytest-daytona"


class DaytonaSandbox:
    """A Daytona sandbox leased for a test: run commands in it and move files in and out.

    Relative remote paths (``cwd``, ``upload``, ``download`` ...) are relative to
    :attr:`workspace`. Everything the SDK offers beyond this is on :attr:`sdk`.
    """

    def __init__(self, sdk: Sandbox, workspace: str, *, default_timeout: float) -> None:
        self._sdk = sdk
        self._workspace = workspace
        self._default_timeout = default_timeout

    def __repr__(self) -> str:
        return f"<DaytonaSandbox {self.name} id={self.id} workspace={self.workspace}>"

    @property
    def sdk(self) -> Sandbox:
        """The underlying `daytona.Sandbox`, for everything this handle does not wrap."""
        return self._sdk

    @property
    def id(self) -> str:
        """The sandbox id."""
        return str(self._sdk.id)

    @property
    def name(self) -> str:
        """The sandbox name."""
        return str(self._sdk.name)

    @property
    def workspace(self) -> str:
        """Absolute remote path of the working directory commands start in."""
        return self._workspace

    def path(self, remote_path: str) -> str:
        """`remote_path` made absolute against :attr:`workspace`."""
        return posixpath.normpath(posixpath.join(self._workspace, remote_path))

    def run(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> ExecResult:
        """Run `command` in a login shell in the sandbox.

        `command` is a shell snippet (str) or an argv sequence (each item quoted). `env` is
        exported after the login profiles, so it wins over them. `stdin` is uploaded to a
        temporary file that is removed afterwards. A command still running after `timeout`
        seconds (default: the ``timeout`` setting) is killed and its result is marked
        ``timed_out`` (no exception). With ``check=True`` a failure raises `CommandError`.
        """
        from daytona import DaytonaTimeoutError

        shown = command_to_shell(command)
        validate_env_keys(env or {})
        limit = self._default_timeout if timeout is None else timeout
        if not limit > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        payload = stdin.encode() if isinstance(stdin, str) else stdin
        stdin_path = None
        if payload is not None:
            root = posixpath.dirname(self._workspace)
            stdin_path = posixpath.join(root, SCRATCH_DIR, f"stdin-{secrets.token_hex(8)}")
        delimiter = new_delimiter()
        script = build_script(
            command,
            cwd=self.path(cwd) if cwd is not None else self._workspace,
            env=env,
            stdin_path=stdin_path,
            delimiter=delimiter,
            remove_stdin=True,
        )
        started = time.monotonic()
        removed = False
        try:
            if stdin_path is not None and payload is not None:
                self._sdk.fs.upload_file(payload, stdin_path)
            response = self._sdk.process.exec(
                toolbox_command(script), timeout=max(1, math.ceil(limit))
            )
            removed = True  # the script removed the stdin file itself
            result = result_from_output(
                command=shown,
                output=response.result or "",
                delimiter=delimiter,
                exit_code=response.exit_code,
                duration=time.monotonic() - started,
            )
        except DaytonaTimeoutError as exc:
            result = ExecResult(
                exit_code=None,
                stdout="",
                stderr=f"{str(exc).strip()}\n",
                timed_out=True,
                duration=time.monotonic() - started,
                command=shown,
            )
        finally:
            if stdin_path is not None and not removed:
                self._remove_quietly(stdin_path)
        return result.check() if check else result

    def _remove_quietly(self, remote_path: str) -> None:
        # Best effort: the file lives in the plugin's scratch dir of a sandbox about to go.
        with contextlib.suppress(Exception):
            self._sdk.fs.delete_file(remote_path)

    def upload(self, data: bytes | str | os.PathLike[str], remote_path: str) -> str:
        """Write `data` (bytes, text, or the contents of a local file given as a path object)
        to `remote_path`, creating parent directories; returns the absolute remote path."""
        if isinstance(data, os.PathLike):
            payload = Path(data).read_bytes()
        elif isinstance(data, str):
            payload = data.encode()
        else:
            payload = bytes(data)
        target = self.path(remote_path)
        self._sdk.fs.upload_file(payload, target)
        return target

    def download(self, remote_path: str) -> bytes:
        """The contents of remote file `remote_path`."""
        return bytes(self._sdk.fs.download_file(self.path(remote_path)))

    def read_text(self, remote_path: str, encoding: str = "utf-8") -> str:
        """The contents of remote file `remote_path`, decoded."""
        return self.download(remote_path).decode(encoding)

    def write_text(self, remote_path: str, text: str, encoding: str = "utf-8") -> str:
        """Write `text` to remote file `remote_path`; returns the absolute remote path."""
        return self.upload(text.encode(encoding), remote_path)
