"""Celery jobs, Pause and Reset: what the page's polls learn while a cancel frees the job's slot, and a
result written as a job ends. The web side's manager on a real Redis; the worker is played by the
test (it writes the states and the result a worker writes), so each interleaving is exact."""
from __future__ import annotations

import json

import pytest
from dash.background_callback.managers import BaseBackgroundCallbackManager

from visualizer import cluster, jobs, leases, limits, storage

# Celery's Redis result store writes a result (as a worker does here) with redis-py's deprecated setex
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")]
USER = "c" * 16


@pytest.fixture
def manager(redis_url, tmp_path, monkeypatch):
    """A web server's Celery manager on the test Redis (its own Celery app), one worker slot announced.

    Dash registers every background callback defined in this process with every manager, and a new
    manager with all of them: the test's manager is kept out of those global lists (other tests'
    apps would otherwise become tasks of its Celery app), and has the one task of this file."""
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(cluster.REDIS_ENV, redis_url)
    monkeypatch.setenv(storage.SECRET_ENV, "a-cluster-secret-of-enough-length")
    for name in ("BPTTLAB_MAX_JOBS_PER_USER", "BPTTLAB_MAX_QUEUED", "BPTTLAB_MAX_JOBS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(BaseBackgroundCallbackManager, "functions", [])
    monkeypatch.setattr(BaseBackgroundCallbackManager, "managers", [])
    cluster._health.clear()
    client = cluster.redis_client(redis_url)
    cluster.announce_worker(client, "test-worker", 1)
    app = jobs.celery_app.__wrapped__(redis_url)  # not the process's cached app
    m = jobs.SafeCeleryManager(app)
    m.job_fn = m.make_job_fn(_train, True, key="cancel-test")
    yield m
    app.close()
    cluster.withdraw_worker(client, "test-worker")
    client.close()
    cluster._health.clear()


def _train(set_progress):
    """Never runs here: no worker consumes the queue (the test plays the worker)."""


def start(manager, key, running=True) -> str:
    """Start a job of USER under Dash's cache ``key``, as a page's ▶ Train; if ``running``, a worker took it."""
    lease = manager.call_job_fn(key, manager.job_fn, [], {"states_list": [
        {"id": "user-id-store", "property": "data", "value": USER}]})
    if running:
        assert leases.slots().start(lease, leases.HEARTBEAT_TTL)  # limits.job_slot in the worker
        manager.handle.backend.store_result(lease, None, "STARTED")  # task_track_started
    return lease


def second_start_admitted(manager, key) -> bool:
    """A second ▶ Train of USER is admitted (the per-user limit is 1 by default)."""
    try:
        start(manager, key, running=False)
    except limits.LimitReached:
        return False
    return True


@pytest.mark.parametrize("worker_first", [True, False], ids=["worker-killed-it-first", "worker-not-yet"])
def test_a_cancelled_job_ends_for_the_page_only_once_its_slot_is_free(manager, monkeypatch, worker_first):
    lease = start(manager, "key-1")
    seen = []
    release = jobs._release

    def polled_then_released(job):  # a poll of the page between the cancel's revoke and the release
        if worker_first:  # the worker killed the job and wrote REVOKED before this process freed its lease
            manager.handle.backend.mark_as_revoked(lease, "terminated")
        seen.append((manager.get_result("key-1", lease), manager.job_running(lease)))
        release(job)

    monkeypatch.setattr(jobs, "_release", polled_then_released)
    manager.terminate_job(lease)
    monkeypatch.setattr(jobs, "_release", release)
    # still running for the page (▶ stays disabled, a press would be refused) and not reported lost
    assert seen == [(manager.UNDEFINED, True)]
    # then ended, with the slot free: the next press is admitted
    assert manager.get_result("key-1", lease) is manager.UNDEFINED and not manager.job_running(lease)
    assert leases.slots().counts(USER) == (0, 0)
    assert second_start_admitted(manager, "key-2")


def test_a_job_cancelled_while_queued_ends_at_once(manager):
    """Pause on a job still waiting in the queue: it ends for the page once its slot is free, whether or
    not a worker answered the revoke (a worker marks a waiting job REVOKED when it gets the broadcast;
    one that missed it, reconnecting to Redis, learns of it only when it takes the job's message)."""
    lease = start(manager, "key-3", running=False)
    assert manager.get_progress("key-3")[0] == {"queued": 1} and manager.job_running(lease)
    manager.terminate_job(lease)
    assert manager.get_result("key-3", lease) is manager.UNDEFINED and not manager.job_running(lease)
    assert leases.slots().counts(USER) == (0, 0)
    assert second_start_admitted(manager, "key-4")


def test_a_result_written_as_the_job_ends_is_collected(manager):
    lease = start(manager, "key-5")
    assert manager.get_result("key-5", lease) is manager.UNDEFINED  # a poll reads no result yet...
    # ...the job ends now, as a worker ends it: lease released (job_slot), result written, SUCCESS stored
    leases.slots().release(lease)
    manager.handle.backend.set("key-5", json.dumps("finished 3 steps"))
    manager.handle.backend.mark_as_done(lease, None)
    # ...and the poll asks next whether it runs: it must (Dash ends a job that does not run and has
    # no result as cancelled: the page would keep its last progress and never get the result)
    assert manager.job_running(lease)
    assert manager.get_result("key-5", lease) == "finished 3 steps"  # the next poll collects it
    assert not manager.job_running(lease)
    assert leases.slots().counts(USER) == (0, 0)


def test_a_job_whose_worker_died_is_still_reported_lost(manager):
    lease = start(manager, "key-6")
    manager.handle.backend.mark_as_failure(lease, RuntimeError("Worker exited prematurely"))
    assert manager.get_result("key-6", lease) == {"background_callback_error": {"msg": jobs.LOST_WORKER, "tb": ""}}
    assert leases.slots().counts(USER) == (0, 0)
