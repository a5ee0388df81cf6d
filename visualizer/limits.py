"""Limits that keep one server (or a cluster) fair for a whole class: work per request, training
jobs per user and in total, time per job; and the random per-browser id the per-user limit counts by.

- Work per request: ``seq_len x batch x layers x hidden^2`` per architecture, capped at
  :data:`~visualizer.urlstate.WORK_CAP` (the views clamp to it); a training run adds a factor
  ``steps`` and is capped at :data:`TRAIN_WORK_CAP`.
- Jobs: every start of a job gets its own lease (a random id), taken by the web server that
  receives the start, *before* the job is queued (:func:`admit`): at most ``per_user`` jobs per
  browser (running or waiting) and a total cap. With Celery + Redis the total is the capacity of
  the live workers (the sum of their ``-c``, see :mod:`visualizer.cluster`) plus ``queue`` jobs
  waiting, so every machine added adds capacity; without Redis it is ``total`` jobs on this
  machine. Leases live in Redis when ``BPTTLAB_REDIS_URL`` is set, else in a lock-protected file
  of the private cache folder (:mod:`visualizer.storage`).
- A running job renews its lease every second or so (:meth:`JobSlot.touch`); a lease not renewed
  for :data:`HEARTBEAT_TTL` seconds expires, so a killed job frees its slot within seconds and the
  page that polls it learns it was lost (:func:`lease_state`).
- Time per job: ``BPTTLAB_JOB_TIME_LIMIT`` seconds (default 120), checked cooperatively by
  :meth:`JobSlot.expired` (the job stops and shows what it has), enforced hard by Celery.

Settings: ``BPTTLAB_MAX_JOBS_PER_USER`` (default 1), ``BPTTLAB_MAX_JOBS`` (without Redis; default:
the number of CPU cores, at least 2), ``BPTTLAB_MAX_QUEUED`` (with Redis; default 20),
``BPTTLAB_JOB_TIME_LIMIT``. With Redis, every process checks at start that its settings are the
cluster's (:func:`cluster_settings`, :func:`visualizer.cluster.verify_config`).

The user id lives in the browser (``dcc.Store(storage_type="local")``, filled by
``assets/identity.js`` with 128 random bits). It is NOT authentication: anyone can send any id.
It only keeps one student from taking every job slot by accident.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass

from dash import ClientsideFunction, Input, Output, State, dcc, html

from . import cluster, ids
from .leases import HEARTBEAT_TTL, START_TTL, slots
from .urlstate import WORK_CAP, work

ANONYMOUS = "anonymous"
USER_ID_PATTERN = "^[A-Za-z0-9_-]{8,64}$"  # also the browser's check (assets/identity.js reads it from a store)
_USER_ID = re.compile(USER_ID_PATTERN)
TRAIN_WORK_CAP = 20 * WORK_CAP  # steps x seq_len x batch x layers x hidden^2, per architecture (~1 min)
TIME_LIMIT_ENV = "BPTTLAB_JOB_TIME_LIMIT"
DEFAULT_TIME_LIMIT = 120.0  # seconds of work per background job
TOUCH_EVERY = 1.0  # seconds between two renewals by a running job
QUEUE_WAIT = 900.0  # seconds an admitted job may wait in the Celery queue before its lease is dropped

CURRENT_LEASE: contextvars.ContextVar = contextvars.ContextVar("bpttlab_lease", default=None)


class LimitReached(RuntimeError):
    """A cap was hit; ``str(e)`` is the user's message."""


def time_limit() -> float:
    """Seconds one background job may work (``BPTTLAB_JOB_TIME_LIMIT``, default 120)."""
    try:
        value = float(os.environ.get(TIME_LIMIT_ENV, DEFAULT_TIME_LIMIT))
    except ValueError:
        return DEFAULT_TIME_LIMIT
    return value if 0 < value < 86400 else DEFAULT_TIME_LIMIT


def _env_int(name: str, default: int) -> int:
    """A positive int from the environment, else ``default``."""
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value >= 1 else default


@dataclass(frozen=True)
class Limits:
    """The caps in force (see the module docstring)."""

    per_user: int = 1
    total: int = max(2, os.cpu_count() or 2)
    queue: int = 20
    time_limit: float = DEFAULT_TIME_LIMIT
    work_cap: int = WORK_CAP
    train_work_cap: int = TRAIN_WORK_CAP

    @classmethod
    def from_env(cls) -> Limits:
        """Limits from ``BPTTLAB_MAX_JOBS_PER_USER``, ``BPTTLAB_MAX_JOBS``, ``BPTTLAB_MAX_QUEUED``,
        ``BPTTLAB_JOB_TIME_LIMIT``."""
        return cls(per_user=_env_int("BPTTLAB_MAX_JOBS_PER_USER", cls.per_user),
                   total=_env_int("BPTTLAB_MAX_JOBS", cls.total), queue=_env_int("BPTTLAB_MAX_QUEUED", cls.queue),
                   time_limit=time_limit())


def cluster_settings(limits: Limits, secret: bytes) -> dict:
    """What every process sharing one Redis must agree on (the secret only as a fingerprint;
    ``total`` is per machine and not part of it)."""
    settings = {k: v for k, v in asdict(limits).items() if k != "total"}
    return {**settings, "secret": cluster.fingerprint(secret)}


# ----------------------------------------------------------------------------- work caps
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


def user_id_in(context) -> str:
    """The browser's id among a callback's inputs and states (``context`` as Dash hands it to a
    background job: ``inputs_list``, ``states_list``), cleaned; ``"anonymous"`` if absent."""
    for group in ("inputs_list", "states_list"):
        for item in (context or {}).get(group) or []:
            if isinstance(item, dict) and item.get("id") == ids.USER_STORE and item.get("property") == "data":
                return clean_user_id(item.get("value"))
    return ANONYMOUS


def user_store() -> html.Div:
    """The browser-local store of this browser's random id, and the rule it must follow (put it in the layout)."""
    return html.Div([dcc.Store(id=ids.USER_STORE, storage_type="local"),
                     dcc.Store(id=ids.USER_RULES, data={"pattern": USER_ID_PATTERN})], hidden=True)


def register_identity(app) -> None:
    """Give every browser a random id in ``ids.USER_STORE`` (kept in localStorage; ``assets/identity.js``)."""
    app.clientside_callback(ClientsideFunction("identity", "assign"), Output(ids.USER_STORE, "data"),
                            Input(ids.USER_STORE, "modified_timestamp"), State(ids.USER_STORE, "data"),
                            State(ids.USER_RULES, "data"))


def new_user_id() -> str:
    """A random id of the kind the browser makes (for tests and scripts)."""
    return secrets.token_hex(16)


def new_lease() -> str:
    """A new job identity."""
    return secrets.token_hex(16)


# ----------------------------------------------------------------------------- admission
NO_WORKER = ("No training worker is running right now, so training cannot start (the plots keep working). "
             "The teacher starts one with: celery -A visualizer.celery_worker worker")


def _cap_message(code: int, limits: Limits, capacity: int | None) -> str:
    """The message for an admission result of 1 (full) or 2 (user at cap)."""
    if code == 2:
        return (f"You already have {limits.per_user} training job{'s' if limits.per_user > 1 else ''} running or "
                "waiting (the limit per user). Wait for it to finish or cancel it.")
    if capacity is None:
        return (f"The server is busy: {limits.total} training jobs are running (the limit). "
                "Try again when one finishes.")
    return (f"The server is busy: {capacity} training jobs are running and {limits.queue} are waiting (the limit). "
            "Try again in a minute.")


def admit(user_id, lease: str, limits: Limits | None = None, store=None) -> str | None:
    """Admit a job start of ``user_id`` under ``lease`` (on the web server, before the job is queued).

    None if admitted (the lease is held), else the user's message: Redis down, no worker, the
    cluster full, the user at their cap.
    """
    limits = limits or Limits.from_env()
    ok, message = cluster.jobs_available()
    if not ok:
        return message
    user = clean_user_id(user_id)
    queued = cluster.redis_url() is not None
    try:
        store = store or slots()
        capacity = store.capacity() if queued else None
        if queued and capacity == 0:
            return NO_WORKER
        cap = capacity + limits.queue if queued else limits.total
        code = store.admit(user, lease, QUEUE_WAIT if queued else START_TTL, cap, limits.per_user)
    except cluster.JobsUnavailable as e:
        return str(e)
    return _cap_message(code, limits, capacity) if code else None


class JobSlot:
    """A running job's lease: its deadline and its renewals (see :func:`job_slot`)."""

    def __init__(self, store, user: str, lease: str, limits: Limits, clock=time.monotonic):
        self.store, self.user, self.lease, self.limits, self.clock = store, user, lease, limits, clock
        self.started = clock()
        self.deadline = self.started + limits.time_limit
        self.renewed = self.started

    def expired(self) -> bool:
        """True once the job has used its time limit."""
        return self.clock() >= self.deadline

    def elapsed(self) -> float:
        """Seconds since the job started."""
        return self.clock() - self.started

    def touch(self) -> None:
        """Renew the lease (at most every :data:`TOUCH_EVERY` seconds; cheap, errors ignored)."""
        now = self.clock()
        if now - self.renewed < TOUCH_EVERY:
            return
        self.renewed = now
        with contextlib.suppress(cluster.JobsUnavailable, OSError):
            self.store.touch(self.user, self.lease, HEARTBEAT_TTL)

    def time_message(self) -> str:
        """The note shown when a job stopped at its time limit."""
        return (f"Stopped after the time limit of {self.limits.time_limit:g} s per job; "
                "showing the results so far.")


GONE = ("This job was cancelled, or waited in the queue longer than allowed, before it could start. "
        "Press ▶ Train to start it again.")


@contextlib.contextmanager
def job_slot(user_id, limits: Limits | None = None, store=None):
    """Run the ``with`` block as the job of a lease; yields a :class:`JobSlot`.

    Inside a background job the web server already admitted it (:data:`CURRENT_LEASE` names
    the lease): the lease turns from queued to running, or :class:`LimitReached` (:data:`GONE`)
    if it was dropped meanwhile. Called directly (no lease), it admits first and raises
    :class:`LimitReached` at a cap, :class:`~visualizer.cluster.JobsUnavailable` when Redis is
    down. The lease is released on exit; if the process is killed instead, it expires after
    :data:`HEARTBEAT_TTL` seconds.
    """
    limits = limits or Limits.from_env()
    store = store or slots()
    user = clean_user_id(user_id)
    lease = CURRENT_LEASE.get()
    if lease is None:
        lease = f"direct-{os.getpid()}-{new_lease()}"
        code = store.admit(user, lease, START_TTL, limits.total, limits.per_user)
        if code:
            raise LimitReached(_cap_message(code, limits, None))
    if not store.start(lease, HEARTBEAT_TTL):
        raise LimitReached(GONE)
    try:
        yield JobSlot(store, user, lease, limits)
    finally:
        with contextlib.suppress(cluster.JobsUnavailable, OSError):
            store.release(lease)
