"""Background training jobs end to end: real redis-server, real Celery worker, gunicorn with two
workers, and the requests the browser makes (progress polls, cancel)."""
from __future__ import annotations

import pytest

from tests.server import jobapp
from tests.server.jobapp import job_running, open_page, press_start
from visualizer import limits

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(procs, redis_url):
    """Celery worker + gunicorn (2 workers) on the test job app, both on the test Redis."""
    procs.env.update(BPTTLAB_REDIS_URL=redis_url, BPTTLAB_APP="tests.server.jobapp")
    procs.celery_worker(concurrency=2)
    _, base = procs.gunicorn("tests.server.jobapp:server")
    return base


def test_training_job_reports_progress_and_result(stack, http):
    s = open_page(stack, http, steps=30, pace=0.03)
    seen = []
    press_start(s, on_progress=lambda d: seen.append((d.get("progress") or {}).get(f"{jobapp.PROGRESS}.children")))
    steps = [int(p.split()[1].split("/")[0]) for p in seen if p]
    assert steps, "no progress reported"
    assert steps == sorted(steps)
    assert s.props[(jobapp.RESULT, "children")].startswith("finished 30 steps; loss ")
    assert s.props[(jobapp.QUICK_OUT, "children")] == "quick 2"


def test_cancel_stops_the_job_and_frees_the_users_slot(stack, http):
    s = open_page(stack, http, steps=5000, pace=0.02)
    out = press_start(s, cancel_when=lambda d: bool(d.get("progress")))
    assert out is None or not out.get("response")  # cancelled: no result
    assert s.props.get((jobapp.RESULT, "children")) is None
    assert s.props[(jobapp.PROGRESS, "children")].startswith("step ")
    # one job per user: the cancelled job's slot is free again at once
    s.props[(jobapp.STEPS, "value")], s.props[(jobapp.PACE, "value")] = 5, 0.0
    press_start(s)
    assert s.props[(jobapp.RESULT, "children")].startswith("finished 5 steps")


def test_a_second_job_of_the_same_user_gets_the_cap_message(stack, http):
    user = limits.new_user_id()
    first = open_page(stack, http, user=user, steps=400, pace=0.02)
    second = open_page(stack, http, user=user, steps=3, pace=0.0)
    with job_running(first):
        press_start(second)
        assert "already have 1 training job running" in second.props[(jobapp.RESULT, "children")]
        other = open_page(stack, http, steps=3, pace=0.0)  # another student is not affected
        press_start(other)
        assert other.props[(jobapp.RESULT, "children")].startswith("finished 3 steps")
    assert first.props[(jobapp.RESULT, "children")].startswith("finished 400 steps")


def test_a_job_that_overflows_to_nan_ends_with_its_result(stack, http):
    s = open_page(stack, http, steps=200, lr=1e12, pace=0.0)
    press_start(s)
    result = s.props[(jobapp.RESULT, "children")]
    assert result.startswith("diverged at step "), result
    assert "nan" in result or "inf" in result
