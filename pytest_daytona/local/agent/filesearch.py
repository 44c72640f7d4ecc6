"""Find, search and replace as the daemon does them (v0.190.0): ``find`` is a literal substring
match per line (like ``grep -F``), ``search`` matches entry names against a Go
``filepath.Match`` glob, ``replace`` replaces a literal string in whole files."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from typing import Any

from .fsutil import Confinement, bad_request, go_error, required
from .ops import Request, op

#: Longest line ``bufio.Scanner`` reads; the daemon stops reading a file at a longer one.
MAX_LINE = 64 * 1024


def walk(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """Go's ``filepath.Walk`` with a callback that skips whatever fails: every entry under
    `root` (itself first, names in byte order, symlinks not followed) with its lstat; an
    unreadable directory is left out with its contents."""
    try:
        info = os.lstat(root)
    except (OSError, ValueError):
        return
    yield from _walk(root, info)


def _walk(path: str, info: os.stat_result) -> Iterator[tuple[str, os.stat_result]]:
    if not stat.S_ISDIR(info.st_mode):
        yield path, info
        return
    try:
        names = sorted(os.listdir(path), key=os.fsencode)
    except OSError:
        return
    yield path, info
    for name in names:
        child = os.path.normpath(os.path.join(path, name))
        try:
            child_info = os.lstat(child)
        except OSError:
            continue
        yield from _walk(child, child_info)


def _text_lines(path: str) -> Iterator[bytes]:
    """The lines of a text file as ``bufio.Scanner`` yields them (``\n`` and a ``\r``
    before it stripped), ending at an over-long line; nothing for a binary file (a NUL in
    its first 512 bytes) or an empty one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
            if not head or b"\0" in head:
                return
            fh.seek(0)
            while line := fh.readline(MAX_LINE):
                if not line.endswith(b"\n"):
                    if len(line) >= MAX_LINE:
                        return
                    yield line[:-1] if line.endswith(b"\r") else line
                    return
                line = line[:-1]
                yield line[:-1] if line.endswith(b"\r") else line
    except OSError:
        return


@op("files.find")
def find_in_files(req: Request) -> dict[str, Any]:
    """``GET /files/find``: ``{file, line, content}`` of each line containing ``pattern``."""
    path, pattern = required(req, "path", "pattern")
    Confinement(req).check(path)
    needle = pattern.encode()
    matches: list[dict[str, Any]] = []
    for file, info in walk(path):
        if not stat.S_ISREG(info.st_mode):
            continue
        for number, line in enumerate(_text_lines(file), 1):
            if needle in line:
                content = line.decode("utf-8", errors="replace")
                matches.append({"file": file, "line": number, "content": content})
    return {"matches": matches}


class GlobError(ValueError):
    """A malformed ``filepath.Match`` pattern (it then matches nothing)."""


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """One (possibly escaped) character of a ``[...]`` class."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise GlobError(pattern)
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise GlobError(pattern)
    if i + 1 >= len(pattern):
        raise GlobError(pattern)
    return pattern[i], i + 1


def _class(pattern: str, i: int) -> tuple[str, int]:
    """The regex of the ``[...]`` class starting after ``[`` at `i`, and where it ends."""
    negated = i < len(pattern) and pattern[i] == "^"
    i += negated
    ranges: list[str] = []
    while True:
        if i < len(pattern) and pattern[i] == "]" and ranges:
            break
        lo, i = _class_char(pattern, i)
        hi = lo
        if pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
        ranges.append(f"{re.escape(lo)}-{re.escape(hi)}" if lo <= hi else "(?!)")
    body = "".join(r for r in ranges if r != "(?!)")
    if not body:
        return ("[^/]" if negated else "(?!)"), i + 1
    return ("[^" if negated else "[") + body + "]", i + 1


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Go's ``filepath.Match`` as a regex: ``*`` and ``?`` stop at ``/``, ``[^...]``
    negates, ``\\`` escapes; raises GlobError for a malformed pattern."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            piece, i = _class(pattern, i + 1)
            out.append(piece)
            continue
        elif char == "\\":
            i += 1
            if i >= len(pattern):
                raise GlobError(pattern)
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _name(path: str) -> str:
    return os.path.basename(path.rstrip("/")) or ("/" if path.startswith("/") else path)


@op("files.search")
def search_files(req: Request) -> dict[str, Any]:
    """``GET /files/search``: paths under ``path`` (itself included) whose name matches."""
    path, pattern = required(req, "path", "pattern")
    Confinement(req).check(path)
    try:
        regex = glob_regex(pattern)
    except GlobError:
        return {"files": []}
    return {"files": [p for p, _ in walk(path) if regex.fullmatch(_name(p))]}


def _replace(data: bytes, pattern: str, new_value: str) -> bytes:
    if pattern:
        return data.replace(pattern.encode(), new_value.encode())
    # Go's ReplaceAll with an empty pattern inserts between every UTF-8 sequence.
    text = data.decode("utf-8", errors="surrogateescape")
    return text.replace("", new_value).encode("utf-8", errors="surrogateescape")


@op("files.replace")
def replace_in_files(req: Request) -> dict[str, Any]:
    """``POST /files/replace``: each file read, ``pattern`` replaced, written back (0644 if
    created); one ``{file, success, error?}`` per file."""
    files = req.params.get("files")
    if not isinstance(files, list):
        raise bad_request("invalid request body: files must be a list")
    pattern = str(req.params.get("pattern") or "")
    new_value = str(req.params.get("newValue") or "")
    confinement = Confinement(req)
    results: list[dict[str, Any]] = []
    for file in files:
        problem = confinement.problem(file)
        if problem:
            results.append({"file": file, "success": False, "error": problem})
            continue
        try:
            with open(file, "rb") as fh:
                data = fh.read()
        except (OSError, ValueError) as exc:
            results.append({"file": file, "success": False, "error": _error("open", file, exc)})
            continue
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(_replace(data, pattern, new_value))
        except OSError as exc:
            results.append({"file": file, "success": False, "error": _error("open", file, exc)})
            continue
        results.append({"file": file, "success": True})
    return {"results": results}


def _error(op_name: str, path: str, exc: OSError | ValueError) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return go_error(op_name, path, exc)
    return f"{op_name} {path}: invalid argument"
