"""Where Dash background callbacks run.

Default (one user, nothing to install): ``DiskcacheManager`` on a cache folder in the system's
temporary directory. For a class on one server: set ``BPTTLAB_REDIS_URL`` (e.g.
``redis://127.0.0.1:6379/0``) and start a Celery worker (see the README); then background jobs
run on Celery with Redis as broker and result store.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

REDIS_ENV = "BPTTLAB_REDIS_URL"
CACHE_ENV = "BPTTLAB_CACHE_DIR"


def redis_url() -> str | None:
    """The Redis URL from the environment, or None for the embedded default."""
    url = os.environ.get(REDIS_ENV, "").strip()
    return url or None


def make_celery(url: str):
    """A Celery app using ``url`` as broker and result backend."""
    from celery import Celery

    return Celery(__name__, broker=url, backend=url)


def background_manager():
    """The background-callback manager for this process (Celery if configured, else diskcache)."""
    url = redis_url()
    if url:
        from dash import CeleryManager

        return CeleryManager(make_celery(url))
    import diskcache
    from dash import DiskcacheManager

    folder = os.environ.get(CACHE_ENV) or str(Path(tempfile.gettempdir()) / "bpttlab-cache")
    return DiskcacheManager(diskcache.Cache(folder))
