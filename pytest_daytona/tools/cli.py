"""The ``pytest-daytona`` command (also ``python -m pytest_daytona``)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from ..config.durations import FORMS, is_number, parse_duration


def _seconds(text: str) -> float:
    """A time option: seconds alone, or a duration with units (the settings' syntax)."""
    try:
        return float(text) if is_number(text.strip()) else parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither seconds nor a duration ({FORMS})"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pytest-daytona", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the embedded Daytona-compatible server in the foreground",
        description="Serve the Daytona API locally. Prints DAYTONA_API_URL and DAYTONA_API_KEY "
        "once it accepts requests; stops on SIGINT/SIGTERM.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    serve.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    serve.add_argument(
        "--data-dir",
        default=None,
        help="keep sandboxes here across restarts (default: a temporary directory)",
    )
    serve.add_argument("--token", default=None, help="bearer token to require (default: random)")
    serve.add_argument(
        "--transition-delay",
        type=_seconds,
        default=0.0,
        help="time each start/stop/create/delete transition takes: seconds (0.5), or a "
        "duration such as 2s or 1m (default: 0)",
    )
    serve.add_argument(
        "--isolation",
        choices=["auto", "bwrap", "none"],
        default="auto",
        help="run commands under bubblewrap when available (auto), always (bwrap) or never",
    )
    serve.add_argument(
        "--default-registry",
        default=None,
        help="registry that short image names (python:3.12-slim) resolve against",
    )
    serve.add_argument(
        "--insecure-registry",
        action="append",
        default=None,
        help="registry host[:port] reached over plain HTTP (loopback ones always are); repeat",
    )
    serve.add_argument(
        "--share",
        action="append",
        default=None,
        metavar="PATH",
        help="host path every sandbox sees read-only at the same path (nothing else of the "
        "host beyond its system directories); repeat",
    )
    serve.add_argument(
        "--max-processes",
        type=int,
        default=None,
        help="processes one sandbox may have at once (default 4096)",
    )
    serve.add_argument(
        "--default-image",
        default=None,
        help="image of sandboxes created with neither image nor snapshot "
        "(default: this machine's userland)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pytest-daytona`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from ..local import LocalServer, serve_forever

    try:
        server = LocalServer(
            args.data_dir,
            host=args.host,
            port=args.port,
            token=args.token,
            transition_delay=args.transition_delay,
            isolation=args.isolation,
            default_registry=args.default_registry,
            insecure_registries=args.insecure_registry,
            default_image=args.default_image,
            share_host_paths=args.share,
            max_processes=args.max_processes,
        )
    except ValueError as exc:
        parser.error(str(exc))
    serve_forever(server)
    return 0
