"""The whole app, training panel included, for the server tests and the load test: ``visualizer.app``.

``server`` is the WSGI app (gunicorn ``tests.server.fullapp:server``); a Celery worker loads it
with ``BPTTLAB_APP=tests.server.fullapp``.
"""
from __future__ import annotations

from visualizer.app import app, server

__all__ = ["app", "server"]
