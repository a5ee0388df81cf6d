"""The app's own training panel on Celery + Redis behind gunicorn (2 workers): progress, pause
(Dash's cancel) and resume, a run that overflows to NaN, and "jobs unavailable" while Redis is down.

One server stack for the module (starting a Celery worker and gunicorn costs seconds).
"""
from __future__ import annotations

import os
import secrets

import pytest
import requests

from tests.server.conftest import Procs, RedisServer, wait_until
from tests.server.dash_http import DashSession
from visualizer import ids, jobs, limits

pytestmark = pytest.mark.slow
PLAY, PAUSE, STEPS = "train-play", "train-pause", "train-steps-input"
RESULT, PROGRESS = "train-result-store", "train-progress-store"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A private redis-server, a Celery worker and gunicorn, all on the full app."""
    import shutil

    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    folder = tmp_path_factory.mktemp("stack")
    redis = RedisServer(folder).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPTTLAB_")}
    env.update(BPTTLAB_CACHE_DIR=str(folder / "cache"), PYTHONPATH=str(Procs.root()), PYTHONUNBUFFERED="1",
               BPTTLAB_REDIS_URL=redis.url, BPTTLAB_APP="visualizer.app",
               BPTTLAB_SECRET_KEY=secrets.token_hex(32))
    procs = Procs(folder, env)
    try:
        procs.celery_worker(concurrency=2)
        _, base = procs.gunicorn("visualizer.app:server")
        yield base, redis
    finally:
        procs.close()
        redis.stop()


def page(base, search=""):
    """A loaded page (initial callbacks done) with a fresh user id."""
    s = DashSession(base, requests.Session()).load(search)
    s.props[(ids.USER_STORE, "data")] = limits.new_user_id()
    return s


def job(s):
    return next(d for d in s.deps if d.get("background") and d["output"].startswith(RESULT))


def train(s, steps, **kwargs):
    """Press ▶ Train with ``steps`` steps and follow the job as the browser does."""
    s.props[(STEPS, "value")] = steps
    s.props[(PLAY, "n_clicks")] = (s.props.get((PLAY, "n_clicks")) or 0) + 1
    dep = job(s)
    return s.run_background(dep, [f"{PLAY}.n_clicks"], interval=dep["background"]["interval"] / 1000,
                            timeout=120, **kwargs)


def test_training_runs_with_progress_to_its_result(stack):
    base, _ = stack
    s = page(base)
    seen = []
    train(s, 40, on_progress=lambda d: seen.append((d.get("progress") or {}).get(f"{PROGRESS}.data")))
    steps = [max(h["step"] for h in p["archs"].values()) for p in seen if p and "archs" in p]  # not {"queued": n}
    assert steps and steps == sorted(steps)
    result = s.props[(RESULT, "data")]
    assert result["status"] == "done" and result.get("note") is None
    assert sorted(result["archs"]) == ["gru", "lstm", "rnn"]
    assert all(h["step"] == 40 and len(h["losses"]) == 40 for h in result["archs"].values())
    s.http.close()


def test_pause_cancels_the_job_and_train_continues(stack):
    base, _ = stack
    s = page(base)
    out = train(s, 2000, cancel_when=lambda d: bool(d.get("progress")))
    assert out is None and s.props.get((RESULT, "data")) is None  # cancelled: no result
    progress = s.props[(PROGRESS, "data")]
    assert progress["status"] == "running"
    train(s, 3)  # the slot of the cancelled job is free: a new run starts at once
    assert s.props[(RESULT, "data")]["status"] == "done"
    s.http.close()


def test_a_run_that_overflows_to_nan_ends_with_its_result(stack):
    base, _ = stack
    s = page(base, "?arch=rnn-relu&init=normal&scale=5&lr=10&optimizer=sgd&seq_len=50")
    train(s, 200)
    result = s.props[(RESULT, "data")]
    history = result["archs"]["rnn-relu"]
    assert history["diverged"] and history["step"] < 200
    assert any(v in ("nan", "inf") for v in history["losses"] + history["grad_norms"])
    assert result["status"] == "done"
    s.http.close()


def test_redis_down_gives_the_message_and_jobs_return(stack):
    base, redis = stack
    s = page(base)
    redis.stop()
    try:
        train(s, 5)
        assert s.props[(RESULT, "data")] == {"error": jobs.UNAVAILABLE}
        s.set("seq-len-slider", "value", 30)  # the quick views keep working
        assert s.search().startswith("?arch=rnn,lstm,gru&seq_len=30&")
        assert len(s.props[("grad-norm-graph", "figure")]["data"]) >= 3
    finally:
        redis.start()

    def works():
        train(s, 5)
        return s.props[(RESULT, "data")].get("status") == "done"
    wait_until(works, 60, "training after Redis came back")
    s.http.close()
