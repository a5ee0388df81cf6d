"""A small round-robin HTTP load balancer for trying a cluster on one machine (nginx or HAProxy in production).

Every request goes to the next backend in turn, with no stickiness: a page load, its callbacks
and a training job's polls land on different web servers, as behind a real load balancer
without session affinity. A backend that refuses the connection is skipped for that request.

    python benchmarks/round_robin.py --port 8050 http://127.0.0.1:8051 http://127.0.0.1:8052
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}
MAX_BODY = 64 * 1024 * 1024  # bytes of a request body the proxy forwards


class RoundRobin:
    """The backends (``host:port``) and whose turn it is; thread-safe."""

    def __init__(self, backends: list[str]):
        self.backends = [urlsplit(b).netloc or b for b in backends]
        self._turn = itertools.cycle(range(len(self.backends)))
        self._lock = threading.Lock()
        self.counts = [0] * len(self.backends)

    def order(self) -> list[int]:
        """Backend indexes to try for the next request: its turn first, then the others."""
        with self._lock:
            first = next(self._turn)
        return [(first + i) % len(self.backends) for i in range(len(self.backends))]


def make_handler(pool: RoundRobin, timeout: float = 120.0):
    """A request handler class forwarding to ``pool``."""

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: the servers behind log
            pass

        def _forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413)
                return
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["X-Forwarded-For"] = self.client_address[0]
            for index in pool.order():
                conn = http.client.HTTPConnection(pool.backends[index], timeout=timeout)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                except ConnectionRefusedError:
                    conn.close()
                    continue  # that server is down: the next one answers
                except (OSError, http.client.HTTPException):
                    conn.close()
                    self.send_error(502, "the web server closed the connection")
                    return
                conn.close()
                with pool._lock:
                    pool.counts[index] += 1
                self.send_response(response.status, response.reason)
                for k, v in response.getheaders():
                    if k.lower() not in HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                return
            self.send_error(503, "no web server answers")

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _forward

    return Proxy


def serve(port: int, backends: list[str], host: str = "127.0.0.1") -> tuple[ThreadingHTTPServer, RoundRobin]:
    """Start the balancer in a background thread; returns (server, pool). ``server.shutdown()`` stops it."""
    pool = RoundRobin(backends)
    server = ThreadingHTTPServer((host, port), make_handler(pool))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="round-robin", daemon=True).start()
    return server, pool


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("backends", nargs="+", help="http://host:port of each web server")
    args = parser.parse_args(argv)
    pool = RoundRobin(args.backends)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(pool))
    server.daemon_threads = True
    print(f"round robin on http://{args.host}:{args.port}/ -> {', '.join(pool.backends)}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
