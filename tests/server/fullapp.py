"""The whole app, with its training panel, for the server tests and the load test.

``visualizer.app`` itself once the training panel is integrated there; until then the part-2
browser-test harness (``tests/e2e/part2_app.py``), which adds the panel without editing part 1.
``server`` is the WSGI app (gunicorn ``tests.server.fullapp:server``); a Celery worker loads it
with ``BPTTLAB_APP=tests.server.fullapp``.
"""
from __future__ import annotations

from visualizer import app as part1


def has_jobs(dash_app) -> bool:
    """True if the app has a background callback."""
    return any(cb.get("background") for cb in dash_app.callback_map.values())


if has_jobs(part1.app):
    app = part1.app
else:
    from tests.e2e.part2_app import create_app

    app = create_app()
server = app.server
