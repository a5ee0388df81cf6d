"""Job leases: the identity and the slot of every training job, shared by every process of a
server or cluster (see :mod:`visualizer.limits` for the rules they enforce).

A lease is taken when a web server admits a job (queued), turns running when the job starts,
is renewed while it runs and is released when it ends, leaving a short-lived "done" mark. A lease
that is not renewed expires: its job is then "lost" (its process or worker died). Two stores
with one interface: :class:`RedisSlots` (with ``BPTTLAB_REDIS_URL``; atomic Lua scripts) and
:class:`FileSlots` (a JSON file in the private cache folder, under ``flock``).
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import time

from . import cluster, storage

HEARTBEAT_TTL = 15.0  # seconds a running job's lease lives unless renewed
START_TTL = 60.0  # seconds an admitted job has to start when nothing queues it (diskcache: a new process)
DONE_TTL = 600  # seconds a finished job is remembered as finished (not lost)


# admit: 0 taken, 1 cluster full, 2 user at cap.  start: 1 running, 0 gone.
class RedisSlots:
    """Job leases in Redis: sorted sets (member lease, score expiry time) for everything and per
    user, a hash lease -> user, a sorted set of the queued leases (score: enqueue time) and a
    short-lived ``done`` marker per finished lease; changed atomically by Lua scripts."""

    ADMIT = """
    local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
    for _, j in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
        redis.call('HDEL', KEYS[3], j)
        redis.call('ZREM', KEYS[4], j)
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
    if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
    redis.call('HSET', KEYS[3], ARGV[3], ARGV[6])
    redis.call('ZADD', KEYS[4], now, ARGV[3])
    redis.call('EXPIRE', KEYS[2], math.ceil(ttl) + 60)
    return 0
    """
    START = """
    local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
    local expiry = redis.call('ZSCORE', KEYS[1], ARGV[3])
    local user = redis.call('HGET', KEYS[2], ARGV[3])
    if (not expiry) or tonumber(expiry) <= now or (not user) then return 0 end
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
    redis.call('ZADD', ARGV[4] .. user, now + ttl, ARGV[3])
    redis.call('EXPIRE', ARGV[4] .. user, math.ceil(ttl) + 60)
    redis.call('ZREM', KEYS[3], ARGV[3])
    return 1
    """
    RELEASE = """
    local user = redis.call('HGET', KEYS[2], ARGV[1])
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('HDEL', KEYS[2], ARGV[1])
    redis.call('ZREM', KEYS[3], ARGV[1])
    if user then redis.call('ZREM', ARGV[2] .. user, ARGV[1]) end
    redis.call('SET', ARGV[3] .. ARGV[1], '1', 'EX', tonumber(ARGV[4]))
    return 0
    """

    def __init__(self, url: str, prefix: str = f"{cluster.PREFIX}:jobs"):
        self.client = cluster.redis_client(url, timeout=2.0)
        self.prefix = prefix
        self.keys = [f"{prefix}:all", f"{prefix}:owner", f"{prefix}:queue"]

    def _user_key(self, user):
        return f"{self.prefix}:user:{user}"

    def capacity(self) -> int:
        """Jobs the live workers run at once."""
        return int(cluster.call(cluster.capacity, self.client))

    def admit(self, user: str, lease: str, ttl: float, cap: int, per_user: int) -> int:
        """Take a queued lease for ``user``: 0 if taken, 1 if ``cap`` leases are out, 2 if the user has ``per_user``."""
        all_, owner, queue = self.keys
        return int(cluster.call(self.client.eval, self.ADMIT, 4, all_, self._user_key(user), owner, queue,
                                time.time(), ttl, lease, cap, per_user, user))

    def start(self, lease: str, ttl: float) -> bool:
        """The job of ``lease`` starts running (renewed for ``ttl`` s); False if the lease is gone."""
        return bool(cluster.call(self.client.eval, self.START, 3, *self.keys, time.time(), ttl, lease,
                                 f"{self.prefix}:user:"))

    def touch(self, user: str, lease: str, ttl: float) -> None:
        """Extend ``lease`` by ``ttl`` seconds from now (only if it is still held)."""
        until = time.time() + ttl
        for key in (self.keys[0], self._user_key(user)):
            cluster.call(self.client.zadd, key, {lease: until}, xx=True)

    def release(self, lease: str) -> None:
        """Give ``lease`` back (no-op if it is not held) and remember it as finished."""
        cluster.call(self.client.eval, self.RELEASE, 3, *self.keys, lease, f"{self.prefix}:user:",
                     f"{self.prefix}:done:", DONE_TTL)

    def state(self, lease: str) -> str:
        """``"queued"``, ``"running"``, ``"done"`` (released) or ``"lost"`` (expired unreleased, or unknown)."""
        pipe = self.client.pipeline()
        pipe.zscore(self.keys[0], lease)
        pipe.zscore(self.keys[2], lease)
        pipe.exists(f"{self.prefix}:done:{lease}")
        until, queued, done = cluster.call(pipe.execute)
        if until is not None and until > time.time():
            return "queued" if queued is not None else "running"
        return "done" if done else "lost"

    def remember(self, key: str, lease: str, ttl: float) -> None:
        """Note that the job started under Dash's cache key ``key`` has ``lease`` (for its polls), and back."""
        pipe = self.client.pipeline()
        pipe.set(f"{self.prefix}:key:{key}", lease, ex=int(ttl))
        pipe.set(f"{self.prefix}:result-key:{lease}", key, ex=int(ttl))
        cluster.call(pipe.execute)

    def lease_of(self, key: str) -> str | None:
        """The lease noted for ``key``, else None."""
        return cluster.call(self.client.get, f"{self.prefix}:key:{key}")

    def key_of(self, lease: str) -> str | None:
        """Dash's cache key noted for ``lease`` (where its result is written), else None."""
        return cluster.call(self.client.get, f"{self.prefix}:result-key:{lease}")

    def mark_cancel(self, lease: str, ending: bool, ttl: float) -> None:
        """Note that the job of ``lease`` is being cancelled (``ending``: until its lease is released), or
        that its cancel is over (its slot is free and it has no result to wait for); kept ``ttl`` seconds."""
        cluster.call(self.client.set, f"{self.prefix}:cancel:{lease}", "ending" if ending else "over",
                     ex=max(1, int(ttl)))

    def cancel_state(self, lease: str) -> str | None:
        """``"ending"`` while a cancel of ``lease`` frees its slot, ``"over"`` once it did, else None."""
        return cluster.call(self.client.get, f"{self.prefix}:cancel:{lease}")

    def position(self, lease: str) -> int | None:
        """1 for the next job to start, 2 for the one after, ...; None if ``lease`` is not queued."""
        rank = cluster.call(self.client.zrank, self.keys[2], lease)
        return None if rank is None else int(rank) + 1

    def counts(self, user: str) -> tuple[int, int]:
        """(leases out, leases of ``user``), queued or running."""
        now = time.time()
        keys = (self.keys[0], self._user_key(user))
        total, mine = (cluster.call(self.client.zcount, key, now, "+inf") for key in keys)
        return int(total), int(mine)


class FileSlots:
    """Job leases in a JSON file of the private cache folder, changed under an exclusive ``flock``
    (shared by every process on this machine). Same interface as :class:`RedisSlots`."""

    def __init__(self, folder=None):
        folder = folder or storage.cache_dir()
        self.path = os.path.join(folder, "job-slots.json")
        self.lock_path = os.path.join(folder, "job-slots.lock")

    @contextlib.contextmanager
    def _table(self):
        """{"live": {lease: {user, until, queued}}, "done": {lease: until}} under the lock; written back on exit."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    with open(self.path) as f:
                        table = json.load(f)
                except (OSError, ValueError):
                    table = {}
                now = time.time()
                live = table.get("live") if isinstance(table, dict) else None
                done = table.get("done") if isinstance(table, dict) else None
                table = {"live": {j: v for j, v in (live if isinstance(live, dict) else {}).items()
                                  if isinstance(v, dict) and isinstance(v.get("until"), (int, float))
                                  and v["until"] > now},
                         "done": {j: t for j, t in (done if isinstance(done, dict) else {}).items()
                                  if isinstance(t, (int, float)) and t > now}}
                yield table
                tmp = f"{self.path}.{os.getpid()}.tmp"
                with open(tmp, "w") as f:
                    json.dump(table, f)
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def capacity(self) -> int:
        """Unknown without workers (the cap is ``Limits.total``)."""
        return 0

    def admit(self, user: str, lease: str, ttl: float, cap: int, per_user: int) -> int:
        """See :meth:`RedisSlots.admit`."""
        with self._table() as t:
            live = t["live"]
            if sum(1 for v in live.values() if v.get("user") == user) >= per_user:
                return 2
            if len(live) >= cap:
                return 1
            live[lease] = {"user": user, "until": time.time() + ttl, "queued": time.time()}
            return 0

    def start(self, lease: str, ttl: float) -> bool:
        """See :meth:`RedisSlots.start`."""
        with self._table() as t:
            if lease not in t["live"]:
                return False
            t["live"][lease].update(until=time.time() + ttl, queued=None)
            return True

    def touch(self, user: str, lease: str, ttl: float) -> None:
        """See :meth:`RedisSlots.touch`."""
        with self._table() as t:
            if lease in t["live"]:
                t["live"][lease]["until"] = time.time() + ttl

    def release(self, lease: str) -> None:
        """See :meth:`RedisSlots.release`."""
        with self._table() as t:
            t["live"].pop(lease, None)
            t["done"][lease] = time.time() + DONE_TTL

    def state(self, lease: str) -> str:
        """See :meth:`RedisSlots.state`."""
        with self._table() as t:
            if lease in t["live"]:
                return "queued" if t["live"][lease].get("queued") else "running"
            return "done" if lease in t["done"] else "lost"

    def position(self, lease: str) -> int | None:
        """See :meth:`RedisSlots.position`."""
        with self._table() as t:
            queued = sorted((v["queued"], j) for j, v in t["live"].items() if v.get("queued"))
        return next((i + 1 for i, (_, j) in enumerate(queued) if j == lease), None)

    def counts(self, user: str) -> tuple[int, int]:
        """See :meth:`RedisSlots.counts`."""
        with self._table() as t:
            return len(t["live"]), sum(1 for v in t["live"].values() if v.get("user") == user)


def slots():
    """The lease store of this configuration (Redis if configured, else the cache-folder file)."""
    url = cluster.redis_url()
    return _redis_slots(url) if url else FileSlots()


@functools.cache
def _redis_slots(url: str) -> RedisSlots:
    """One Redis lease store (and connection pool) per URL and process."""
    return RedisSlots(url)
