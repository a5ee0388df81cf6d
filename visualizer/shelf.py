"""Where checked uploads wait for the page changes after them, whichever process answers those.

A page change sends only the weights store (the checked upload's summary and its SHA-256
digest), not the file: the server looks the upload up by its digest. Each worker keeps the
checked models it used (:func:`visualizer.weights.stored_weights`); this shelf holds the file
bytes of every accepted upload for the processes that have not seen it yet:

- one machine (``bpttlab``, ``bpttlab serve --workers N``): a diskcache in the private cache
  folder (:func:`visualizer.storage.cache_dir`), at most :data:`DISK_BYTES`, oldest uploads
  dropped first;
- several machines (``BPTTLAB_REDIS_URL`` set): Redis, which every web server reaches, at most
  :data:`REDIS_BYTES` of uploads, oldest dropped first (one atomic script, so concurrent
  uploads keep the bound).

Only uploads that passed every check are shelved, under their digest (64 hex characters, never a
name from the browser); what comes back is hashed again before use. A shelf that cannot be
reached (a full disk, Redis down) is no shelf: the page says the upload must be sent again.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import re
import sqlite3
import threading
import time

from . import cluster, storage
from .npz import MAX_BYTES

log = logging.getLogger(__name__)

DIGEST = re.compile(r"^[0-9a-f]{64}$")
DISK_BYTES = 512 * 1024 * 1024
REDIS_BYTES = 256 * 1024 * 1024
FOLDER = "uploads"
KEY = f"{cluster.PREFIX}:upload:"  # + digest: the file bytes
INDEX, SIZES = f"{cluster.PREFIX}:uploads", f"{cluster.PREFIX}:upload-sizes"  # digest -> time stored, size

# Store one upload, then drop the oldest until the uploads fit ARGV[4] bytes.
PUT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SET', KEYS[1], ARGV[2])
    redis.call('HSET', KEYS[3], ARGV[1], string.len(ARGV[2]))
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[3])) do total = total + tonumber(v) end
while total > tonumber(ARGV[4]) do
    local old = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
    if not old then break end
    total = total - tonumber(redis.call('HGET', KEYS[3], old) or 0)
    redis.call('DEL', ARGV[5] .. old)
    redis.call('ZREM', KEYS[2], old)
    redis.call('HDEL', KEYS[3], old)
end
return total
"""


class DiskShelf:
    """Uploads in a diskcache of the private cache folder (one machine's processes share it)."""

    def __init__(self, folder, size_limit: int = DISK_BYTES):
        import diskcache

        self.size_limit = size_limit  # culled in put (diskcache's own culling drops 10 entries at once)
        self.cache = diskcache.Cache(str(folder), size_limit=2**62, eviction_policy="none", cull_limit=0)

    def has(self, key: str) -> bool:
        return key in self.cache

    def put(self, key: str, data: bytes) -> None:
        self.cache.set(key, data)
        for _ in range(len(self.cache)):  # drop the oldest uploads until the rest fit the limit
            if self.cache.volume() <= self.size_limit:
                break
            oldest = next(iter(self.cache), None)  # keys in the order they were stored
            if oldest is None:
                break
            self.cache.delete(oldest)

    def get(self, key: str) -> bytes | None:
        return self.cache.get(key)


class RedisShelf:
    """Uploads in Redis (every machine of a cluster shares it), bounded by :data:`REDIS_BYTES`."""

    def __init__(self, url: str, max_bytes: int = REDIS_BYTES):
        import redis

        # not cluster.redis_client: the file bytes must come back as bytes, and a 20 MB upload needs longer
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=cluster.HEALTH_TIMEOUT,
                                           retry_on_timeout=False, health_check_interval=0)
        self.script, self.max_bytes = self.client.register_script(PUT), max_bytes

    def has(self, key: str) -> bool:
        return bool(self.client.exists(KEY + key))

    def put(self, key: str, data: bytes) -> None:
        self.script(keys=[KEY + key, INDEX, SIZES], args=[key, data, time.time(), self.max_bytes, KEY])

    def get(self, key: str) -> bytes | None:
        size = self.client.hget(SIZES, key)
        if size is None or int(size) > MAX_BYTES:  # bounded before it is read
            return None
        self.client.zadd(INDEX, {key: time.time()}, xx=True)  # a used upload is dropped last
        return self.client.get(KEY + key)


_SHELF: dict = {}
_LOCK = threading.Lock()


def _errors() -> tuple:
    """What a failing shelf raises: the disk's, the database's, Redis' (any of its errors, e.g. out of memory)."""
    found = [OSError, sqlite3.Error, storage.UnsafeStorage, *cluster.connection_errors()]
    for module, name in (("diskcache", "Timeout"), ("redis.exceptions", "RedisError")):
        with contextlib.suppress(ImportError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


def shelf():
    """This process's shelf (Redis with ``BPTTLAB_REDIS_URL``, else the disk), None if it cannot open."""
    where = cluster.redis_url() or "disk"
    with _LOCK:
        if where not in _SHELF:
            try:
                _SHELF[where] = RedisShelf(where) if where != "disk" else DiskShelf(storage.cache_dir() / FOLDER)
            except (ImportError, *_errors()) as e:
                log.warning("uploads cannot be shared between processes (%s): %s", where.split("@")[-1], e)
                return None
        return _SHELF[where]


def put(key: str, data: bytes) -> bool:
    """Shelve an accepted upload's file bytes under their SHA-256 ``key``; False if the shelf failed."""
    s = shelf()
    if s is None or not DIGEST.match(key) or len(data) > MAX_BYTES:
        return False
    try:
        if not s.has(key):
            s.put(key, data)
        return True
    except _errors() as e:
        log.warning("could not shelve an upload: %s", e)
        return False


def get(key: str) -> bytes | None:
    """The file bytes shelved under ``key``, or None (not there, dropped, unreadable, or not what
    ``key`` is the SHA-256 of)."""
    s = shelf()
    if s is None or not isinstance(key, str) or not DIGEST.match(key):
        return None
    try:
        data = s.get(key)
    except _errors() as e:
        log.warning("could not read a shelved upload: %s", e)
        return None
    if not isinstance(data, bytes) or len(data) > MAX_BYTES or hashlib.sha256(data).hexdigest() != key:
        return None
    return data
