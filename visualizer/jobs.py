"""Where Dash background callbacks (training) run, who may start one, and what a page learns about it.

Default (one user, nothing to install): a ``DiskcacheManager`` on the private cache folder
(:mod:`visualizer.storage`); each job is a process of this machine. For a class: set
``BPTTLAB_REDIS_URL``, ``BPTTLAB_SECRET_KEY`` and start Celery workers
(``celery -A visualizer.celery_worker worker``); jobs then queue in Redis and run on any worker.

The managers here differ from Dash's, all for serving a class (on one machine or several):

- every start of a job is its own job: the cache key Dash derives from the callback's inputs
  gets a random part, so two tabs with the same settings never share (or kill) a job;
- the web server that receives a start admits it (:func:`visualizer.limits.admit`: per-user cap,
  cluster capacity) *before* it is queued, under a lease that is the job's identity (the Celery
  task id); a refused start shows the reason through the callback's ``on_error``;
- while a job waits in the Celery queue, its progress output reads ``{"queued": n}`` (position n);
- a job whose worker died (its lease stopped being renewed, or Celery reports the worker lost)
  ends with :data:`LOST_WORKER`, so the page says so and ▶ Train resumes from its checkpoint;
- one signing secret for every process (``BPTTLAB_SECRET_KEY``, required with Redis), so any
  request of a page may reach any web server;
- the diskcache manager only ever signals job processes it started itself (recorded with their
  start time in the cache), never a pid taken from a request;
- Redis being unreachable never hangs a request: a job start pings it with a short timeout and
  fails with :data:`~visualizer.cluster.UNAVAILABLE`; polls of a job whose Redis vanished end it
  with :data:`LOST`.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import time
import uuid

from dash import CeleryManager, DiskcacheManager
from dash._callback_context import context_value

from . import cluster, leases, limits, storage
from .cluster import UNAVAILABLE, JobsUnavailable

log = logging.getLogger(__name__)

JOB_NICENESS = 10  # background jobs yield the CPU to the page's quick views
CANCEL_SECONDS = 30.0  # a job being cancelled counts as running (at most this long) until its lease is free
MAX_PROGRESS_OUTPUTS = 16  # a queued job's progress value is repeated for up to this many progress outputs
LEASE_KEY = "bpttlab_lease"  # the job's lease, carried to the job in Dash's callback context
LOST = ("Background jobs are unavailable: the job queue (Redis) stopped answering while this job ran. "
        "Its result is lost; start it again when the queue is back.")
LOST_WORKER = ("This training job was lost: the worker running it stopped. ▶ Train resumes it from the last "
               "checkpoint this page received.")


def lower_priority(niceness: int = JOB_NICENESS) -> None:
    """Run this process at ``niceness`` (at least): a training job must not slow the views of a
    whole class down; it gets the CPU the page does not need."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) < niceness:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except (AttributeError, OSError):  # not on this platform / not allowed: run at normal priority
        pass


def _in_lease(fn):
    """``fn`` run as the job of the lease its web server admitted (read from Dash's callback
    context, set in :data:`visualizer.limits.CURRENT_LEASE`), at low CPU priority."""
    @functools.wraps(fn)  # same name, so Dash's keys hold
    def run(*args, **kwargs):
        lower_priority()
        token = limits.CURRENT_LEASE.set((context_value.get() or {}).get(LEASE_KEY))
        try:
            return fn(*args, **kwargs)
        finally:
            limits.CURRENT_LEASE.reset(token)
    return run


def _admit(context) -> str:
    """Admit the job start of ``context`` (Dash's callback context); its new lease, carried to the job.
    Raises :class:`visualizer.limits.LimitReached` or :class:`JobsUnavailable` with the user's message."""
    lease = limits.new_lease()
    message = limits.admit(limits.user_id_in(context), lease)
    if message == UNAVAILABLE:
        raise JobsUnavailable(message)
    if message:
        raise limits.LimitReached(message)
    context[LEASE_KEY] = lease
    return lease


def _release(lease) -> None:
    """Give the lease back (cancelled or ended); errors only logged."""
    try:
        leases.slots().release(str(lease))
    except (JobsUnavailable, OSError):
        log.warning("could not release the lease of job %s", lease)


def _lost(message: str) -> dict:
    """A background-callback result that makes Dash call the callback's ``on_error`` with ``message``."""
    return {"background_callback_error": {"msg": message, "tb": ""}}


class UniqueKeys:
    """Every job start gets its own cache key (Dash's own key is a hash of the inputs only)."""

    def build_cache_key(self, fn, args, cache_args_to_ignore, triggered):
        return f"{super().build_cache_key(fn, args, cache_args_to_ignore, triggered)}-{uuid.uuid4().hex}"


# ----------------------------------------------------------------------------- Celery
@functools.cache
def celery_app(url: str | None = None):
    """The Celery app of this process for ``url`` (default ``BPTTLAB_REDIS_URL``), created once.

    Broker and result store are the same Redis; every socket operation times out quickly and a
    publish is never retried, so an outage is an error, not a hang; results are polled, never
    subscribed to (:mod:`visualizer.celery_backend`). Jobs are short: a worker takes one job per
    free slot and acknowledges it when it ends (``acks_late``, no prefetch), so a killed worker
    leaves no job it had merely reserved, and its running jobs come back after the visibility
    timeout (a little over the time limit) to find their lease gone and end at once.
    """
    url = url or cluster.redis_url()
    if not url:
        raise ValueError(f"set {cluster.REDIS_ENV} to use Celery")
    from celery import Celery

    limit = limits.time_limit()
    app = Celery("bpttlab", broker=url, backend=f"visualizer.celery_backend:PollingRedisBackend+{url}")
    app.conf.update(
        broker_connection_timeout=2,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"socket_timeout": 5, "socket_connect_timeout": 2,
                                  "visibility_timeout": int(limit + 90)},
        redis_socket_timeout=5,
        redis_socket_connect_timeout=2,
        redis_retry_on_timeout=False,
        result_backend_transport_options={"retry_policy": {"max_retries": 1, "interval_start": 0,
                                                           "interval_step": 0.2, "interval_max": 0.2}},
        task_publish_retry=False,
        task_soft_time_limit=limit + 15,
        task_time_limit=limit + 30,
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        task_track_started=True,
        result_expires=3600,
        worker_prefetch_multiplier=1,
        worker_disable_prefetch=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
    )
    return app


class SafeCeleryManager(UniqueKeys, CeleryManager):
    """Dash's ``CeleryManager`` with admission, queue positions, lost-worker reports and fast
    failure while Redis is down (see the module docstring). The job handle is the lease."""

    def __init__(self, celery_app_):
        super().__init__(celery_app_)
        self.url = celery_app_.conf.broker_url

    def get_or_create_signing_secret(self, generate):
        return storage.shared_secret(self.url, cluster.REDIS_ENV)

    def make_job_fn(self, fn, progress, key=None):
        return super().make_job_fn(_in_lease(fn), progress, key)

    def call_job_fn(self, key, job_fn, args, context):
        if not cluster.redis_healthy(self.url):
            raise JobsUnavailable(UNAVAILABLE)
        lease = _admit(context)
        try:
            leases.slots().remember(key, lease, limits.QUEUE_WAIT + limits.time_limit() + 120)
            job_fn.apply_async(args=(key, self._make_progress_key(key), args, context), task_id=lease)
        except (*cluster.connection_errors(), JobsUnavailable) as e:
            cluster.forget_health(self.url)
            _release(lease)
            raise JobsUnavailable(UNAVAILABLE) from e
        return lease

    def _mark_cancel(self, job, ending: bool) -> None:
        """Note the cancel of ``job`` as ending or over (see job_running); errors only logged."""
        try:
            leases.slots().mark_cancel(str(job), ending, CANCEL_SECONDS if ending else leases.DONE_TTL)
        except (JobsUnavailable, OSError):
            log.warning("could not note the cancel of job %s", job)

    def terminate_job(self, job):
        if job is None:
            return
        self._mark_cancel(job, ending=True)  # polls meanwhile wait, see job_running
        try:
            super().terminate_job(job)
        except cluster.connection_errors():
            log.warning("could not cancel job %s: Redis unreachable", job)
        _release(job)
        self._mark_cancel(job, ending=False)

    def _status(self, job) -> str | None:
        """Celery's state of ``job`` (PENDING, STARTED, SUCCESS, FAILURE, ...)."""
        return self.get_task(job).status

    def job_running(self, job):
        # A job being cancelled counts as running until its lease is free (whatever its worker
        # did meanwhile), so the page enables the next start only once it is admitted; once the
        # cancel is over the job has ended, even one still waiting in the queue (a worker that
        # missed the revoke and takes it finds its lease gone and ends it). A job whose result
        # waits counts as running: it wrote it as this poll looked, after get_result found
        # nothing, and the next poll collects it. A lost job (its worker stopped renewing the
        # lease) still counts as running: a lease that expired between the two looks would
        # otherwise read as a cancel and end the page's polling with no message; the next
        # get_result reports it.
        try:
            store = leases.slots()
            cancel = store.cancel_state(str(job))
            if cancel is not None:
                return cancel == "ending"
            if super().job_running(job):
                return True
            key = store.key_of(str(job))
            return key is not None and self.handle.backend.get(key) is not None
        except (*cluster.connection_errors(), JobsUnavailable):
            return False

    def get_progress(self, key):
        try:
            progress = super().get_progress(key)
            if progress is not None:
                return progress
            lease = leases.slots().lease_of(key)
            position = leases.slots().position(lease) if lease else None
            # Dash reads one value per progress output, and asks only callbacks that have some
            return [{"queued": position}] * MAX_PROGRESS_OUTPUTS if position else None
        except (*cluster.connection_errors(), JobsUnavailable):
            return None

    def result_ready(self, key):
        try:
            return super().result_ready(key)
        except cluster.connection_errors():
            return True  # the result is an error message, see get_result

    def get_result(self, key, job):
        try:
            value = super().get_result(key, job)
            if value is self.UNDEFINED and job is not None:
                state = leases.slots().state(str(job))
                lost = state == "lost" or (state != "done" and self._status(job) == "FAILURE")
                if lost and leases.slots().cancel_state(str(job)) is None:  # a cancelled job is not lost
                    _release(job)
                    return _lost(LOST_WORKER)
            return value
        except (*cluster.connection_errors(), JobsUnavailable):
            return _lost(LOST)

    def get_updated_props(self, key):
        try:
            return super().get_updated_props(key)
        except cluster.connection_errors():
            return {}


# ----------------------------------------------------------------------------- diskcache
def _since_boot(proc) -> float:
    """When ``proc`` started, in seconds since the machine booted: unlike its start time on the
    wall clock (psutil adds the boot time, which moves when the clock is set or synchronised), it
    never changes, so a job process is recognised across a clock step."""
    import psutil

    return proc.create_time() - psutil.boot_time()


class SharedDiskcacheManager(UniqueKeys, DiskcacheManager):
    """Dash's ``DiskcacheManager`` with admission, the signing secret of :mod:`visualizer.storage`,
    lost-job reports, and signals only to job processes this server started (recorded in the
    cache with their start time since boot, so a reused pid is not mistaken for one).

    A job counts as running (the page keeps polling it, its buttons stay as they are) while its
    process runs, while a cancel is ending it and freeing its lease, and while its result waits
    in the cache: a job that writes its result and exits between two looks of one poll is not
    taken for a cancelled one, and a page learns that a cancelled job ended only once its slot
    is free for the next start."""

    def get_or_create_signing_secret(self, generate):
        return storage.shared_secret()

    def make_job_fn(self, fn, progress, key=None):
        return super().make_job_fn(_in_lease(fn), progress, key)

    def call_job_fn(self, key, job_fn, args, context):
        import psutil

        lease = _admit(context)
        try:
            pid = super().call_job_fn(key, job_fn, args, context)
            started = _since_boot(psutil.Process(pid))
        except (OSError, psutil.Error):
            _release(lease)
            raise
        self.handle.set(f"bpttlab-job:{pid}", {"lease": lease, "started": started, "key": key}, expire=86400)
        return pid

    def _record(self, job) -> dict | None:
        """What this server noted when it started ``job`` (a pid), else None."""
        with contextlib.suppress(ValueError, TypeError, OverflowError):
            record = self.handle.get(f"bpttlab-job:{int(job)}")
            if isinstance(record, dict):
                return record
        return None

    def _process(self, job, record):
        """The process of ``job`` if it is the one ``record`` notes (not a reused pid), else None."""
        import psutil

        try:
            proc = psutil.Process(int(job))
            return proc if abs(_since_boot(proc) - record["started"]) < 1e-3 else None
        except (ValueError, TypeError, OverflowError, KeyError, psutil.Error):
            return None

    def _alive(self, job, record) -> bool:
        """True while the process of ``job`` runs."""
        import psutil

        proc = self._process(job, record)
        try:
            return proc is not None and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def terminate_job(self, job):
        import psutil

        record = self._record(job)
        if record is None:
            return
        name = f"bpttlab-job:{int(job)}"
        self.handle.set(name, {**record, "cancelled": time.time()}, expire=86400)  # polls wait, see job_running
        if self._process(job, record) is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                super().terminate_job(job)
        _release(record["lease"])
        self.handle.pop(name, None)

    def job_running(self, job):
        record = self._record(job)
        if record is None:
            return False
        if time.time() - record.get("cancelled", -math.inf) < CANCEL_SECONDS:
            return True
        key = record.get("key")
        return self._alive(job, record) or (isinstance(key, str) and self.handle.get(key) is not None)

    def terminate_unhealthy_job(self, job):
        return False  # job processes end by themselves; a cancel ends them through terminate_job

    def get_result(self, key, job):
        value = super().get_result(key, job)
        if value is not self.UNDEFINED or job is None:
            return value
        record = self._record(job)
        if record is None or "cancelled" in record or self._alive(job, record):
            return value
        value = super().get_result(key, job)  # the process ended: its result may have landed since
        if value is self.UNDEFINED:
            self.terminate_job(job)  # frees its lease
            return _lost(LOST_WORKER.replace("the worker running it", "its process"))
        return value


# ----------------------------------------------------------------------------- the process's manager
@functools.cache
def _manager(url: str | None, folder: str):
    """One manager per (Redis URL, cache folder) and process."""
    if url:
        storage.require_cluster_secret(url, cluster.REDIS_ENV)
        return SafeCeleryManager(celery_app(url))
    import diskcache

    return SharedDiskcacheManager(diskcache.Cache(folder))


def background_manager():
    """The background-callback manager of this process (Celery if ``BPTTLAB_REDIS_URL`` is set,
    else diskcache); the same object on every call with the same settings. Raises
    :class:`visualizer.storage.UnsafeStorage` (the message says what to fix) without a shared
    secret on Redis, or with a cache folder that is not private."""
    url = cluster.redis_url()
    return _manager(url, "" if url else str(storage.cache_dir()))


def check_cluster(verify=cluster.verify_config) -> str | None:
    """At a process's start with Redis: check that its settings and secret are the cluster's.

    Raises :class:`visualizer.storage.UnsafeStorage` without ``BPTTLAB_SECRET_KEY`` and
    :class:`visualizer.cluster.ConfigMismatch` when settings differ. Returns a warning (Redis
    not reachable now: not checked) or None.
    """
    url = cluster.redis_url()
    if not url:
        return None
    secret = storage.require_cluster_secret(url, cluster.REDIS_ENV)
    client = cluster.redis_client(url, timeout=2.0)
    try:
        verify(client, limits.cluster_settings(limits.Limits.from_env(), secret))
    except cluster.connection_errors():
        return f"Redis at {url} does not answer now: the cluster's settings were not checked."
    finally:
        client.close()
    return None


def error_message(exc: BaseException) -> str:
    """The user's message for an exception raised by a background job or while starting one."""
    if isinstance(exc, (JobsUnavailable, limits.LimitReached)):
        return str(exc)
    text = str(exc)
    for known in (LOST, LOST_WORKER, UNAVAILABLE):
        if known in text:
            return known
    if "WorkerLostError" in text or "Worker exited prematurely" in text:
        return LOST_WORKER
    if isinstance(exc, cluster.connection_errors()):
        return UNAVAILABLE
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = first.removeprefix("An error occurred inside a background callback: ")  # Dash's wrapper
    for message in (limits.GONE,):
        if first.startswith(message[:40]):
            return message
    return f"The job failed: {first[:300]}"
