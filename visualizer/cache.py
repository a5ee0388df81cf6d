"""A bounded LRU memo for the app's computations (per process; results are deterministic in the key).

Bounded in entries and in bytes: each cached value is measured once by :func:`nbytes` (the
NumPy arrays it holds, found through dataclass fields, dicts, lists, tuples and a model's
``params``), and the least recently used entries go until the total fits the budget. A value
larger than the whole budget is returned but not kept.
"""
from __future__ import annotations

import dataclasses
import sys
import threading
from collections import OrderedDict
from functools import wraps

import numpy as np

_SMALL = 64  # bytes counted for a scalar, None or a small object


def nbytes(value, _depth: int = 0) -> int:
    """Approximate bytes held by ``value``: its NumPy arrays and strings (a bound from above for
    arrays sharing memory, which are counted once each)."""
    if _depth > 6:
        return _SMALL
    if isinstance(value, np.ndarray):
        return int(value.nbytes) + _SMALL
    if isinstance(value, (str, bytes, bytearray)):
        return sys.getsizeof(value)
    if isinstance(value, dict):
        return _SMALL + sum(nbytes(k, _depth + 1) + nbytes(v, _depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return _SMALL + sum(nbytes(v, _depth + 1) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _SMALL + sum(nbytes(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value))
    params = getattr(value, "params", None)  # a core.Model
    if isinstance(params, dict):
        return _SMALL + nbytes(params, _depth + 1)
    return _SMALL


def memoize(maxsize: int, max_bytes: int | None = None, key=None):
    """Bounded LRU memo of a one-argument function.

    At most ``maxsize`` entries and (if given) ``max_bytes`` bytes by :func:`nbytes`. ``key``
    maps the argument to its cache key (default: the argument itself, which must be hashable);
    the argument is never kept, only its key and the result.

    Unlike ``functools.lru_cache``, concurrent calls with the same key compute once: the
    second caller waits for the first (callbacks run in parallel threads and often
    need the same BPTT run). Exceptions are not cached.
    """
    keyfn = key or (lambda arg: arg)

    def decorate(fn):
        cache, sizes, locks, guard = OrderedDict(), {}, {}, threading.Lock()
        total = [0]

        def store(k, value):
            size = nbytes(value) if max_bytes is not None else 0
            if max_bytes is not None and size > max_bytes:
                return
            cache[k], sizes[k] = value, size
            total[0] += size
            while len(cache) > maxsize or (max_bytes is not None and total[0] > max_bytes):
                old, _ = cache.popitem(last=False)
                total[0] -= sizes.pop(old)

        @wraps(fn)
        def wrapper(arg):
            k = keyfn(arg)
            with guard:
                if k in cache:
                    cache.move_to_end(k)
                    return cache[k]
                lock = locks.setdefault(k, threading.Lock())
            with lock:
                with guard:
                    if k in cache:
                        return cache[k]
                try:
                    value = fn(arg)
                finally:
                    with guard:
                        locks.pop(k, None)
                with guard:
                    if k not in cache:
                        store(k, value)
            return value

        def cache_clear():
            with guard:
                cache.clear()
                sizes.clear()
                total[0] = 0

        wrapper.cache_clear = cache_clear
        wrapper.cache_len = lambda: len(cache)
        wrapper.cache_bytes = lambda: total[0]
        return wrapper
    return decorate
