"""The module the Celery worker loads: ``celery -A visualizer.celery_worker worker``.

Dash registers each background callback as a Celery task named after a hash of the callback's
source and id, on every background manager of the process. So the worker builds this process's
manager (:func:`visualizer.jobs.background_manager`, a Celery one since ``BPTTLAB_REDIS_URL`` must
be set) and imports the app, exactly as a gunicorn worker does: both then know the same tasks.
The code must be the same version on every machine (the task names are hashes of it).

Start it next to ``bpttlab serve`` (same ``BPTTLAB_REDIS_URL``, ``BPTTLAB_SECRET_KEY`` and limits)::

    celery -A visualizer.celery_worker worker -c 2 -l info

``-c`` is the number of jobs it runs at once (about one per core). While it runs, the worker
announces its ``-c`` in Redis every few seconds (:func:`visualizer.cluster.announce_worker`):
the web servers admit as many running jobs as the live workers have slots, plus
``BPTTLAB_MAX_QUEUED`` waiting. At start it refuses to run without ``BPTTLAB_SECRET_KEY`` or
with settings that differ from the cluster's. Jobs run at low CPU priority and with one BLAS
thread each, so training never starves the page's quick views.
``BPTTLAB_APP`` names another module to import instead of ``visualizer.app`` (tests use it).
"""
from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads
    os.environ.setdefault(_name, "1")  # one BLAS thread per job process: -c sets the parallelism

import contextlib  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402

from celery.signals import worker_ready, worker_shutdown  # noqa: E402

from . import cluster, jobs, storage  # noqa: E402

log = logging.getLogger(__name__)

if not cluster.redis_url():
    raise SystemExit(f"{cluster.REDIS_ENV} is not set: the Celery worker needs the Redis URL the app uses.")
try:
    _warning = jobs.check_cluster()
except (storage.UnsafeStorage, cluster.ConfigMismatch) as e:
    raise SystemExit(str(e)) from None
if _warning:
    log.warning(_warning)

app = jobs.celery_app()  # celery -A finds this attribute
manager = jobs.background_manager()
dash_app_module = importlib.import_module(os.environ.get("BPTTLAB_APP", "visualizer.app"))

_stop = threading.Event()
_announced: dict = {}  # this worker's name, once it takes jobs


def _announce(name: str, slots: int) -> None:
    """Renew this worker's announcement until it shuts down (errors: retried at the next beat)."""
    client = cluster.redis_client(cluster.redis_url(), timeout=2.0)
    while not _stop.is_set():
        try:
            cluster.announce_worker(client, name, slots)
        except cluster.connection_errors():
            log.warning("could not announce worker %s to Redis", name)
        _stop.wait(cluster.WORKER_TTL / 3)


@worker_ready.connect
def _start_announcing(sender=None, **_):
    """The worker takes jobs: announce its slots (``-c``) from now on."""
    slots = int(getattr(getattr(sender, "controller", None), "concurrency", 0) or os.cpu_count() or 1)
    _announced["name"] = sender.hostname
    threading.Thread(target=_announce, args=(sender.hostname, slots), name="bpttlab-announce", daemon=True).start()


@worker_shutdown.connect
def _stop_announcing(**_):
    """The worker stops: withdraw its slots."""
    _stop.set()
    if "name" in _announced:
        client = cluster.redis_client(cluster.redis_url(), timeout=2.0)
        with contextlib.suppress(*cluster.connection_errors()):
            cluster.withdraw_worker(client, _announced["name"])
