"""Limits that keep one server fair for a whole class: work per request, jobs per user and in
total, time per job; and the random per-browser id the per-user limits count by.

- Work per request: ``seq_len x batch x layers x hidden^2`` per architecture, capped at
  :data:`WORK_CAP` (the views clamp to it, see :mod:`visualizer.urlstate`); a training run adds a
  factor ``steps`` and is capped at :data:`TRAIN_WORK_CAP`.
- Concurrent background jobs: at most ``per_user`` per browser and ``total`` on the server. The
  counts are shared by every gunicorn and Celery worker: in Redis when ``BPTTLAB_REDIS_URL`` is
  set, else in a lock-protected file in the cache folder. A slot is a lease that expires after
  the job's time limit (plus a margin), so a killed or cancelled job never keeps its slot.
- Time per job: ``BPTTLAB_JOB_TIME_LIMIT`` seconds (default 120), checked cooperatively by
  :meth:`JobSlot.expired` (the job stops and shows what it has) and enforced hard by Celery.

Settings: ``BPTTLAB_MAX_JOBS_PER_USER`` (default 1), ``BPTTLAB_MAX_JOBS`` (default: the number
of CPU cores, at least 2). Jobs run at low CPU priority (:func:`visualizer.jobs.lower_priority`).

The user id lives in the browser (``dcc.Store(storage_type="local")``, filled by a clientside
callback with 128 random bits). It is NOT authentication: anyone can send any id. It only
keeps one student from taking every job slot by accident.

Use in a background callback::

    msg = limits.training_message(params, steps) or limits.admission_message(user_id)
    if msg: return <show msg>
    with limits.job_slot(user_id) as slot:       # raises LimitReached / JobsUnavailable
        for snap in core.train_iter(config):
            if slot.expired(): break              # time limit: stop, show what we have
            slot.touch(); set_progress(...)
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import time
from dataclasses import dataclass

from dash import Input, Output, State, dcc

from . import jobs
from .urlstate import WORK_CAP, work

USER_STORE = "user-id-store"
ANONYMOUS = "anonymous"
TRAIN_WORK_CAP = 20 * WORK_CAP  # steps x seq_len x batch x layers x hidden^2, per architecture (~1 min)
LEASE_MARGIN = 30.0  # seconds a slot outlives its job's time limit before it is reclaimed
_USER_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


class LimitReached(RuntimeError):
    """A cap was hit; ``str(e)`` is the user's message."""


@dataclass(frozen=True)
class Limits:
    """The caps in force (see the module docstring)."""

    per_user: int = 1
    total: int = max(2, os.cpu_count() or 2)
    time_limit: float = jobs.DEFAULT_TIME_LIMIT
    work_cap: int = WORK_CAP
    train_work_cap: int = TRAIN_WORK_CAP

    @classmethod
    def from_env(cls) -> Limits:
        """Limits from ``BPTTLAB_MAX_JOBS_PER_USER``, ``BPTTLAB_MAX_JOBS``, ``BPTTLAB_JOB_TIME_LIMIT``."""
        return cls(per_user=_env_int("BPTTLAB_MAX_JOBS_PER_USER", cls.per_user),
                   total=_env_int("BPTTLAB_MAX_JOBS", cls.total), time_limit=jobs.time_limit())


def _env_int(name: str, default: int) -> int:
    """A positive int from the environment, else ``default``."""
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value >= 1 else default


# ----------------------------------------------------------------------------- work caps
def request_message(params, limits: Limits | None = None) -> str | None:
    """None if one view request for ``params`` fits the work cap, else the message."""
    cap = (limits or Limits()).work_cap
    w = work(params)
    if w <= cap:
        return None
    return (f"This configuration is too large for the server: seq_len x batch x layers x hidden^2 = {w:,} "
            f"is over the limit {cap:,}. Lower seq_len, batch or hidden.")


def training_message(params, steps: int, batch: int | None = None, limits: Limits | None = None) -> str | None:
    """None if a training run of ``steps`` steps (batch ``batch``, default ``params.batch``) fits
    the training cap, else the message naming the fields to lower."""
    cap = (limits or Limits()).train_work_cap
    b = int(params.batch if batch is None else batch)
    w = int(steps) * work(params, batch=b)
    if w <= cap:
        return None
    return (f"This training run is too large for the server: steps x seq_len x batch x layers x hidden^2 = {w:,} "
            f"is over the limit {cap:,}. Lower steps, seq_len, batch or hidden.")


# ----------------------------------------------------------------------------- user id
def clean_user_id(raw) -> str:
    """The id if it looks like one this app hands out, else ``"anonymous"`` (one shared bucket)."""
    if isinstance(raw, str) and _USER_ID.fullmatch(raw):
        return raw
    return ANONYMOUS


def user_store() -> dcc.Store:
    """The browser-local store holding this browser's random id (put it in the layout)."""
    return dcc.Store(id=USER_STORE, storage_type="local")


ASSIGN_USER_JS = """
function(ts, current) {
    if (typeof current === 'string' && /^[A-Za-z0-9_-]{8,64}$/.test(current)) {
        return window.dash_clientside.no_update;
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, function(b) { return ('0' + b.toString(16)).slice(-2); }).join('');
}
"""


def register_identity(app) -> None:
    """Give every browser a random id in :data:`USER_STORE` (kept in localStorage)."""
    app.clientside_callback(ASSIGN_USER_JS, Output(USER_STORE, "data"),
                            Input(USER_STORE, "modified_timestamp"), State(USER_STORE, "data"))


def new_user_id() -> str:
    """A random id of the kind the browser makes (for tests and scripts)."""
    return secrets.token_hex(16)


# ----------------------------------------------------------------------------- job slots
class RedisSlots:
    """Job leases in Redis: sorted sets (member job id, score expiry time) for the server and per
    user, and a hash job -> user; changed atomically by Lua scripts."""

    ACQUIRE = """
    local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
    for _, j in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do redis.call('HDEL', KEYS[3], j) end
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
    if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
    redis.call('HSET', KEYS[3], ARGV[3], ARGV[6])
    redis.call('EXPIRE', KEYS[2], math.ceil(ttl) + 60)
    return 0
    """
    RELEASE = """
    local user = redis.call('HGET', KEYS[2], ARGV[1])
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('HDEL', KEYS[2], ARGV[1])
    if user then redis.call('ZREM', ARGV[2] .. user, ARGV[1]) end
    return 0
    """

    def __init__(self, url: str, prefix: str = "bpttlab:jobs"):
        self.client = jobs.redis_client(url, timeout=2.0)
        self.prefix = prefix

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except jobs.connection_errors() as e:
            raise jobs.JobsUnavailable(jobs.UNAVAILABLE) from e

    def _user_key(self, user):
        return f"{self.prefix}:user:{user}"

    def acquire(self, user: str, job: str, ttl: float, limits: Limits) -> int:
        """0 if the lease was taken, 1 if the server is full, 2 if the user is at their cap."""
        keys = [f"{self.prefix}:all", self._user_key(user), f"{self.prefix}:owner"]
        return int(self._call(self.client.eval, self.ACQUIRE, 3, *keys, time.time(), ttl, job,
                              limits.total, limits.per_user, user))

    def touch(self, user: str, job: str, ttl: float) -> None:
        """Extend the lease of ``job`` by ``ttl`` seconds from now (only if it is still held)."""
        until = time.time() + ttl
        for key in (f"{self.prefix}:all", self._user_key(user)):
            self._call(self.client.zadd, key, {job: until}, False, True)  # xx: only if present

    def release(self, job: str) -> None:
        """Give the lease of ``job`` back (no-op if it is not held)."""
        self._call(self.client.eval, self.RELEASE, 2, f"{self.prefix}:all", f"{self.prefix}:owner",
                   job, f"{self.prefix}:user:")

    def counts(self, user: str) -> tuple[int, int]:
        """(running jobs on the server, running jobs of ``user``)."""
        now = time.time()
        total, mine = (self._call(self.client.zcount, key, now, "+inf")
                       for key in (f"{self.prefix}:all", self._user_key(user)))
        return int(total), int(mine)


def _owner_alive(job: str) -> bool:
    """False if ``job`` names a process of this machine that no longer exists (a diskcache job is
    its process id; a direct caller ``direct-<pid>-...``): its lease is free at once."""
    text = job.split("-")[1] if job.startswith("direct-") else job
    if not text.isdigit():
        return True
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


class FileSlots:
    """Job leases in a JSON file of the cache folder, changed under an exclusive ``flock``
    (shared by every process on this machine)."""

    def __init__(self, folder=None):
        folder = folder or jobs.cache_dir()
        self.path = os.path.join(folder, "job-slots.json")
        self.lock_path = os.path.join(folder, "job-slots.lock")

    @contextlib.contextmanager
    def _table(self):
        """The live leases {job: [user, expiry]} under the lock; written back on exit."""
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    with open(self.path) as f:
                        table = json.load(f)
                    table = table if isinstance(table, dict) else {}
                except (OSError, ValueError):
                    table = {}
                now = time.time()
                table = {j: v for j, v in table.items()
                         if isinstance(v, list) and len(v) == 2 and isinstance(v[1], (int, float)) and v[1] > now
                         and _owner_alive(j)}
                yield table
                tmp = f"{self.path}.{os.getpid()}.tmp"
                with open(tmp, "w") as f:
                    json.dump(table, f)
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def acquire(self, user: str, job: str, ttl: float, limits: Limits) -> int:
        """0 if the lease was taken, 1 if the server is full, 2 if the user is at their cap."""
        with self._table() as table:
            if len(table) >= limits.total:
                return 1
            if sum(1 for u, _ in table.values() if u == user) >= limits.per_user:
                return 2
            table[job] = [user, time.time() + ttl]
            return 0

    def touch(self, user: str, job: str, ttl: float) -> None:
        """Extend the lease of ``job`` by ``ttl`` seconds from now."""
        with self._table() as table:
            if job in table:
                table[job] = [user, time.time() + ttl]

    def release(self, job: str) -> None:
        """Give the lease of ``job`` back (no-op if it is not held)."""
        with self._table() as table:
            table.pop(job, None)

    def counts(self, user: str) -> tuple[int, int]:
        """(running jobs on the server, running jobs of ``user``)."""
        with self._table() as table:
            return len(table), sum(1 for u, _ in table.values() if u == user)


def slots():
    """The job-slot store of this configuration (Redis if configured, else the cache-folder file)."""
    url = jobs.redis_url()
    return RedisSlots(url) if url else FileSlots()


def _cap_message(code: int, limits: Limits) -> str:
    """The message for an acquire result of 1 (server full) or 2 (user at cap)."""
    if code == 1:
        return (f"The server is busy: {limits.total} training jobs are running (the limit). "
                "Try again when one finishes.")
    return (f"You already have {limits.per_user} training job{'s' if limits.per_user > 1 else ''} running "
            "(the limit per user). Wait for it to finish or cancel it.")


def admission_message(user_id, limits: Limits | None = None) -> str | None:
    """None if ``user_id`` could start a job now, else why not (Redis down, server full, user at cap).
    A quick check for the page; :func:`job_slot` decides for real."""
    limits = limits or Limits.from_env()
    ok, message = jobs.jobs_available()
    if not ok:
        return message
    user = clean_user_id(user_id)
    try:
        total, mine = slots().counts(user)
    except jobs.JobsUnavailable as e:
        return str(e)
    if total >= limits.total:
        return _cap_message(1, limits)
    if mine >= limits.per_user:
        return _cap_message(2, limits)
    return None


class JobSlot:
    """A held job slot: its deadline and lease (see :func:`job_slot`)."""

    def __init__(self, store, user: str, job: str, limits: Limits):
        self.store, self.user, self.job, self.limits = store, user, job, limits
        self.started = time.monotonic()
        self.deadline = self.started + limits.time_limit

    def expired(self) -> bool:
        """True once the job has used its time limit."""
        return time.monotonic() >= self.deadline

    def elapsed(self) -> float:
        """Seconds since the slot was taken."""
        return time.monotonic() - self.started

    def touch(self) -> None:
        """Keep the lease alive (call it now and then; cheap, errors ignored)."""
        with contextlib.suppress(jobs.JobsUnavailable, OSError):
            self.store.touch(self.user, self.job, self._ttl())

    def _ttl(self) -> float:
        return max(0.0, self.deadline - time.monotonic()) + LEASE_MARGIN

    def time_message(self) -> str:
        """The note shown when a job stopped at its time limit."""
        return (f"Stopped after the time limit of {self.limits.time_limit:g} s per job; "
                "showing the results so far.")


@contextlib.contextmanager
def job_slot(user_id, limits: Limits | None = None, store=None):
    """Hold one job slot of ``user_id`` for the ``with`` block.

    Raises :class:`LimitReached` (message for the user) when the server or the user is at the
    cap, :class:`visualizer.jobs.JobsUnavailable` when Redis is down. The slot is released on
    exit; if the process is killed instead, its lease expires after the time limit plus
    :data:`LEASE_MARGIN` seconds.
    """
    limits = limits or Limits.from_env()
    store = store or slots()
    user = clean_user_id(user_id)
    job = jobs.current_job_id() or f"direct-{os.getpid()}-{secrets.token_hex(8)}"
    code = store.acquire(user, job, limits.time_limit + LEASE_MARGIN, limits)
    if code:
        raise LimitReached(_cap_message(code, limits))
    try:
        yield JobSlot(store, user, job, limits)
    finally:
        with contextlib.suppress(jobs.JobsUnavailable, OSError):
            store.release(job)
