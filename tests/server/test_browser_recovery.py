"""A real page recovers, without a reload, when the web server computing its request dies.

Directly on gunicorn, the killed worker's requests are resent (by Chromium for a reused
connection, else by the page's ``assets/retry.js``) and gunicorn's other worker answers. Behind a
load balancer the page gets a 502 instead; ``assets/retry.js`` resends it (the second test fails
without that file).
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.server.test_faults import BIG, busy_worker, worker_pids
from visualizer import ids

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def drawn(driver, graph_id) -> int | None:
    """Number of traces Plotly has drawn in ``graph_id``."""
    return driver.execute_script(
        f"const g = document.querySelector('#{graph_id} .js-plotly-plot');"
        "return g && g._fullData ? g._fullData.length : null;")


def test_the_page_recovers_when_its_worker_dies_mid_request(procs, dash_br):
    master, base = procs.gunicorn("visualizer.app:server", workers=2, threads=2)
    driver = dash_br.driver
    driver.get(base + "/" + BIG)  # a shared link to a big configuration: seconds of work per request
    killed = {}

    def kill_when_busy():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            pid = busy_worker(master)
            if pid is not None:
                killed["pid"] = pid
                os.kill(pid, signal.SIGKILL)
    thread = threading.Thread(target=kill_when_busy)
    thread.start()
    thread.join(90)
    assert killed, "no worker was seen busy with the page's requests"
    assert len(worker_pids(master)) <= 2
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (drawn(driver, ids.GRAD_GRAPH) and drawn(driver, ids.VIEW_GRAPH)):
        time.sleep(0.5)
    assert drawn(driver, ids.GRAD_GRAPH) >= 3, "the gradient plot was not drawn after the worker died"  # 3 archs
    assert drawn(driver, ids.VIEW_GRAPH)
    # the lost connections themselves are logged by the browser ("Failed to load resource"); nothing else
    assert [e for e in dash_br.get_logs() if "Failed to load resource" not in e.get("message", "")] == []


class CutOnce:
    """A proxy in front of ``backend`` that answers the first callback request whose body contains
    ``marker`` with 502, as a load balancer does when the web server behind it died mid-request.
    (A connection simply closed is not a test of the page: Chromium itself resends a request whose
    reused connection closed before any answer.)"""

    def __init__(self, backend: str, marker: bytes):
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        state = {"cut": 0}
        netloc = backend.split("//", 1)[1]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if marker in body and not state["cut"]:
                    state["cut"] += 1
                    self.send_error(502, "the web server closed the connection")
                    return
                conn = http.client.HTTPConnection(netloc, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                r = conn.getresponse()
                data = r.read()
                conn.close()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.state = state
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_callback_request_that_failed_with_502_is_resent(procs, dash_br):
    _, base = procs.gunicorn("visualizer.app:server", workers=1, threads=4)
    proxy = CutOnce(base, b'"output":"..grad-norm-graph.figure')
    try:
        dash_br.driver.get(proxy.base + "/")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not drawn(dash_br.driver, ids.GRAD_GRAPH):
            time.sleep(0.5)
        assert proxy.state["cut"] == 1  # the gradient plot's request failed once ...
        assert drawn(dash_br.driver, ids.GRAD_GRAPH) >= 3  # ... and was answered when resent
        assert [e for e in dash_br.get_logs() if "Failed to load resource" not in e.get("message", "")] == []
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
