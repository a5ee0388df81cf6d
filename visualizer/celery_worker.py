"""The module the Celery worker loads: ``celery -A visualizer.celery_worker worker``.

Dash registers each background callback as a Celery task named after a hash of the callback's
source and id, on every background manager of the process. So the worker builds this process's
manager (:func:`visualizer.jobs.background_manager`, a Celery one since ``BPTTLAB_REDIS_URL`` must
be set) and imports the app, exactly as a gunicorn worker does: both then know the same tasks.

Start it next to ``bpttlab serve`` (same ``BPTTLAB_REDIS_URL``)::

    BPTTLAB_REDIS_URL=redis://127.0.0.1:6379/0 celery -A visualizer.celery_worker worker -c 2 -l info

``-c`` is the number of jobs that run at once; keep it at or above ``BPTTLAB_MAX_JOBS`` (default:
the number of cores). Jobs run at low CPU priority and with one BLAS thread each, so training
never starves the page's quick views.
``BPTTLAB_APP`` names another module to import instead of ``visualizer.app`` (tests use it).
"""
from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads
    os.environ.setdefault(_name, "1")  # one BLAS thread per job process: -c sets the parallelism

import importlib  # noqa: E402

from . import jobs  # noqa: E402

if not jobs.redis_url():
    raise SystemExit(f"{jobs.REDIS_ENV} is not set: the Celery worker needs the Redis URL the app uses.")

app = jobs.celery_app()  # celery -A finds this attribute
manager = jobs.background_manager()
dash_app_module = importlib.import_module(os.environ.get("BPTTLAB_APP", "visualizer.app"))
