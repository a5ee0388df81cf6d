"""visualizer.jobs and visualizer.limits without servers: managers, Redis outages, job slots."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest
from dash import Dash, html

from tests.server.conftest import ROOT, free_port
from visualizer import cluster, ids, jobs, leases, limits, storage
from visualizer.urlstate import Params


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache folder, no Redis, default limits; the per-process memos cleared."""
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    for name in (cluster.REDIS_ENV, storage.SECRET_ENV, limits.TIME_LIMIT_ENV, "BPTTLAB_MAX_JOBS",
                 "BPTTLAB_MAX_JOBS_PER_USER", "BPTTLAB_MAX_QUEUED"):
        monkeypatch.delenv(name, raising=False)
    cluster._health.clear()
    yield
    cluster._health.clear()


@pytest.fixture
def dead_redis(monkeypatch):
    """BPTTLAB_REDIS_URL pointing at a port nothing listens on."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv(cluster.REDIS_ENV, url)
    monkeypatch.setenv(storage.SECRET_ENV, "a-cluster-secret-of-enough-length")
    return url


def returns_promptly(fn, seconds=20.0):
    """Run ``fn`` in a thread; its result, or fail if it hangs (a liveness check, not a speed test)."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # re-raised in the test's thread
            box["error"] = e
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn} hung"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ----------------------------------------------------------------------------- jobs
def test_default_manager_is_one_shared_diskcache(tmp_path):
    m = jobs.background_manager()
    assert isinstance(m, jobs.SharedDiskcacheManager)
    assert m is jobs.background_manager()
    assert str(tmp_path / "cache") in m.handle.directory


def test_celery_manager_when_redis_is_configured(dead_redis):
    m = jobs.background_manager()
    assert isinstance(m, jobs.SafeCeleryManager)
    assert m.handle is jobs.celery_app(dead_redis)
    conf = m.handle.conf
    assert conf.task_time_limit > limits.time_limit() and conf.task_acks_late and conf.task_track_started
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit < conf.broker_transport_options["visibility_timeout"] < 600  # short jobs


def test_every_job_start_gets_its_own_key(tmp_path):
    m = jobs.background_manager()
    def fn(a):
        return a
    first, second = (m.build_cache_key(fn, [1, 2], [], None) for _ in range(2))
    assert first != second and first.split("-")[0] == second.split("-")[0]


def test_redis_without_a_shared_secret_refuses_to_start(monkeypatch, dead_redis):
    monkeypatch.delenv(storage.SECRET_ENV)
    jobs._manager.cache_clear()
    with pytest.raises(storage.UnsafeStorage, match="BPTTLAB_SECRET_KEY is not set"):
        jobs.background_manager()
    with pytest.raises(storage.UnsafeStorage, match="BPTTLAB_SECRET_KEY"):
        jobs.check_cluster()
    monkeypatch.setenv(storage.SECRET_ENV, "short")
    with pytest.raises(storage.UnsafeStorage, match="too short"):
        jobs.check_cluster()


def test_redis_down_is_reported_not_waited_for(dead_redis):
    ok, message = returns_promptly(cluster.jobs_available)
    assert (ok, message) == (False, cluster.UNAVAILABLE)
    m = jobs.background_manager()
    with pytest.raises(jobs.JobsUnavailable, match="unavailable"):
        returns_promptly(lambda: m.call_job_fn("key", None, [], {}))
    assert returns_promptly(jobs.check_cluster).startswith("Redis at ")  # not checked, not hung


def test_polls_of_a_job_whose_redis_vanished_end_it_with_the_message(dead_redis):
    m = jobs.background_manager()
    assert returns_promptly(lambda: m.job_running("some-task-id")) is False
    assert returns_promptly(lambda: m.get_progress("key")) is None
    result = returns_promptly(lambda: m.get_result("key", "some-task-id"))
    assert result == {"background_callback_error": {"msg": jobs.LOST, "tb": ""}}
    assert returns_promptly(lambda: m.get_updated_props("key")) == {}
    returns_promptly(lambda: m.terminate_job("some-task-id"))  # logged, not raised


def test_the_health_verdict_is_cached_briefly(dead_redis, monkeypatch):
    calls = []
    monkeypatch.setattr(cluster, "_ping", lambda url, timeout: calls.append(url) or True)
    assert cluster.redis_healthy() and cluster.redis_healthy()
    assert len(calls) == 1
    assert cluster.redis_healthy(max_age=0.0) and len(calls) == 2


def test_job_functions_run_as_their_lease():
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    seen = []
    wrapped = jobs._in_lease(lambda a, b=0: seen.append((limits.CURRENT_LEASE.get(), a, b)))
    context_value.set(AttributeDict({jobs.LEASE_KEY: "lease-7"}))
    wrapped(1, b=2)
    assert seen == [("lease-7", 1, 2)] and limits.CURRENT_LEASE.get() is None


def test_time_limit_setting(monkeypatch):
    assert limits.time_limit() == limits.DEFAULT_TIME_LIMIT
    monkeypatch.setenv(limits.TIME_LIMIT_ENV, "30")
    assert limits.time_limit() == 30.0
    for bad in ("-1", "nan", "soon", "1e9"):
        monkeypatch.setenv(limits.TIME_LIMIT_ENV, bad)
        assert limits.time_limit() == limits.DEFAULT_TIME_LIMIT


def test_error_messages_for_users():
    assert jobs.error_message(jobs.JobsUnavailable(jobs.UNAVAILABLE)) == jobs.UNAVAILABLE
    assert jobs.error_message(limits.LimitReached("You already have 1")) == "You already have 1"
    lost = RuntimeError(f"An error occurred inside a background callback: {jobs.LOST}\ntb")
    assert jobs.error_message(lost) == jobs.LOST
    assert jobs.error_message(RuntimeError("WorkerLostError('Worker exited prematurely: signal 9')")) \
        == jobs.LOST_WORKER
    assert jobs.error_message(ConnectionRefusedError()) == jobs.UNAVAILABLE
    assert jobs.error_message(ValueError("lr must be > 0\nTraceback ...")) == "The job failed: lr must be > 0"
    wrapped = RuntimeError("An error occurred inside a background callback: out of memory\nTraceback ...")
    assert jobs.error_message(wrapped) == "The job failed: out of memory"


def test_error_messages_without_the_server_packages():
    code = ("import sys; sys.modules['kombu'] = sys.modules['redis'] = sys.modules['celery'] = None\n"
            "from visualizer import jobs\n"
            "print(jobs.error_message(RuntimeError('An error occurred inside a background callback: boom')))\n"
            "print(jobs.error_message(ConnectionResetError()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["The job failed: boom", jobs.UNAVAILABLE]


# ----------------------------------------------------------------------------- limits
def test_work_caps_name_the_fields():
    assert limits.training_message(Params(), steps=300, batch=32) is None
    message = limits.training_message(Params(seq_len=1000, hidden=256, batch=16), steps=2000)
    assert "Lower steps, seq_len, batch or hidden" in message


@pytest.mark.parametrize("raw, ok", [("0123456789abcdef0123456789abcdef", True), ("short", False), (None, False),
                                     (12345678901, False), ("a" * 65, False), ("../../etc/passwd", False),
                                     ("<script>x</script>", False), ("loadtest-0001-ffee", True)])
def test_user_ids_are_only_trusted_for_their_shape(raw, ok):
    assert (limits.clean_user_id(raw) == raw) is ok
    assert limits.clean_user_id(raw) in (raw, limits.ANONYMOUS)
    assert limits.clean_user_id(limits.new_user_id()) != limits.ANONYMOUS


def test_the_user_id_is_found_in_a_jobs_context():
    uid = limits.new_user_id()
    context = {"inputs_list": [{"id": "train-play", "property": "n_clicks", "value": 1}],
               "states_list": [{"id": "x", "property": "data", "value": "y"},
                               {"id": ids.USER_STORE, "property": "data", "value": uid}]}
    assert limits.user_id_in(context) == uid
    assert limits.user_id_in({"states_list": [{"id": ids.USER_STORE, "property": "data", "value": "../x"}]}) \
        == limits.ANONYMOUS
    assert limits.user_id_in({}) == limits.user_id_in(None) == limits.ANONYMOUS


def test_the_browser_gets_a_local_store_and_a_clientside_id():
    app = Dash(__name__)
    app.layout = html.Div([limits.user_store()])
    limits.register_identity(app)
    stores = {c.id: c for c in limits.user_store().children}
    assert stores[ids.USER_STORE].storage_type == "local"
    assert stores[ids.USER_RULES].data == {"pattern": limits.USER_ID_PATTERN}
    assert any(ids.USER_STORE in key for key in app.callback_map)


@pytest.fixture(params=["file", "redis"])
def store(request, tmp_path):
    if request.param == "file":
        return leases.FileSlots(tmp_path)
    url = request.getfixturevalue("redis_url")
    return leases.RedisSlots(url, prefix=f"test:{tmp_path.name}")


def test_caps_per_user_and_in_total(store):
    assert store.admit("ann", "j1", 60, 2, 1) == 0
    assert store.admit("ann", "j2", 60, 2, 1) == 2  # ann is at her cap
    assert store.admit("bob", "j3", 60, 2, 1) == 0
    assert store.admit("cat", "j4", 60, 2, 1) == 1  # full
    assert store.counts("ann") == (2, 1)
    store.release("j1")
    assert store.counts("ann") == (1, 0)
    assert store.admit("cat", "j4", 60, 2, 1) == 0
    store.release("no-such-job")  # harmless


def test_a_lease_is_queued_then_running_then_done(store):
    for lease in ("a", "b", "c"):
        assert store.admit(f"user-{lease}", lease, 60, 10, 1) == 0
    assert [store.position(x) for x in "abc"] == [1, 2, 3]
    assert store.state("a") == "queued"
    assert store.start("a", 15)
    assert store.state("a") == "running" and store.position("a") is None
    assert [store.position(x) for x in "bc"] == [1, 2]
    store.release("a")
    assert store.state("a") == "done"
    assert not store.start("a", 15)  # a released (cancelled) job does not start
    assert store.state("never-admitted") == "lost"


def test_a_lease_that_is_not_renewed_is_lost(store):
    assert store.admit("ann", "j1", 60, 1, 1) == 0
    assert store.start("j1", -1.0)  # as if its worker died a while ago
    assert store.state("j1") == "lost"
    assert store.admit("bob", "j2", 60, 1, 1) == 0  # its slot is free
    assert not store.start("j1", 15)


def _grab(folder):
    return leases.FileSlots(folder).admit(limits.new_user_id(), limits.new_user_id(), 60, 3, 1)


def test_file_slots_hold_across_processes(tmp_path):
    with ProcessPoolExecutor(4) as pool:
        codes = list(pool.map(_grab, [str(tmp_path)] * 12))
    assert codes.count(0) == 3 and codes.count(1) == 9


def test_job_slot_messages_release_and_time_limit(tmp_path):
    lim = limits.Limits(per_user=1, total=5, time_limit=1e-9)
    with limits.job_slot("u" * 16, lim) as slot:
        assert slot.expired()  # the time limit is over at once
        assert "time limit" in slot.time_message()
        with pytest.raises(limits.LimitReached, match="already have 1 training job running"), \
                limits.job_slot("u" * 16, lim):
            pass
        slot.touch()
    with limits.job_slot("u" * 16, lim):  # released on exit
        pass


def test_a_job_runs_under_the_lease_its_web_server_admitted(tmp_path):
    lim = limits.Limits(per_user=1, total=5)
    assert limits.admit("u" * 16, "lease-1", lim) is None
    assert "already have 1" in limits.admit("u" * 16, "lease-2", lim)  # the second start of that user
    token = limits.CURRENT_LEASE.set("lease-1")
    try:
        with limits.job_slot("u" * 16, lim):
            assert leases.slots().state("lease-1") == "running"
        assert leases.slots().state("lease-1") == "done"
        with pytest.raises(limits.LimitReached, match="cancelled"), limits.job_slot("u" * 16, lim):
            pass  # a lease that is gone (released by a cancel) never runs
    finally:
        limits.CURRENT_LEASE.reset(token)


def test_renewals_are_throttled():
    calls, now = [], [0.0]
    store = type("S", (), {"touch": lambda self, *a: calls.append(a)})()
    slot = limits.JobSlot(store, "u", "l", limits.Limits(), clock=lambda: now[0])
    for t in (0.1, 0.5, 0.99, 1.0, 1.5, 2.2):
        now[0] = t
        slot.touch()
    assert len(calls) == 2


def test_admission_with_redis_down(dead_redis):
    assert returns_promptly(lambda: limits.admit("u" * 16, "x")) == jobs.UNAVAILABLE


def test_admission_without_redis(tmp_path):
    lim = limits.Limits(per_user=1, total=1)
    assert limits.admit("u" * 16, "j1", lim) is None
    assert "server is busy" in limits.admit("v" * 16, "j2", lim)


def test_admission_with_redis_counts_live_workers(redis_url, monkeypatch):
    monkeypatch.setenv(cluster.REDIS_ENV, redis_url)
    lim = limits.Limits(per_user=1, queue=1)
    assert limits.admit("u" * 16, "j0", lim) == limits.NO_WORKER  # nobody would run it
    client = cluster.redis_client(redis_url)
    cluster.announce_worker(client, "w1", 1)
    assert limits.admit("a" * 16, "j1", lim) is None
    assert limits.admit("b" * 16, "j2", lim) is None  # waits: one slot + one queued
    assert "busy" in limits.admit("c" * 16, "j3", lim)
    cluster.announce_worker(client, "w2", 2)  # a machine added is capacity added
    assert limits.admit("c" * 16, "j3", lim) is None
    assert leases.slots().position("j2") == 2
    cluster.withdraw_worker(client, "w1")
    cluster.withdraw_worker(client, "w2")
    assert cluster.capacity(client) == 0


def test_cluster_settings_must_agree(redis_url):
    client = cluster.redis_client(redis_url)
    mine = limits.cluster_settings(limits.Limits(per_user=1), b"s" * 32)
    cluster.verify_config(client, mine)
    cluster.verify_config(client, mine)  # the same again: fine
    other = limits.cluster_settings(limits.Limits(per_user=2), b"s" * 32)
    with pytest.raises(cluster.ConfigMismatch, match="per_user=2 here but 1 on the cluster"):
        cluster.verify_config(client, other)
    with pytest.raises(cluster.ConfigMismatch, match="secret"):
        cluster.verify_config(client, limits.cluster_settings(limits.Limits(per_user=1), b"t" * 32))
