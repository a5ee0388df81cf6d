"""Where Dash background callbacks run, and whether they can run right now.

Default (one user, nothing to install): a ``DiskcacheManager`` on a cache folder in the system's
temporary directory (``BPTTLAB_CACHE_DIR`` overrides it). For a class on one server: set
``BPTTLAB_REDIS_URL`` (e.g. ``redis://127.0.0.1:6379/0``) and start a Celery worker::

    BPTTLAB_REDIS_URL=redis://127.0.0.1:6379/0 celery -A visualizer.celery_worker worker -c 2 -l info

Background jobs then run on Celery with Redis as broker and result store.

The managers returned here differ from Dash's in three ways, all for serving a class:

- one manager (and one Celery app) per process, so the tasks Dash registers are the ones the
  Celery worker (which imports the app, see :mod:`visualizer.celery_worker`) knows;
- the handle-signing secret comes from ``BPTTLAB_SECRET_KEY`` or a file in the cache folder,
  shared by every gunicorn worker, instead of from Redis (a page load never touches Redis, so
  quick views keep working while Redis is down);
- Redis being unreachable never hangs a request: starting a job first pings Redis with a short
  timeout and raises :class:`JobsUnavailable` (a callback's ``on_error`` shows its message); a
  job whose Redis vanished while it ran ends with that message instead of a stuck progress bar.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import secrets
import tempfile
import time
from pathlib import Path

from dash import CeleryManager, DiskcacheManager

log = logging.getLogger(__name__)

REDIS_ENV = "BPTTLAB_REDIS_URL"
CACHE_ENV = "BPTTLAB_CACHE_DIR"
SECRET_ENV = "BPTTLAB_SECRET_KEY"
TIME_LIMIT_ENV = "BPTTLAB_JOB_TIME_LIMIT"
DEFAULT_TIME_LIMIT = 120.0  # seconds of work per background job (see visualizer.limits)
HEALTH_TIMEOUT = 0.5  # seconds to connect to / hear from Redis before calling it down
HEALTH_TTL = 1.0  # seconds a health verdict is reused within one process
JOB_NICENESS = 10  # background jobs yield the CPU to the page's quick views

UNAVAILABLE = ("Background jobs are unavailable right now: the job queue (Redis) does not answer. "
               "The plots keep working; try again in a moment.")
LOST = ("Background jobs are unavailable: the job queue (Redis) stopped answering while this job ran. "
        "Its result is lost; start it again when the queue is back.")


CURRENT_JOB: contextvars.ContextVar = contextvars.ContextVar("bpttlab_job", default=None)


class JobsUnavailable(RuntimeError):
    """Background jobs cannot start now (Redis unreachable). ``str(e)`` is the user's message."""


def current_job_id() -> str | None:
    """The handle of the background job running this code (Celery task id or diskcache process
    id, the value Dash's cancel terminates), None outside a job."""
    return CURRENT_JOB.get()


def lower_priority(niceness: int = JOB_NICENESS) -> None:
    """Run this process at ``niceness`` (at least): a training job must not slow the views of a
    whole class down; it gets the CPU the page does not need."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) < niceness:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except (AttributeError, OSError):  # not on this platform / not allowed: run at normal priority
        pass


def _with_job_id(fn, job_id):
    """``fn`` running with :data:`CURRENT_JOB` set to ``job_id()`` (same name, so Dash's keys hold),
    at low CPU priority (the job runs in its own process: a diskcache child or a Celery worker)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        lower_priority()
        token = CURRENT_JOB.set(job_id())
        try:
            return fn(*args, **kwargs)
        finally:
            CURRENT_JOB.reset(token)
    return run


def _celery_task_id():
    """The id of the Celery task being executed."""
    from celery import current_task

    return getattr(getattr(current_task, "request", None), "id", None)


def _process_id():
    """This process's id as a string (a diskcache job is a process)."""
    return str(os.getpid())


def _release_lease(job) -> None:
    """Free the job slot held by ``job`` (cancelled or finished): see :mod:`visualizer.limits`."""
    if job is None:
        return
    from . import limits

    try:
        limits.slots().release(str(job))
    except (JobsUnavailable, OSError):
        log.warning("could not release the job slot of %s", job)


def redis_url() -> str | None:
    """The Redis URL from the environment, or None for the embedded default."""
    url = os.environ.get(REDIS_ENV, "").strip()
    return url or None


def time_limit() -> float:
    """Seconds one background job may work (``BPTTLAB_JOB_TIME_LIMIT``, default 120)."""
    try:
        value = float(os.environ.get(TIME_LIMIT_ENV, DEFAULT_TIME_LIMIT))
    except ValueError:
        return DEFAULT_TIME_LIMIT
    return value if 0 < value < 86400 else DEFAULT_TIME_LIMIT


def cache_dir() -> Path:
    """The folder of the diskcache, the job-slot file and the signing secret (created, mode 0700)."""
    folder = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "bpttlab-cache")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def shared_secret() -> bytes:
    """Secret that signs background-job handles: ``BPTTLAB_SECRET_KEY``, else a random key kept in
    the cache folder (created once, then read by every worker process of this machine)."""
    env = os.environ.get(SECRET_ENV, "").strip()
    if env:
        return env.encode()
    path = cache_dir() / "signing-secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            data = path.read_bytes().strip()
            if data:
                return data
            time.sleep(0.01)
        raise RuntimeError(f"{path} is empty; delete it and restart") from None
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
    return path.read_bytes().strip()


# ----------------------------------------------------------------------------- Redis / Celery
def redis_client(url: str, timeout: float = HEALTH_TIMEOUT):
    """A redis-py client for ``url`` that gives up after ``timeout`` seconds."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                retry_on_timeout=False, health_check_interval=0)


def connection_errors() -> tuple:
    """Exception types meaning "Redis / the broker is not reachable"."""
    import kombu.exceptions
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError,
            kombu.exceptions.OperationalError, ConnectionError, TimeoutError, OSError)


def _ping(url: str, timeout: float) -> bool:
    """True if Redis at ``url`` answers PING within ``timeout`` seconds."""
    client = redis_client(url, timeout)
    try:
        return bool(client.ping())
    except connection_errors():
        return False
    except Exception:  # auth errors, bad URL: not usable either
        log.exception("Redis health check failed for %s", url)
        return False
    finally:
        client.close()


_health: dict = {}  # url -> (monotonic time, verdict); a per-process memo, not shared state


def redis_healthy(url: str | None = None, timeout: float = HEALTH_TIMEOUT, max_age: float = HEALTH_TTL) -> bool:
    """Whether Redis answers (reusing a verdict younger than ``max_age`` seconds)."""
    url = url or redis_url()
    if not url:
        return False
    now = time.monotonic()
    seen = _health.get(url)
    if seen is not None and now - seen[0] < max_age:
        return seen[1]
    verdict = _ping(url, timeout)
    _health[url] = (time.monotonic(), verdict)
    return verdict


def jobs_available() -> tuple[bool, str | None]:
    """(True, None) if background jobs can start now, else (False, the user's message)."""
    if redis_url() is None or redis_healthy():
        return True, None
    return False, UNAVAILABLE


@functools.cache
def celery_app(url: str | None = None):
    """The Celery app of this process for ``url`` (default ``BPTTLAB_REDIS_URL``), created once.

    Broker and result store are the same Redis; every socket operation times out quickly and a
    publish is never retried, so a Redis outage turns into an error instead of a hang; results
    are polled, never subscribed to (:mod:`visualizer.celery_backend`), so nothing needs a
    restart after an outage. The hard Celery time limit backs up the cooperative one of
    :mod:`visualizer.limits`.
    """
    url = url or redis_url()
    if not url:
        raise ValueError(f"set {REDIS_ENV} to use Celery")
    from celery import Celery

    limit = time_limit()
    app = Celery("bpttlab", broker=url, backend=f"visualizer.celery_backend:PollingRedisBackend+{url}")
    app.conf.update(
        broker_connection_timeout=2,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"socket_timeout": 5, "socket_connect_timeout": 2, "visibility_timeout": 3600},
        redis_socket_timeout=5,
        redis_socket_connect_timeout=2,
        redis_retry_on_timeout=False,
        result_backend_transport_options={"retry_policy": {"max_retries": 1, "interval_start": 0,
                                                           "interval_step": 0.2, "interval_max": 0.2}},
        task_publish_retry=False,
        task_soft_time_limit=limit + 15,
        task_time_limit=limit + 30,
        result_expires=3600,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
    )
    return app


def make_celery(url: str):
    """A Celery app using ``url`` as broker and result backend (the per-process one)."""
    return celery_app(url)


# ----------------------------------------------------------------------------- managers
class SafeCeleryManager(CeleryManager):
    """Dash's ``CeleryManager`` that fails fast with :class:`JobsUnavailable` when Redis is down."""

    def get_or_create_signing_secret(self, generate):
        return shared_secret()

    def make_job_fn(self, fn, progress, key=None):
        return super().make_job_fn(_with_job_id(fn, _celery_task_id), progress, key)

    def call_job_fn(self, key, job_fn, args, context):
        if not redis_healthy(self.handle.conf.broker_url):
            raise JobsUnavailable(UNAVAILABLE)
        try:
            return super().call_job_fn(key, job_fn, args, context)
        except connection_errors() as e:
            _health.pop(self.handle.conf.broker_url, None)
            raise JobsUnavailable(UNAVAILABLE) from e

    def terminate_job(self, job):
        try:
            super().terminate_job(job)
        except connection_errors():
            log.warning("could not cancel job %s: Redis unreachable", job)
        _release_lease(job)

    def job_running(self, job):
        try:
            return super().job_running(job)
        except connection_errors():
            return False

    def get_progress(self, key):
        try:
            return super().get_progress(key)
        except connection_errors():
            return None

    def result_ready(self, key):
        try:
            return super().result_ready(key)
        except connection_errors():
            return True  # the result is an error message, see get_result

    def get_result(self, key, job):
        try:
            return super().get_result(key, job)
        except connection_errors():
            return {"background_callback_error": {"msg": LOST, "tb": ""}}

    def get_updated_props(self, key):
        try:
            return super().get_updated_props(key)
        except connection_errors():
            return {}


class SharedDiskcacheManager(DiskcacheManager):
    """Dash's ``DiskcacheManager`` with the signing secret of :func:`shared_secret`, job slots
    freed when a job is cancelled, and a job process that ends between two checks treated as
    ended (Dash's own checks race with it and raise ``NoSuchProcess``)."""

    def get_or_create_signing_secret(self, generate):
        return shared_secret()

    def make_job_fn(self, fn, progress, key=None):
        return super().make_job_fn(_with_job_id(fn, _process_id), progress, key)

    def terminate_job(self, job):
        import psutil

        with contextlib.suppress(psutil.NoSuchProcess):
            super().terminate_job(job)
        _release_lease(job)

    def job_running(self, job):
        import psutil

        try:
            return super().job_running(job)
        except psutil.NoSuchProcess:
            return False

    def terminate_unhealthy_job(self, job):
        import psutil

        try:
            return super().terminate_unhealthy_job(job)
        except psutil.NoSuchProcess:
            return False


@functools.cache
def _manager(url: str | None, folder: str):
    """One manager per (Redis URL, cache folder) and process."""
    if url:
        return SafeCeleryManager(celery_app(url))
    import diskcache

    return SharedDiskcacheManager(diskcache.Cache(folder))


def background_manager():
    """The background-callback manager of this process (Celery if ``BPTTLAB_REDIS_URL`` is set,
    else diskcache); the same object on every call with the same settings."""
    url = redis_url()
    return _manager(url, "" if url else str(cache_dir()))


def error_message(exc: BaseException) -> str:
    """The user's message for an exception raised by a background job or while starting one."""
    if isinstance(exc, JobsUnavailable):
        return str(exc)
    text = str(exc)
    if LOST in text:
        return LOST
    if isinstance(exc, connection_errors()):
        return UNAVAILABLE
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = first.removeprefix("An error occurred inside a background callback: ")  # Dash's wrapper
    return f"The job failed: {first[:300]}"
