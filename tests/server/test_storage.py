"""The private cache folder and signing secret, and job processes: only those the server started are signalled."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.server.conftest import ROOT
from visualizer import cluster, jobs, leases, limits, storage


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    for name in (cluster.REDIS_ENV, storage.SECRET_ENV):
        monkeypatch.delenv(name, raising=False)
    jobs._manager.cache_clear()
    yield
    jobs._manager.cache_clear()


def test_the_default_folder_is_per_account(monkeypatch):
    monkeypatch.delenv(storage.CACHE_ENV)
    assert storage.default_cache_dir().name == f"bpttlab-cache-{os.geteuid()}"


def test_the_folder_is_created_private(tmp_path):
    folder = storage.cache_dir()
    assert folder == tmp_path / "cache"
    st = folder.stat()
    assert st.st_uid == os.geteuid() and st.st_mode & 0o777 == 0o700


def test_a_folder_open_to_others_is_refused_with_the_fix(tmp_path):
    (tmp_path / "cache").mkdir(mode=0o777)
    os.chmod(tmp_path / "cache", 0o777)  # what another account would pre-create
    with pytest.raises(storage.UnsafeStorage, match=r"mode 777.*chmod 700"):
        storage.cache_dir()
    with pytest.raises(storage.UnsafeStorage):
        jobs.background_manager()


def test_a_link_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "cache").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(storage.UnsafeStorage, match="not a folder"):
        storage.cache_dir()


def test_a_folder_of_another_account_is_refused(tmp_path, monkeypatch):
    storage.cache_dir()
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)  # as seen by another account
    with pytest.raises(storage.UnsafeStorage, match="belongs to another account"):
        storage.cache_dir()


def test_the_secret_is_private_and_shared_by_processes(tmp_path):
    script = "from visualizer import storage; print(storage.shared_secret().decode())"
    env = {"PATH": "/usr/bin:/bin", storage.CACHE_ENV: str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    first, second = (subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                    check=True).stdout.strip() for _ in range(2))
    assert first == second == storage.shared_secret().decode() and len(first) == 64
    assert (tmp_path / "cache" / storage.SECRET_FILE).stat().st_mode & 0o777 == 0o600
    os.chmod(tmp_path / "cache" / storage.SECRET_FILE, 0o644)  # readable by others: no longer a secret
    with pytest.raises(storage.UnsafeStorage, match="chmod 600"):
        storage.shared_secret()


def test_the_environment_secret_wins(monkeypatch):
    monkeypatch.setenv(storage.SECRET_ENV, "from-the-environment")
    assert storage.shared_secret() == b"from-the-environment"
    assert jobs.background_manager().get_or_create_signing_secret(lambda: b"x") == b"from-the-environment"


def test_the_server_signals_only_job_processes_it_started(tmp_path):
    manager = jobs.background_manager()
    stranger = subprocess.Popen(["sleep", "60"])  # a process of this account the server did not start
    try:
        manager.terminate_job(str(stranger.pid))  # a cancel naming its pid
        assert not manager.job_running(str(stranger.pid))
        assert stranger.poll() is None  # never signalled
        assert manager.terminate_unhealthy_job(str(stranger.pid)) is False
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def _sleeper(key, progress_key, args, context):
    """Stands for a job process."""
    import time

    time.sleep(60)


def test_a_cancel_ends_the_job_process_and_frees_its_lease(tmp_path):
    manager = jobs.background_manager()
    context = {"states_list": [{"id": "user-id-store", "property": "data", "value": "u" * 16}]}
    pid = manager.call_job_fn("key-1", _sleeper, [], context)
    lease = context[jobs.LEASE_KEY]
    assert manager.job_running(str(pid))
    assert leases.slots().counts("u" * 16) == (1, 1)
    manager.terminate_job(str(pid))
    assert not manager.job_running(str(pid))
    assert leases.slots().state(lease) == "done" and leases.slots().counts("u" * 16) == (0, 0)


def test_a_job_process_that_died_is_reported_lost(tmp_path):
    import signal

    manager = jobs.background_manager()
    context = {"states_list": [{"id": "user-id-store", "property": "data", "value": "v" * 16}]}
    pid = manager.call_job_fn("key-2", _sleeper, [], context)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    result = manager.get_result("key-2", str(pid))
    assert "was lost" in result["background_callback_error"]["msg"]
    assert leases.slots().counts("v" * 16) == (0, 0)  # the slot is free at once


def test_limits_refuse_a_second_start_of_the_same_user(tmp_path):
    manager = jobs.background_manager()
    context = {"states_list": [{"id": "user-id-store", "property": "data", "value": "w" * 16}]}
    pid = manager.call_job_fn("key-3", _sleeper, [], dict(context))
    try:
        with pytest.raises(limits.LimitReached, match="already have 1 training job"):
            manager.call_job_fn("key-4", _sleeper, [], dict(context))
    finally:
        manager.terminate_job(str(pid))


def _finisher(key, progress_key, args, context):
    """Stands for a job process that writes its result and ends."""
    import diskcache

    diskcache.Cache(str(storage.cache_dir())).set(key, {"result": 42})


def test_a_result_written_as_the_job_ends_is_still_collected(tmp_path):
    import psutil

    manager = jobs.background_manager()
    context = {"states_list": [{"id": "user-id-store", "property": "data", "value": "x" * 16}]}
    pid = manager.call_job_fn("key-5", _finisher, [], context)
    proc = psutil.Process(pid)
    for _ in range(1000):  # the process has ended (a zombie until reaped)
        if proc.status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.01)
    # a poll that read no result just before the job wrote it asks next whether it still runs: it must
    # (Dash ends a job that does not run and has no result as cancelled, and its result would be lost)
    assert manager.job_running(str(pid))
    assert manager.get_result("key-5", str(pid)) == {"result": 42}
    assert not manager.job_running(str(pid))


def test_a_cancelled_job_is_not_lost_and_frees_its_slot_before_the_page_learns_it_ended(tmp_path, monkeypatch):
    manager = jobs.background_manager()
    user = "y" * 16
    pid = manager.call_job_fn("key-6", _sleeper, [], {"states_list": [{"id": "user-id-store", "property": "data",
                                                                         "value": user}]})
    seen = []
    release = jobs._release

    def polled_then_released(lease):  # a poll of the page while the cancel ends the process, then the release
        seen.append((manager.job_running(str(pid)), manager.get_result("key-6", str(pid))))
        release(lease)

    monkeypatch.setattr(jobs, "_release", polled_then_released)
    manager.terminate_job(str(pid))
    assert seen == [(True, manager.UNDEFINED)]  # still "running" (Train stays off), and not reported lost
    assert not manager.job_running(str(pid)) and leases.slots().counts(user) == (0, 0)  # then ended, slot free


def test_a_clock_step_does_not_make_a_running_job_look_lost(tmp_path, monkeypatch):
    import psutil

    manager = jobs.background_manager()
    context = {"states_list": [{"id": "user-id-store", "property": "data", "value": "z" * 16}]}
    pid = manager.call_job_fn("key-7", _sleeper, [], context)
    try:
        boot = psutil._psplatform.boot_time
        monkeypatch.setattr(psutil._psplatform, "boot_time", lambda: boot() - 1.0)  # the clock was set back 1 s
        assert manager.job_running(str(pid))
        assert manager.get_result("key-7", str(pid)) is manager.UNDEFINED  # still running, not "lost"
    finally:
        monkeypatch.undo()
        manager.terminate_job(str(pid))
    assert not manager.job_running(str(pid))
