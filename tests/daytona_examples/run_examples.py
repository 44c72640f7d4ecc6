"""Run Daytona's own Python examples, unmodified, against the embedded local server.

Usage::

    python tests/daytona_examples/run_examples.py PATH/TO/examples/python
    DAYTONA_EXAMPLES_DIR=PATH/TO/examples/python python tests/daytona_examples/run_examples.py
    python tests/daytona_examples/run_examples.py --from-git GITDIR COMMIT

Each example runs as ``python <file>`` in a fresh temporary working directory with only
``DAYTONA_API_URL`` and ``DAYTONA_API_KEY`` pointing at one local server. The exit status is
non-zero when any example that is not excluded fails.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pytest_daytona.local.sandboxes.runner import IsolationMode

# Patterns (fnmatch, on the path relative to examples/python; `*` also crosses `/`) of the
# examples that cannot run here, each with the reason. Read every example before adding one.
EXCLUDED: dict[str, str] = {
    "charts/*": "needs the internet (a public image registry and PyPI): builds "
    "Image.debian_slim('3.13').pip_install('matplotlib') and plots with matplotlib inside it "
    "(its plotting code is what tests/local/toolbox/test_chart_types.py checks)",
    "declarative-image/*": "needs the internet (a public image registry and PyPI): builds "
    "snapshots from "
    "Image.debian_slim(...).pip_install(numpy, pandas, ...).run_commands('apt-get install git', "
    "'useradd ...') and checks the installed packages",
    "git-lsp/*": "needs the internet (git clone of github.com/panaverse/learn-typescript, curl "
    "deb.nodesource.com, npm install) and the ubuntu:25.10 image; LSP is out of scope",
}


@dataclass(frozen=True)
class Check:
    """A regex (multiline) that must appear in, or must be absent from, an example's output."""

    regex: str
    present: bool
    what: str


# Several examples catch their own exceptions and print them, then exit 0; others print what
# the cloud answered. Exit 0 alone would call those ok, so their output is checked too.
# PTY kills end with "Error: SIGKILL" in the cloud (daemon pty/websocket.go), hence the exception.
SWALLOWED = Check(
    r"^Error\b(?!: (SIGKILL|SIGTERM|signal \d+)$).*", False, "printed an error it caught"
)
CHECKS: dict[str, tuple[Check, ...]] = {
    "auto-archive/*": (Check(r"^60\n(.*\n)?1440$", True, "intervals 60 and 1440 echoed"),),
    "auto-delete/*": (Check(r"^60\n0\n-1\n1440$", True, "intervals 60, 0, -1, 1440 echoed"),),
    "network-settings/*": (
        Check(r"^network_block_all: True$", True, "network_block_all=True echoed"),
        Check(
            r"^network_allow_list: 192\.168\.1\.0/16,10\.0\.0\.0/24$",
            True,
            "network_allow_list echoed",
        ),
    ),
    "lifecycle/*": (Check(r"^Hello World from exec!$", True, "exec output"),),
    "exec-command/*exec.py": (
        Check(r"^Hello World!$", True, "code_run output"),
        Check(r"^Hello World from exec!$", True, "exec output"),
        Check(r"Counter after second call = 2", True, "state kept between run_code calls"),
        Check(r"Value still available: stored in isolated context", True, "context state"),
        Check(r"\[ERROR\] NameError", True, "contexts isolated from each other"),
        Check(r"^Timed out as expected", True, "run_code timeout raised"),
    ),
    "exec-command/*exec_session.py": (Check(r"^\[STDOUT\]: BAR$", True, "session kept $FOO"),),
    "exec-command/*exec_logs_async.py": (
        Check(r"Hello, Alice", True, "input reached the command"),
        Check(r"Count: 3", True, "streamed logs to the end"),
    ),
    "exec-command/exec_linked.py": (
        Check(r"^Response from owner: hello from owner$", True, "follower reached owner"),
    ),
    "file-operations/*": (
        Check(r'"debug": false', True, "replace_in_files applied"),
        Check(r"^Streamed content:", True, "streamed download"),
    ),
    "pty/main.py": (Check(r"Hello, Alice", True, "PTY input and output"),),
    "pty/_async/main.py": (
        Check(r"Hello, Bob", True, "PTY input and output"),
        Check(r"^PTY session resized to 80x25$", True, "resize answered"),
    ),
    "region/*": (
        Check(
            r"^Creating (snapshot|sandbox from snapshot) us-\d+\n(?!-{32}$).*",
            False,
            "the 'us' snapshot or sandbox printed an error",
        ),
    ),
    "volumes/*": (Check(r"^File: b'Hello, World!'$", True, "file shared through the volume"),),
}

# With --trace-http, a sitecustomize that logs each HTTP request of the SDK's sync clients
# (urllib3 for the REST and toolbox APIs, httpx for file transfers) and the status answered.
TRACE_HTTP = """\
import logging
import sys

_handler = logging.StreamHandler(sys.stdout)
_handler.setFormatter(logging.Formatter("[http] %(message)s"))
for _name, _level in (("urllib3.connectionpool", logging.DEBUG), ("httpx", logging.INFO)):
    _log = logging.getLogger(_name)
    _log.setLevel(_level)
    _log.addHandler(_handler)
"""

ENV_DIR = "DAYTONA_EXAMPLES_DIR"
TAIL_LINES = 15
Outcome = Literal["ok", "failed", "excluded"]


@dataclass(frozen=True)
class ExampleResult:
    """How one example file ended."""

    name: str
    outcome: Outcome
    seconds: float = 0.0
    returncode: int | None = None
    output: str = ""
    reason: str = ""

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        """The last `lines` lines of the example's combined stdout and stderr."""
        return self.output.rstrip().splitlines()[-lines:]


def discover(examples_dir: Path) -> list[str]:
    """Every example file under `examples_dir`, as sorted POSIX paths relative to it."""
    names = [
        path.relative_to(examples_dir).as_posix()
        for path in examples_dir.rglob("*.py")
        if "__pycache__" not in path.parts and path.name != "__init__.py"
    ]
    return sorted(names)


def exclusion_reason(name: str, excluded: Mapping[str, str]) -> str | None:
    """The reason `name` is excluded, or None when it must run."""
    for pattern, reason in excluded.items():
        if fnmatch.fnmatch(name, pattern):
            return reason
    return None


def check_output(
    name: str, output: str, checks: Mapping[str, tuple[Check, ...]] = CHECKS
) -> list[str]:
    """What `output` of example `name` gets wrong, one line per failed check."""
    applicable = [SWALLOWED]
    for pattern, extra in checks.items():
        if fnmatch.fnmatch(name, pattern):
            applicable += extra
    text = "".join(line for line in output.splitlines(True) if not line.startswith("[http] "))
    problems = []
    for check in applicable:
        found = re.search(check.regex, text, re.MULTILINE)
        if bool(found) != check.present:
            shown = found.group(0).strip().replace("\n", " / ") if found else ""
            detail = f": {shown!r}" if found else f" (no /{check.regex}/)"
            problems.append(f"[runner] check failed, {check.what}{detail}")
    return problems


def example_env(api_url: str, api_key: str, trace_dir: Path | None = None) -> dict[str, str]:
    """This process's environment without other Daytona settings, pointed at the server.

    With `trace_dir`, a sitecustomize there logs the SDK's HTTP requests into the output.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAYTONA_")}
    env.update(DAYTONA_API_URL=api_url, DAYTONA_API_KEY=api_key, PYTHONUNBUFFERED="1")
    if trace_dir is not None:
        (trace_dir / "sitecustomize.py").write_text(TRACE_HTTP)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(trace_dir), env.get("PYTHONPATH")]))
    return env


def run_one(path: Path, name: str, env: Mapping[str, str], timeout: float) -> ExampleResult:
    """Run one example as ``python <file>`` in a fresh temporary working directory."""
    with tempfile.TemporaryDirectory(prefix="daytona-example-") as cwd:
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, str(path)],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            timed_out = True
        seconds = time.monotonic() - start
    output = out.decode("utf-8", errors="replace")
    if timed_out:
        output += ("" if output.endswith("\n") or not output else "\n") + (
            f"[runner] timed out after {timeout:g} s and was killed"
        )
    outcome: Outcome = "ok" if proc.returncode == 0 and not timed_out else "failed"
    return ExampleResult(name, outcome, seconds, proc.returncode, output)


def run_all(
    examples_dir: Path,
    api_url: str,
    api_key: str,
    *,
    timeout: float = 120.0,
    jobs: int = 1,
    only: Sequence[str] = (),
    excluded: Mapping[str, str] = EXCLUDED,
    checks: Mapping[str, tuple[Check, ...]] = CHECKS,
    trace_dir: Path | None = None,
) -> list[ExampleResult]:
    """Run every example under `examples_dir` (those matching a pattern of `only`, if any)."""
    env = example_env(api_url, api_key, trace_dir)
    names = [n for n in discover(examples_dir) if not only or any(p in n for p in only)]

    def one(name: str) -> ExampleResult:
        reason = exclusion_reason(name, excluded)
        if reason is not None:
            return ExampleResult(name, "excluded", reason=reason)
        result = run_one(examples_dir / name, name, env, timeout)
        problems = check_output(name, result.output, checks)
        if result.outcome == "ok" and problems:
            output = "\n".join([result.output.rstrip(), *problems])
            result = replace(result, outcome="failed", output=output)
        print(f"  {result.outcome:<8} {result.seconds:6.1f}s  {name}", file=sys.stderr, flush=True)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, names))


def table(results: Sequence[ExampleResult], tail_lines: int = TAIL_LINES) -> str:
    """A Markdown table of the results, then the last output lines of each failure."""
    width = max([len("example"), *(len(r.name) for r in results)])
    lines = [
        f"| {'example':<{width}} | result   | seconds |",
        f"|{'-' * (width + 2)}|----------|--------:|",
    ]
    for r in results:
        secs = "" if r.outcome == "excluded" else f"{r.seconds:.1f}"
        lines.append(f"| {r.name:<{width}} | {r.outcome:<8} | {secs:>7} |")
    counts = {o: sum(r.outcome == o for r in results) for o in ("ok", "failed", "excluded")}
    lines.append("")
    lines.append(", ".join(f"{n} {o}" for o, n in counts.items()))
    reasons = {r.reason: None for r in results if r.outcome == "excluded"}
    lines += [f"excluded: {reason}" for reason in reasons]
    for r in results:
        if r.outcome == "failed":
            lines += ["", f"--- {r.name} (exit {r.returncode}), last lines:"]
            lines += [f"    {line}" for line in r.tail(tail_lines)]
    return "\n".join(lines)


def exit_status(results: Sequence[ExampleResult]) -> int:
    """1 when any example that runs failed (or none ran at all), else 0."""
    if not any(r.outcome != "excluded" for r in results):
        return 1
    return 1 if any(r.outcome == "failed" for r in results) else 0


def write_logs(results: Sequence[ExampleResult], log_dir: Path) -> None:
    """Write the full output of each example that ran to ``log_dir/<path with __>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    for r in results:
        if r.outcome != "excluded":
            (log_dir / (r.name.replace("/", "__") + ".log")).write_text(r.output)


def export_from_git(gitdir: str, commit: str, dest: Path) -> Path:
    """Extract ``examples/python`` of `commit` from the git dir `gitdir` into `dest`."""
    archive = subprocess.run(
        ["git", f"--git-dir={gitdir}", "archive", "--format=tar", commit, "examples/python"],
        check=True,
        capture_output=True,
    )
    with tempfile.TemporaryFile() as buf:
        buf.write(archive.stdout)
        buf.seek(0)
        with tarfile.open(fileobj=buf) as tar:
            tar.extractall(dest, filter="data")
    return dest / "examples" / "python"


@contextmanager
def server_endpoint(
    api_url: str | None, api_key: str | None, isolation: IsolationMode = "auto"
) -> Iterator[tuple[str, str]]:
    """The given server, or a fresh in-process local server for the duration."""
    if api_url:
        if not api_key:
            raise SystemExit("--api-url needs --api-key (or DAYTONA_API_KEY)")
        yield api_url, api_key
        return
    from pytest_daytona.local import LocalServer

    with LocalServer(isolation=isolation) as server:
        yield server.api_url, server.token


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "examples_dir", nargs="?", help=f"examples/python directory (or ${ENV_DIR})"
    )
    parser.add_argument(
        "--from-git",
        nargs=2,
        metavar=("GITDIR", "COMMIT"),
        help="export examples/python of COMMIT from the git dir GITDIR (git archive) and run those",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per example")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="examples run at once")
    parser.add_argument(
        "-k", "--only", action="append", default=[], help="run examples whose path contains this"
    )
    parser.add_argument("--tail", type=int, default=TAIL_LINES, help="output lines per failure")
    parser.add_argument(
        "--trace-http",
        action="store_true",
        help="log every HTTP request of the SDK's sync clients and its status into the output",
    )
    parser.add_argument("--log-dir", type=Path, help="write each example's full output here")
    parser.add_argument(
        "--isolation",
        choices=["auto", "bwrap", "none"],
        default="auto",
        help="how the in-process server runs sandbox commands (default: bwrap when usable)",
    )
    parser.add_argument("--api-url", help="use this running server instead of starting one")
    parser.add_argument("--api-key", default=None, help="its API key (with --api-url)")
    return parser


def main(
    argv: Sequence[str] | None = None,
    excluded: Mapping[str, str] = EXCLUDED,
    checks: Mapping[str, tuple[Check, ...]] = CHECKS,
) -> int:
    """Run the examples, print the table, return the exit status."""
    args = _parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="daytona-examples-") as tmp:
        if args.from_git:
            examples_dir = export_from_git(args.from_git[0], args.from_git[1], Path(tmp))
        else:
            given = args.examples_dir or os.environ.get(ENV_DIR)
            if not given:
                _parser().error(f"give the examples/python directory, ${ENV_DIR} or --from-git")
            examples_dir = Path(given).resolve()
        if not examples_dir.is_dir():
            _parser().error(f"not a directory: {examples_dir}")
        api_key_given = args.api_key or os.environ.get("DAYTONA_API_KEY")
        with server_endpoint(args.api_url, api_key_given, args.isolation) as (api_url, api_key):
            print(f"examples: {examples_dir}\nserver: {api_url}", file=sys.stderr, flush=True)
            results = run_all(
                examples_dir,
                api_url,
                api_key,
                timeout=args.timeout,
                jobs=args.jobs,
                only=args.only,
                excluded=excluded,
                checks=checks,
                trace_dir=Path(tmp) if args.trace_http else None,
            )
    if args.log_dir:
        write_logs(results, args.log_dir)
    print(table(results, args.tail))
    return exit_status(results)


if __name__ == "__main__":
    sys.exit(main())
