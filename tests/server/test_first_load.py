"""The first page load renders on every fresh start of ``gunicorn --workers 2 --threads 4``.

Dash does part of its setup on the first request and marks it done before doing it; under
threads, a request arriving meanwhile got a 500 for Dash's own bundles ("dash" is not a
registered library) and the page stayed blank. Each start here sends the page, its layout,
dependencies and every script and stylesheet the page names at once, before the workers have
booted, so that the first requests of each worker arrive together.
"""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading

import pytest
import requests

from tests.server.conftest import free_port, stop, wait_until
from visualizer.serve import has_control_socket

pytestmark = pytest.mark.slow
STARTS = 8
ASSET_RE = re.compile(r'(?:src|href)="(/[^"]+\.(?:js|css)[^"]*)"')


def page_resources() -> list[str]:
    """The page, layout, dependencies and every bundle / asset the page names (from an in-process app)."""
    from visualizer.app import create_app

    html = create_app().server.test_client().get("/").get_data(as_text=True)
    assets = sorted(set(ASSET_RE.findall(html)))
    assert any("dash_renderer" in a for a in assets) and any("/_dash-component-suites/dash/" in a for a in assets)
    return ["/", "/_dash-layout", "/_dash-dependencies", *assets]


def listening(port: int) -> bool:
    """True once something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def first_requests(base: str, paths: list[str], copies: int = 2) -> dict:
    """GET every path ``copies`` times, all threads released together; returns {path: [status, ...]}."""
    jobs = [p for p in paths for _ in range(copies)]
    barrier, lock, out = threading.Barrier(len(jobs)), threading.Lock(), {}

    def get(path):
        barrier.wait()
        try:
            status = requests.get(base + path, timeout=60).status_code
        except requests.RequestException as e:
            status = repr(e)
        with lock:
            out.setdefault(path, []).append(status)
    threads = [threading.Thread(target=get, args=(p,)) for p in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return out


def test_every_fresh_start_serves_the_first_requests(server_env, tmp_path):
    paths = page_resources()
    failures = []
    for start in range(STARTS):
        port = free_port()
        log = tmp_path / f"gunicorn-{start}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "4", "--bind", f"127.0.0.1:{port}",
                 *(["--no-control-socket"] if has_control_socket() else []), "visualizer.app:server"],
                env=server_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda p=port: listening(p), 60, "gunicorn's socket", proc, log)
            statuses = first_requests(f"http://127.0.0.1:{port}", paths)
            bad = {p: s for p, s in statuses.items() if any(x != 200 for x in s)}
            if bad:
                failures.append((start, bad, log.read_text()[-2000:]))
        finally:
            stop(proc)
    assert not failures, failures
