"""Faults: a gunicorn worker killed mid-request, Redis stopped and restarted under running servers."""
from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest
import requests

from tests.server import jobapp
from tests.server.conftest import wait_until
from tests.server.dash_http import DashSession
from visualizer import jobs, limits

pytestmark = pytest.mark.slow

BIG = "?arch=rnn,lstm,gru&seq_len=2000&hidden=256&batch=4&view=jacobian"  # many seconds of work


def worker_pids(master) -> list[int]:
    """The gunicorn worker processes of ``master``."""
    return [c.pid for c in psutil.Process(master.pid).children()]


def serving(master) -> set:
    """(worker pid, client address) of every request connection open right now."""
    out = set()
    for pid in worker_pids(master):
        for c in psutil.Process(pid).net_connections(kind="tcp"):
            if c.status == psutil.CONN_ESTABLISHED and c.raddr:
                out.add((pid, tuple(c.raddr)))
    return out


def busy_worker(master):
    """The pid of a worker that has been serving the same request for half a second, or None."""
    first = serving(master)
    time.sleep(0.5)
    still = first & serving(master)
    return next(iter(still))[0] if still else None


def test_a_worker_killed_mid_request_leaves_everyone_else_working(procs, http):
    master, base = procs.gunicorn("visualizer.app:server", workers=2, threads=1)
    students = [DashSession(base, requests.Session()).load() for _ in range(3)]
    victim = DashSession(base, http).load(BIG, initial=False)  # opens a shared link to a big configuration
    before = set(worker_pids(master))
    assert len(before) == 2

    failure = {}

    def slow_request():
        try:
            victim.initial_callbacks()  # the URL is read, then the heavy views are computed
        except Exception as e:  # the request is expected to die with its worker
            failure["error"] = e
    thread = threading.Thread(target=slow_request)
    thread.start()

    def busy_or_done():
        assert thread.is_alive(), f"the big request ended before a worker was seen busy: {failure}"
        return busy_worker(master)
    busy = wait_until(busy_or_done, 30, "a worker busy with the big request")
    os.kill(busy, signal.SIGKILL)
    thread.join(60)
    assert "error" in failure  # the request in flight on the killed worker failed ...

    for s in students:  # ... the other users' requests keep working,
        s.set("seq-len-slider", "value", 60)
        assert len(s.props[("grad-norm-graph", "figure")]["data"]) == 3
    wait_until(lambda: len(worker_pids(master)) == 2 and set(worker_pids(master)) != before, 30, "a new worker")
    victim.set("seq-len-slider", "value", 40)  # ... and the victim's next request works
    assert victim.search().startswith("?arch=rnn,lstm,gru&seq_len=40&")
    assert victim.props[("grad-norm-graph", "figure")]["data"]
    for s in students:
        s.http.close()


def test_redis_down_message_quick_views_work_and_jobs_return(procs, private_redis, http):
    procs.env.update(BPTTLAB_REDIS_URL=private_redis.url, BPTTLAB_APP="tests.server.jobapp")
    procs.celery_worker(concurrency=1)
    _, base = procs.gunicorn("tests.server.jobapp:server")
    s = jobapp.open_page(base, http)
    job = s.find(f"{jobapp.RESULT}.children")

    def train(n):
        s.props[(jobapp.START, "n_clicks")] = n
        s.props[(jobapp.STEPS, "value")] = 3 + n  # new arguments: no cached result
        s.run_background(job, [f"{jobapp.START}.n_clicks"], timeout=60)
        return s.props[(jobapp.RESULT, "children")]

    assert train(1).startswith("finished 4 steps")

    private_redis.stop()
    assert train(2) == jobs.UNAVAILABLE  # a clear message, at once
    s.set(jobapp.QUICK_IN, "value", "21")  # quick views keep working
    assert s.props[(jobapp.QUICK_OUT, "children")] == "quick 42"
    fresh = DashSession(base, requests.Session()).load()  # and so do new page loads
    fresh.set(jobapp.QUICK_IN, "value", "5")
    assert fresh.props[(jobapp.QUICK_OUT, "children")] == "quick 10"
    fresh.http.close()

    private_redis.start()  # same port; no server restarted
    # the new Redis is empty: for a few seconds, until the worker announces itself again, "no worker"
    result = wait_until(lambda: (r := train(3)) not in (jobs.UNAVAILABLE, limits.NO_WORKER) and r, 60,
                        "jobs after Redis came back")
    assert result.startswith("finished 6 steps"), result
