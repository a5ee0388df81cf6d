"""A real page on gunicorn recovers, without a reload, when the worker computing its request is killed.

The page's ``assets/retry.js`` resends a request whose connection was lost; gunicorn's other
worker (or the one it starts instead) answers it.
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
