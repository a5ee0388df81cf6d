"""In a real browser, on Celery + Redis: training shows progress and its result; with Redis
stopped the page says "background jobs unavailable" and the plots keep working; with Redis
back, training works again, without restarting anything."""
from __future__ import annotations

import os
import secrets
import shutil
import time

import pytest

from tests.server.conftest import Procs, RedisServer
from visualizer import cluster, jobs, storage

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PLAY, MESSAGE, STATUS_LINE = "#train-play", "#train-message", "#train-status-line"


@pytest.fixture
def celery_app_in_browser(tmp_path, monkeypatch, dash_duo):
    """A private Redis, a Celery worker on the app, and the app itself in dash_duo, all on that Redis."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    redis = RedisServer(tmp_path).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPTTLAB_")}
    secret = secrets.token_hex(32)
    env.update(BPTTLAB_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(Procs.root()), PYTHONUNBUFFERED="1",
               BPTTLAB_REDIS_URL=redis.url, BPTTLAB_SECRET_KEY=secret)
    procs = Procs(tmp_path, env)
    monkeypatch.setenv(cluster.REDIS_ENV, redis.url)
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(storage.SECRET_ENV, secret)
    try:
        from visualizer.app import create_app

        app = create_app(background_callback_manager=jobs.background_manager())
        if not any(cb.get("background") for cb in app.callback_map.values()):
            pytest.skip("the app has no training panel yet")
        procs.celery_worker(concurrency=1)
        dash_duo.start_server(app)
        yield dash_duo, redis
    finally:
        procs.close()
        redis.stop()


def points(duo):
    """Points of the first trace of the gradient-norm plot (one per time step)."""
    return duo.driver.execute_script(
        "const g = document.querySelector('#grad-norm-graph .js-plotly-plot');"
        "return g && g._fullData && g._fullData.length ? g._fullData[0].x.length : null;")


def status_text(duo):
    return duo.find_element(STATUS_LINE).text


def wait_for(duo, check, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} (status: {status_text(duo)!r}, message: {duo.find_element(MESSAGE).text!r})")


def set_steps(duo, steps):
    """Type ``steps`` into the training card's steps field."""
    field = duo.find_element("#train-steps-input")
    field.clear()
    field.send_keys(str(steps))


def test_jobs_unavailable_while_redis_is_down_then_back(celery_app_in_browser):
    duo, redis = celery_app_in_browser
    duo.wait_for_element("#grad-norm-graph .main-svg", timeout=30)
    set_steps(duo, 20)
    duo.find_element(PLAY).click()
    wait_for(duo, lambda: "(done)" in status_text(duo), "the run did not finish")

    redis.stop()
    duo.find_element(PLAY).click()
    wait_for(duo, lambda: "Background jobs are unavailable" in duo.find_element(MESSAGE).text,
             "no 'jobs unavailable' message")
    duo.wait_for_page(url=f"{duo.server_url}/?seq_len=37")  # pages and plots keep working
    wait_for(duo, lambda: points(duo) == 37, "the plot did not render with Redis down", timeout=30)

    redis.start()  # same port; nothing restarted
    set_steps(duo, 10)

    def trained():
        duo.find_element(PLAY).click()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if "(done)" in status_text(duo) and status_text(duo).startswith("Step 10 "):
                return True
            if "unavailable" in duo.find_element(MESSAGE).text and "(training)" not in status_text(duo):
                return False
            time.sleep(0.2)
        return False
    wait_for(duo, trained, "training did not work again after Redis came back", timeout=90)
    assert duo.get_logs() == []


def test_train_right_after_pause_or_reset_is_admitted(celery_app_in_browser):
    """▶ Train enabled again after ⏸ Pause or ↺ Reset means the cancelled job's slot is free (one job per
    user): the press continues (or starts over) instead of being refused."""
    duo, _ = celery_app_in_browser
    duo.wait_for_element("#grad-norm-graph .main-svg", timeout=30)
    set_steps(duo, 300)
    duo.find_element(PLAY).click()
    for stop in ("#train-pause", "#train-pause", "#train-reset"):
        wait_for(duo, lambda: "(training)" in status_text(duo), "no progress")
        duo.find_element(stop).click()
        wait_for(duo, lambda: duo.find_element(PLAY).is_enabled(), "▶ Train not enabled again", timeout=30)
        duo.find_element(PLAY).click()  # at once
    wait_for(duo, lambda: "(training)" in status_text(duo), "the last start did not train")
    assert duo.find_element(MESSAGE).text == ""  # never refused, nor reported lost
    duo.find_element("#train-pause").click()
    wait_for(duo, lambda: duo.find_element(PLAY).is_enabled(), "▶ Train not enabled after the last pause")
    assert "(paused)" in status_text(duo) and duo.find_element(MESSAGE).text == ""
    assert duo.get_logs() == []


LOSS_POINTS_JS = """
const gd = document.querySelector('#train-progress-graph .js-plotly-plot');
return gd && gd._fullData ? gd._fullData.filter(t => t.showlegend && t.meta !== 'reference')
    .map(t => (t.y || []).filter(v => v !== null && v !== undefined).length) : null;
"""


def test_a_paused_run_after_reset_shows_its_loss_curves(celery_app_in_browser):
    """↺ Reset -> ▶ Train -> ⏸ Pause: the paused card shows the losses so far, not an empty figure."""
    duo, _ = celery_app_in_browser
    duo.wait_for_element("#grad-norm-graph .main-svg", timeout=30)
    for _ in range(3):
        duo.find_element("#train-reset").click()
        wait_for(duo, lambda: status_text(duo) == "Ready.", "Reset did not clear the card")
        wait_for(duo, lambda: duo.find_element(PLAY).is_enabled(), "▶ Train not enabled after Reset")
        duo.find_element(PLAY).click()
        wait_for(duo, lambda: "(training)" in status_text(duo), "no progress")
        duo.find_element("#train-pause").click()
        wait_for(duo, lambda: duo.find_element(PLAY).is_enabled(), "▶ Train not enabled after the pause")
        time.sleep(2)
        shown = duo.driver.execute_script(LOSS_POINTS_JS) or []
        assert "(paused)" in status_text(duo) and shown and min(shown) > 0, (status_text(duo), shown)
    assert duo.get_logs() == []
