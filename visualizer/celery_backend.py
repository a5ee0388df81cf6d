"""Celery's Redis result store without its pub/sub result consumer (used by :mod:`visualizer.jobs`).

Dash reads background-job results with plain GETs (``backend.get(key)``), never with
``AsyncResult.get()``. Celery's Redis backend still subscribes every task the web process
starts to a pub/sub channel, and once that subscriber loses Redis it gives up for good ("The
Celery application must be restarted"). Without the subscription, a Redis outage is just a
failed GET, and jobs work again as soon as Redis is back.
"""
from __future__ import annotations

from celery.backends.redis import RedisBackend


class PollingRedisBackend(RedisBackend):
    """Redis result backend that never subscribes to task results (results are polled)."""

    def on_task_call(self, producer, task_id):
        """No pub/sub subscription for the task just sent."""
