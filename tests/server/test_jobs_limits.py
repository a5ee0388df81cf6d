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
from visualizer import jobs, limits
from visualizer.urlstate import Params


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache folder, no Redis, default limits; the per-process memos cleared."""
    monkeypatch.setenv(jobs.CACHE_ENV, str(tmp_path / "cache"))
    for name in (jobs.REDIS_ENV, jobs.SECRET_ENV, jobs.TIME_LIMIT_ENV, "BPTTLAB_MAX_JOBS", "BPTTLAB_MAX_JOBS_PER_USER"):
        monkeypatch.delenv(name, raising=False)
    jobs._health.clear()
    yield
    jobs._health.clear()


@pytest.fixture
def dead_redis(monkeypatch):
    """BPTTLAB_REDIS_URL pointing at a port nothing listens on."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv(jobs.REDIS_ENV, url)
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
    assert m.handle.conf.task_time_limit > jobs.time_limit()


def test_redis_down_is_reported_not_waited_for(dead_redis):
    ok, message = returns_promptly(jobs.jobs_available)
    assert (ok, message) == (False, jobs.UNAVAILABLE)
    m = jobs.background_manager()
    with pytest.raises(jobs.JobsUnavailable, match="unavailable"):
        returns_promptly(lambda: m.call_job_fn("key", None, [], {}))


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
    monkeypatch.setattr(jobs, "_ping", lambda url, timeout: calls.append(url) or True)
    assert jobs.redis_healthy() and jobs.redis_healthy()
    assert len(calls) == 1
    assert jobs.redis_healthy(max_age=0.0) and len(calls) == 2


def test_signing_secret_is_shared_by_processes_and_overridable(monkeypatch, tmp_path):
    script = "from visualizer import jobs; print(jobs.shared_secret().decode())"
    env = {"PATH": "/usr/bin:/bin", jobs.CACHE_ENV: str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    first, second = (subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                    check=True).stdout.strip() for _ in range(2))
    assert first == second == jobs.shared_secret().decode() and len(first) == 64
    assert (tmp_path / "cache" / "signing-secret").stat().st_mode & 0o077 == 0
    monkeypatch.setenv(jobs.SECRET_ENV, "from-the-environment")
    assert jobs.shared_secret() == b"from-the-environment"
    assert jobs.SharedDiskcacheManager(None).get_or_create_signing_secret(lambda: b"x") == b"from-the-environment"


def test_job_functions_know_their_job_id():
    seen = []
    wrapped = jobs._with_job_id(lambda a, b=0: seen.append((jobs.current_job_id(), a, b)), lambda: "job-7")
    wrapped(1, b=2)
    assert seen == [("job-7", 1, 2)] and jobs.current_job_id() is None


def test_time_limit_setting(monkeypatch):
    assert jobs.time_limit() == jobs.DEFAULT_TIME_LIMIT
    monkeypatch.setenv(jobs.TIME_LIMIT_ENV, "30")
    assert jobs.time_limit() == 30.0
    for bad in ("-1", "nan", "soon", "1e9"):
        monkeypatch.setenv(jobs.TIME_LIMIT_ENV, bad)
        assert jobs.time_limit() == jobs.DEFAULT_TIME_LIMIT


def test_error_messages_for_users():
    assert jobs.error_message(jobs.JobsUnavailable(jobs.UNAVAILABLE)) == jobs.UNAVAILABLE
    lost = RuntimeError(f"An error occurred inside a background callback: {jobs.LOST}\ntb")
    assert jobs.error_message(lost) == jobs.LOST
    assert jobs.error_message(ConnectionRefusedError()) == jobs.UNAVAILABLE
    assert jobs.error_message(ValueError("lr must be > 0\nTraceback ...")) == "The job failed: lr must be > 0"
    wrapped = RuntimeError("An error occurred inside a background callback: out of memory\nTraceback ...")
    assert jobs.error_message(wrapped) == "The job failed: out of memory"


# ----------------------------------------------------------------------------- limits
def test_work_caps_name_the_fields():
    assert limits.request_message(Params()) is None
    big = Params(seq_len=2000, hidden=512, batch=64, layers=4)  # not clamped here: a raw Params
    assert "seq_len, batch or hidden" in limits.request_message(big)
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


def test_the_browser_gets_a_local_store_and_a_clientside_id():
    app = Dash(__name__)
    app.layout = html.Div([limits.user_store()])
    limits.register_identity(app)
    assert limits.user_store().storage_type == "local"
    assert any(limits.USER_STORE in key for key in app.callback_map)
    assert "getRandomValues" in limits.ASSIGN_USER_JS  # also works on plain http (no randomUUID there)


@pytest.fixture(params=["file", "redis"])
def store(request, tmp_path):
    if request.param == "file":
        return limits.FileSlots(tmp_path)
    url = request.getfixturevalue("redis_url")
    return limits.RedisSlots(url, prefix=f"test:{tmp_path.name}")


def test_caps_per_user_and_in_total(store):
    lim = limits.Limits(per_user=1, total=2)
    assert store.acquire("ann", "j1", 60, lim) == 0
    assert store.acquire("ann", "j2", 60, lim) == 2  # ann is at her cap
    assert store.acquire("bob", "j3", 60, lim) == 0
    assert store.acquire("cat", "j4", 60, lim) == 1  # the server is full
    assert store.counts("ann") == (2, 1)
    store.release("j1")
    assert store.counts("ann") == (1, 0)
    assert store.acquire("cat", "j4", 60, lim) == 0
    store.release("no-such-job")  # harmless


def test_expired_leases_free_their_slot(store):
    lim = limits.Limits(per_user=1, total=1)
    assert store.acquire("ann", "j1", -1.0, lim) == 0  # already expired: as if its process died long ago
    assert store.acquire("bob", "j2", 60, lim) == 0
    store.touch("bob", "j2", 60)
    assert store.counts("bob") == (1, 1)


def test_leases_of_dead_processes_are_free_at_once(tmp_path):
    lim = limits.Limits(per_user=1, total=1)
    store = limits.FileSlots(tmp_path)
    assert store.acquire("ann" * 4, "999999999", 600, lim) == 0  # a diskcache job: its pid, long gone
    assert store.counts("ann" * 4) == (0, 0)
    assert store.acquire("ann" * 4, f"direct-{os.getpid()}-ab", 600, lim) == 0  # this process: alive
    assert store.acquire("bob" * 4, "celery-task-uuid", 600, lim) == 1


def _grab(folder):
    return limits.FileSlots(folder).acquire(limits.new_user_id(), limits.new_user_id(), 60,
                                            limits.Limits(per_user=1, total=3))


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


def test_a_cancelled_jobs_slot_is_freed_by_the_manager(tmp_path):
    lim = limits.Limits(per_user=1, total=5)
    store = limits.FileSlots()
    job = subprocess.Popen(["sleep", "60"])  # stands for a running diskcache job process
    try:
        assert store.acquire("ann" * 4, str(job.pid), 600, lim) == 0
        assert store.counts("ann" * 4) == (1, 1)
        jobs.background_manager().terminate_job(str(job.pid))  # Dash's cancel
        assert job.wait(10) is not None
        assert store.counts("ann" * 4) == (0, 0)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()


def test_admission_check(dead_redis):
    assert returns_promptly(lambda: limits.admission_message("u" * 16)) == jobs.UNAVAILABLE


def test_admission_check_without_redis(tmp_path):
    lim = limits.Limits(per_user=1, total=1)
    assert limits.admission_message("u" * 16, lim) is None
    limits.FileSlots().acquire("v" * 16, "j", 60, lim)
    assert "server is busy" in limits.admission_message("u" * 16, lim)
