"""Several machines on one Redis: no sticky sessions, one job per start, web-side admission with a
queue, a lost worker reported. "Machines" are processes with their own temporary folders and
homes (``benchmarks/local_cluster.py``); only Redis, the secret and the settings are shared.
"""
from __future__ import annotations

import importlib.util
import itertools
import shutil
import time

import pytest
import requests

from tests.server import jobapp
from tests.server.conftest import ROOT, wait_until
from tests.server.dash_http import DashSession
from tests.server.jobapp import job_running, open_page, press_start
from visualizer import ids, jobs, limits

pytestmark = pytest.mark.slow


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


local_cluster = _load("local_cluster")


class Alternating:
    """A requests session that sends every request to the next server in turn (no stickiness)."""

    def __init__(self, bases):
        self.bases, self.http, self.turn = bases, requests.Session(), itertools.cycle(range(len(bases)))
        self.counts = [0] * len(bases)

    def _url(self, url):
        i = next(self.turn)
        self.counts[i] += 1
        return self.bases[i] + url[len(self.bases[0]):]

    def get(self, url, **kwargs):
        return self.http.get(self._url(url), **kwargs)

    def post(self, url, **kwargs):
        return self.http.post(self._url(url), **kwargs)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Redis, two web servers (one gunicorn worker each) and one Celery worker (-c 1), on the job test app."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    c = local_cluster.LocalCluster(tmp_path_factory.mktemp("cluster"), web=2, workers=1, web_workers=1,
                                   concurrency=1, app="tests.server.jobapp",
                                   env={"BPTTLAB_MAX_QUEUED": "2", "BPTTLAB_MAX_JOBS_PER_USER": "1"})
    with c:
        yield c


def tab(cluster, user=None, **values):
    """A page whose every request alternates between the two web servers."""
    return open_page(cluster.web_urls[0], Alternating(cluster.web_urls), user, **values)


def result(s):
    return s.props.get((jobapp.RESULT, "children"))


def test_every_request_may_reach_either_server(cluster):
    s = tab(cluster, steps=20, pace=0.05)
    s.set(jobapp.QUICK_IN, "value", "21")
    assert s.props[(jobapp.QUICK_OUT, "children")] == "quick 42"
    polls = []
    press_start(s, on_progress=polls.append)
    assert result(s).startswith("finished 20 steps"), result(s)
    assert len(polls) >= 4 and min(s.http.counts) >= 4  # polls went to both servers, each answered
    # Pause sent to the other server cancels the job, and frees the user's slot
    s.props[(jobapp.STEPS, "value")], s.props[(jobapp.PACE, "value")] = 5000, 0.05
    press_start(s, cancel_when=lambda d: bool(d.get("progress")))
    s.props[(jobapp.STEPS, "value")], s.props[(jobapp.PACE, "value")] = 3, 0.0
    press_start(s)
    assert result(s).startswith("finished 3 steps"), result(s)


def test_two_tabs_with_the_same_settings_are_two_jobs(cluster):
    user = limits.new_user_id()
    first, second = tab(cluster, user, steps=60, pace=0.05), tab(cluster, user, steps=60, pace=0.05)
    with job_running(first):
        press_start(second)  # same user, same settings: the per-user limit answers, clearly
        assert "You already have 1 training job running or waiting" in result(second)
    assert result(first).startswith("finished 60 steps")  # the first was neither killed nor taken over


def test_a_job_waits_in_the_queue_with_its_position(cluster):
    busy = tab(cluster, steps=80, pace=0.05)
    waiting = tab(cluster, steps=3, pace=0.0)
    seen = []
    with job_running(busy):
        press_start(waiting, on_progress=lambda d: seen.append((d.get("progress") or {}).get(
            f"{jobapp.PROGRESS}.children")))
        assert {"queued": 1} in seen  # shown while the only worker slot was busy
        assert result(waiting).startswith("finished 3 steps")
        third, fourth = tab(cluster, steps=3), tab(cluster, steps=3)  # 1 running + 2 queued is the cap
    assert result(busy).startswith("finished 80 steps")
    for t in (third, fourth):
        press_start(t)
        assert result(t).startswith("finished 3 steps")


def test_a_job_cancelled_while_queued_ends_at_once(cluster):
    """Pause on a job waiting behind another: its page learns it ended while the busy job still runs."""
    busy, waiting = tab(cluster, steps=120, pace=0.05), tab(cluster, steps=3, pace=0.0)
    progress = f"{jobapp.PROGRESS}.children"
    with job_running(busy):
        out = press_start(waiting, cancel_when=lambda d: (d.get("progress") or {}).get(progress) == {"queued": 1})
        assert not (out or {}).get("response") and result(waiting) is None  # cancelled: no result
        assert result(busy) is None  # ended while the only worker slot was still busy
    assert result(busy).startswith("finished 120 steps")


def test_a_lost_worker_is_reported_and_its_slot_freed(cluster):
    user = limits.new_user_id()
    s = tab(cluster, user, steps=5000, pace=0.05)
    seen = []
    killed = {}

    def on_progress(data):
        seen.append(data)
        if data.get("progress") and not killed:
            killed["at"] = time.monotonic()
            for w in cluster.workers:
                cluster.kill(w)
    press_start(s, on_progress=on_progress, timeout=90)
    assert result(s) == jobs.LOST_WORKER
    waited = time.monotonic() - killed["at"]
    assert waited < limits.HEARTBEAT_TTL + 15, waited  # noticed within seconds, not at the time limit
    cluster.workers.clear()
    cluster.start_worker(9)
    wait_until(lambda: tab(cluster, user) is not None, 10, "a page")
    again = tab(cluster, user, steps=3, pace=0.0)  # the lost job's slot is free: the same user trains again
    press_start(again)
    assert result(again).startswith("finished 3 steps"), result(again)


def test_the_local_cluster_serves_the_app_through_the_balancer(tmp_path):
    """The compose equivalent: Redis, two web servers, two workers and the balancer; a real page trains."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    with local_cluster.LocalCluster(tmp_path, web=2, workers=2, web_workers=1, concurrency=1) as c:
        s = DashSession(c.base, requests.Session()).load()
        s.props[(ids.USER_STORE, "data")] = limits.new_user_id()
        s.set(ids.SEQ_LEN, "value", 40)
        assert s.props[(ids.GRAD_GRAPH, "figure")]["data"]
        s.props[(ids.STEPS, "value")] = 20
        s.props[(ids.TRAIN_PLAY, "n_clicks")] = 1
        dep = next(d for d in s.deps if d.get("background") and d["output"].startswith(ids.TRAIN_RESULT))
        s.run_background(dep, [f"{ids.TRAIN_PLAY}.n_clicks"], interval=0.3, timeout=180)
        final = s.props[(ids.TRAIN_RESULT, "data")]
        assert final["status"] == "done" and all(h["step"] == 20 for h in final["archs"].values()), final
