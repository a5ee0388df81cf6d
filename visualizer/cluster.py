"""Redis as the meeting point of a class server's processes: connection, health, worker capacity,
and one configuration for the whole cluster.

Nothing here is needed without ``BPTTLAB_REDIS_URL``; Redis' and Celery's packages are imported
only when it is set (a plain ``pip install .`` has neither).

- Health: a job start pings Redis with a short timeout (:func:`redis_healthy`); while Redis is
  down, starting a job says so (:data:`UNAVAILABLE`) and every plot keeps working.
- Capacity: each Celery worker announces its job slots (``-c``) under a key that expires unless
  the worker renews it every few seconds (:func:`announce_worker`); the cluster's capacity is the
  sum over live workers (:func:`capacity`), so a machine added is capacity added.
- Configuration: the limits every process enforces must agree. Each process publishes its
  settings at start; a process whose settings differ from the cluster's refuses to start
  (:func:`verify_config`), naming the settings.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time

log = logging.getLogger(__name__)

REDIS_ENV = "BPTTLAB_REDIS_URL"
PREFIX = "bpttlab"
HEALTH_TIMEOUT = 0.5  # seconds to connect to / hear from Redis before calling it down
HEALTH_TTL = 1.0  # seconds a health verdict is reused within one process
WORKER_TTL = 15.0  # seconds a worker's announcement lives unless renewed
CONFIG_TTL = 600  # seconds the cluster's configuration outlives the last process that confirmed it

UNAVAILABLE = ("Background jobs are unavailable right now: the job queue (Redis) does not answer. "
               "The plots keep working; try again in a moment.")


class JobsUnavailable(RuntimeError):
    """Background jobs cannot start now (Redis unreachable). ``str(e)`` is the user's message."""


class ConfigMismatch(RuntimeError):
    """This process's settings differ from the cluster's; ``str(e)`` names them."""


def redis_url() -> str | None:
    """The Redis URL from the environment, or None for the embedded default."""
    url = os.environ.get(REDIS_ENV, "").strip()
    return url or None


def redis_client(url: str, timeout: float = HEALTH_TIMEOUT):
    """A redis-py client for ``url`` that gives up after ``timeout`` seconds."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                retry_on_timeout=False, health_check_interval=0, decode_responses=True)


def connection_errors() -> tuple:
    """Exception types meaning "Redis / the broker is not reachable" (only those of installed packages)."""
    found = [ConnectionError, TimeoutError, OSError]
    try:
        import redis.exceptions

        found += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError]
    except ImportError:
        pass
    try:
        import kombu.exceptions

        found.append(kombu.exceptions.OperationalError)
    except ImportError:
        pass
    return tuple(found)


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


def forget_health(url: str | None) -> None:
    """Drop the cached verdict for ``url`` (after a failed call)."""
    _health.pop(url, None)


def jobs_available() -> tuple[bool, str | None]:
    """(True, None) if background jobs can start now, else (False, the user's message)."""
    if redis_url() is None or redis_healthy():
        return True, None
    return False, UNAVAILABLE


def call(fn, *args, **kwargs):
    """``fn(*args)``, with Redis being unreachable raised as :class:`JobsUnavailable`."""
    try:
        return fn(*args, **kwargs)
    except connection_errors() as e:
        forget_health(redis_url())
        raise JobsUnavailable(UNAVAILABLE) from e


# ----------------------------------------------------------------------------- worker capacity
def announce_worker(client, name: str, slots: int, ttl: float = WORKER_TTL) -> None:
    """Say that worker ``name`` runs ``slots`` jobs at once, for the next ``ttl`` seconds (and keep
    the cluster's settings alive while it runs)."""
    pipe = client.pipeline()
    pipe.zadd(f"{PREFIX}:workers", {name: time.time() + ttl})
    pipe.hset(f"{PREFIX}:worker-slots", name, int(slots))
    pipe.expire(f"{PREFIX}:config", CONFIG_TTL)  # a running worker keeps the settings it was checked against
    pipe.execute()


def withdraw_worker(client, name: str) -> None:
    """Worker ``name`` stops taking jobs."""
    pipe = client.pipeline()
    pipe.zrem(f"{PREFIX}:workers", name)
    pipe.hdel(f"{PREFIX}:worker-slots", name)
    pipe.execute()


def capacity(client) -> int:
    """Jobs the live workers of the cluster run at once (sum of their slots; 0 with no worker)."""
    now = time.time()
    live = client.zrangebyscore(f"{PREFIX}:workers", now, "+inf")
    if not live:
        return 0
    return sum(int(s or 0) for s in client.hmget(f"{PREFIX}:worker-slots", live))


# ----------------------------------------------------------------------------- configuration
def fingerprint(secret: bytes) -> str:
    """A public fingerprint of the signing secret (to check that every process has the same)."""
    return hashlib.sha256(b"bpttlab-signing-secret:" + secret).hexdigest()[:16]


def verify_config(client, settings: dict, ttl: int = CONFIG_TTL) -> None:
    """Publish ``settings`` as the cluster's if there are none yet, else check that they agree.

    Raises :class:`ConfigMismatch` naming every setting that differs (the cluster's value and
    this process's). Each successful check keeps the configuration for another ``ttl`` seconds.
    """
    key = f"{PREFIX}:config"
    mine = json.dumps(settings, sort_keys=True)
    client.set(key, mine, nx=True, ex=ttl)
    theirs = client.get(key)
    if theirs is None or theirs == mine:
        client.expire(key, ttl)
        return
    cluster = json.loads(theirs)
    diffs = [f"{k}={settings.get(k)!r} here but {cluster.get(k)!r} on the cluster"
             for k in sorted(set(settings) | set(cluster)) if settings.get(k) != cluster.get(k)]
    raise ConfigMismatch("This process's settings differ from the other servers and workers sharing this Redis: "
                         + "; ".join(diffs) + ". Every machine needs the same settings (and the same "
                         "BPTTLAB_SECRET_KEY). Fix them, or, after changing them on every machine, clear the old ones "
                         f"with: redis-cli -u <BPTTLAB_REDIS_URL> DEL {key}")
