"""Fixtures for the server tests: Redis (from .ci/run or private), Celery workers, gunicorn.

``.ci/run`` starts a redis-server and exports ``BPTTLAB_TEST_REDIS_URL``; without it the tests
that need Redis are skipped with that reason. The fault tests start their own redis-server
(they stop and restart it) when the ``redis-server`` program is installed.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from visualizer.serve import SERVER_ENV, has_control_socket

ROOT = Path(__file__).resolve().parents[2]
TEST_REDIS_ENV = "BPTTLAB_TEST_REDIS_URL"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, proc=None, log=None):
    """Poll ``check()`` until truthy; fail with ``what`` (and the log tail) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            value = check()
        except AssertionError:
            raise
        except Exception:  # not ready yet
            value = None
        if value:
            return value
        time.sleep(0.1)
    tail = Path(log).read_text()[-3000:] if log and Path(log).exists() else ""
    raise AssertionError(f"{what} not ready after {timeout} s\n{tail}")


def stop(proc, sig=signal.SIGTERM, timeout=15.0):
    """Stop a process we started (its process group), then reap it."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def redis_ping(url: str) -> bool:
    """True if Redis at ``url`` answers."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    finally:
        client.close()


class RedisServer:
    """A private redis-server on a free port (no persistence), stoppable and restartable."""

    def __init__(self, folder: Path):
        self.folder, self.port, self.proc = folder, free_port(), None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        with open(self.folder / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(
                [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.folder)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: redis_ping(self.url), 15, "redis-server", self.proc, self.folder / "redis.log")
        return self

    def stop(self):
        stop(self.proc)
        self.proc = None


class Procs:
    """Starts the servers of one test and stops them all at the end."""

    def __init__(self, folder: Path, env: dict):
        self.folder, self.env, self.procs = folder, env, []

    @staticmethod
    def root() -> Path:
        """The repository (the servers' working directory and import path)."""
        return ROOT

    def spawn(self, args, name):
        log = self.folder / f"{name}.log"
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        proc.log = log
        self.procs.append(proc)
        return proc

    def celery_worker(self, concurrency=2):
        """A Celery worker on the app's tasks (``visualizer.celery_worker``), ready to take jobs."""
        proc = self.spawn([sys.executable, "-m", "celery", "-A", "visualizer.celery_worker", "worker",
                           "-c", str(concurrency), "-P", "prefork", "-l", "info", "--without-gossip",
                           "--without-mingle", "--without-heartbeat", "-n", f"w{free_port()}@%h"], "celery")
        wait_until(lambda: "ready." in proc.log.read_text(), 60, "celery worker", proc, proc.log)
        return proc

    def gunicorn(self, wsgi="visualizer.app:server", workers=2, threads=4, timeout=60):
        """gunicorn serving ``wsgi`` on a free port; returns (proc, base URL)."""
        port = free_port()
        proc = self.spawn([sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
                           "--bind", f"127.0.0.1:{port}", "--timeout", str(timeout), "--graceful-timeout", "5",
                           *(["--no-control-socket"] if has_control_socket() else []), wsgi], "gunicorn")
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(base + "/", timeout=5).status_code == 200, 60, "gunicorn", proc, proc.log)
        return proc, base

    def close(self):
        for proc in reversed(self.procs):
            stop(proc)


@pytest.fixture
def server_env(tmp_path):
    """Environment for child servers: a private cache folder, the repo on the path, no Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPTTLAB_")}
    env.update(BPTTLAB_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
               BPTTLAB_SECRET_KEY=secrets.token_hex(32), **{k: v for k, v in SERVER_ENV.items() if k not in env})
    return env


@pytest.fixture
def procs(tmp_path, server_env):
    """Start servers with ``procs.gunicorn()`` / ``procs.celery_worker()``; all stopped after the test."""
    p = Procs(tmp_path, server_env)
    yield p
    p.close()


@pytest.fixture
def redis_url():
    """The Redis of .ci/run (``BPTTLAB_TEST_REDIS_URL``), flushed for this test."""
    url = os.environ.get(TEST_REDIS_ENV)
    if not url:
        pytest.skip(f"{TEST_REDIS_ENV} is not set (.ci/run starts redis-server and sets it)")
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test alone (the fault tests stop and restart it)."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def http():
    """A requests session, closed after the test."""
    with requests.Session() as s:
        yield s
