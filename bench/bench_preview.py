"""Preview-link round trip: a GET through the embedded server's preview proxy against the
same GET sent straight to the listener, for a small body and a 1 MiB one.

The listener runs on the host at a free loopback port (sandboxes share the host's network,
so it is what a server in the sandbox would be). One keep-alive client makes both kinds of
request, interleaved, so drift on the machine hits both alike.

Prints figures, not a verdict: exit code 0 unless something errors.
Run: python bench/bench_preview.py [--quick] [--iterations N]
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import logging
import threading
from collections.abc import Iterator

import httpx
from bench_local_server import medians_ms  # this script's directory is on sys.path
from daytona import Daytona, DaytonaConfig

from pytest_daytona.local.server import LocalServer

BODIES = {"small": b"hello preview", "1 MiB": b"x" * (1 << 20)}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the proxy's own upstream connections
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def do_GET(self) -> None:
        body = BODIES["1 MiB"] if self.path == "/big" else BODIES["small"]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def listener() -> Iterator[int]:
    """A threaded HTTP server on a free loopback port; yields the port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20 iterations")
    args = parser.parse_args()
    iterations = 20 if args.quick else args.iterations
    logging.getLogger("pytest_daytona.local").setLevel(logging.ERROR)

    with listener() as port, LocalServer(isolation="none") as srv, httpx.Client() as http:
        daytona = Daytona(DaytonaConfig(api_key=srv.token, api_url=srv.api_url))
        sandbox = daytona.create()
        link = sandbox.get_preview_link(port)
        auth = {"X-Daytona-Preview-Token": link.token}
        print(f"preview GET vs direct GET, median of {iterations} (keep-alive client)")
        print(f"{'body':>8} {'direct ms':>10} {'preview ms':>11} {'ratio':>6} {'added ms':>9}")
        for label, path in (("small", "/"), ("1 MiB", "/big")):
            direct_url, preview_url = f"http://127.0.0.1:{port}{path}", f"{link.url}{path}"

            def direct(url: str = direct_url) -> None:
                http.get(url).raise_for_status()

            def proxied(url: str = preview_url, size: int = len(BODIES[label])) -> None:
                response = http.get(url, headers=auth)
                response.raise_for_status()
                assert len(response.content) == size

            d, p = medians_ms([direct, proxied], iterations, warmup=5)
            print(f"{label:>8} {d:>10.3f} {p:>11.3f} {p / d:>5.1f}x {p - d:>9.3f}")
        daytona.delete(sandbox)
        dispatcher = getattr(daytona, "_event_dispatcher", None)
        if dispatcher is not None:  # the sync SDK has no public close
            with contextlib.suppress(Exception):
                dispatcher.disconnect()


if __name__ == "__main__":
    main()
