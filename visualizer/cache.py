"""A bounded LRU memo for the app's computations (per process; results are deterministic in the key)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from functools import wraps


def memoize(maxsize: int):
    """Bounded LRU memo of a one-argument function of a hashable key.

    Unlike ``functools.lru_cache``, concurrent calls with the same key compute once: the
    second caller waits for the first (callbacks run in parallel threads and often
    need the same BPTT run). Exceptions are not cached.
    """
    def decorate(fn):
        cache, locks, guard = OrderedDict(), {}, threading.Lock()

        @wraps(fn)
        def wrapper(key):
            with guard:
                if key in cache:
                    cache.move_to_end(key)
                    return cache[key]
                lock = locks.setdefault(key, threading.Lock())
            with lock:
                with guard:
                    if key in cache:
                        return cache[key]
                try:
                    value = fn(key)
                finally:
                    with guard:
                        locks.pop(key, None)
                with guard:
                    cache[key] = value
                    while len(cache) > maxsize:
                        cache.popitem(last=False)
            return value

        def cache_clear():
            with guard:
                cache.clear()

        wrapper.cache_clear = cache_clear
        wrapper.cache_len = lambda: len(cache)
        return wrapper
    return decorate
