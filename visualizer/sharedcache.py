"""Results shared by the worker processes of one class server.

``bpttlab serve`` runs several gunicorn workers, and a student's next request lands on any of
them: with two workers, a worker's own memo (:mod:`visualizer.cache`) misses half the results the
student's previous request computed (the architectures and tabs that did not change). With
:data:`ENV` set to ``1`` (``bpttlab serve`` sets it when it starts more than one worker), the
memoized computations also keep their results in a diskcache folder, ``results`` inside the
private cache folder (:func:`visualizer.storage.cache_dir`: owned by this account, mode 0700,
checked; its values are pickles that only this account's processes write and read), and look
there before computing.

- Bounded: at most :data:`MAX_BYTES` on disk (the least recently stored go first); a value over
  :data:`MAX_VALUE_BYTES` is not shared.
- Keys name the function, everything its results depend on besides its argument (a fingerprint
  of the source of ``core`` and ``visualizer``, NumPy's version and the view budget, so a new
  version or setting never reads an old result) and the argument's key as text. Only keys made
  of values are shared (the callers pass None for a key that is an identity).
- Values come back read-only, as the memo hands them out.
- A failing store (locked past :data:`TIMEOUT` seconds, broken, a full disk) is logged once per
  process and the result is computed as without it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np

from . import budget, storage

ENV = "BPTTLAB_SHARED_RESULTS"
MAX_BYTES = 512 * 2**20
MAX_VALUE_BYTES = 8 * 2**20  # T=300, H=64, L=2 gradients are 0.3 MB; only the documented maxima are larger
TIMEOUT = 0.5  # seconds to wait for the database's lock before computing instead
MISS = object()

log = logging.getLogger(__name__)
_lock = threading.Lock()
_state = {"pid": None, "store": None}


def enabled() -> bool:
    """True when :data:`ENV` asks for the shared store."""
    return os.environ.get(ENV) == "1"


@functools.cache
def context() -> str:
    """A fingerprint of what results depend on besides their keys: the source of ``core`` and
    ``visualizer``, NumPy's version and the view budget."""
    import core

    h = hashlib.sha256()
    for package in (Path(core.__file__).parent, Path(__file__).parent):
        for path in sorted(package.rglob("*.py")):
            h.update(f"{package.name}/{path.relative_to(package).as_posix()}\0".encode())
            h.update(path.read_bytes())
    h.update(f"numpy {np.__version__} view {budget.VIEW_SECONDS!r}".encode())
    return h.hexdigest()[:20]


def _warn(what: str, e: Exception) -> None:
    with _lock:
        if _state.get("warned"):
            return
        _state["warned"] = True
    log.warning("shared results: %s failed (%s: %s); this worker computes without them", what, type(e).__name__, e)


def _store():
    """This process's store (opened once per process: gunicorn forks its workers), or None."""
    pid = os.getpid()
    with _lock:
        if _state["pid"] == pid:
            return _state["store"]
        _state.update(pid=pid, store=None)
    try:
        from diskcache import Cache

        folder = storage.cache_dir() / "results"
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        storage.check_private(folder, "folder")
        store = Cache(str(folder), size_limit=MAX_BYTES, eviction_policy="least-recently-stored",
                      timeout=TIMEOUT, statistics=False)
    except Exception as e:  # an unusable folder: compute without the store
        _warn("opening the store", e)
        return None
    with _lock:
        _state["store"] = store
    return store


def freeze(value):
    """``value`` with every NumPy array it holds (through dataclass fields, tuples, lists and dict
    values) made read-only; returns ``value``."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, (tuple, list)):
        for v in value:
            freeze(v)
    elif isinstance(value, dict):
        for v in value.values():
            freeze(v)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            freeze(getattr(value, f.name))
    return value


def _full_key(name: str, text: str) -> str:
    return f"{name}|{context()}|{text}"


def get(name: str, text: str):
    """The stored result of ``name`` for the key ``text``, or :data:`MISS`."""
    store = _store()
    if store is None:
        return MISS
    try:
        value = store.get(_full_key(name, text), default=MISS)
    except Exception as e:
        _warn("reading", e)
        return MISS
    return MISS if value is MISS else freeze(value)


def put(name: str, text: str, value, size: int) -> None:
    """Keep ``value`` (``size`` bytes by :func:`visualizer.cache.nbytes`) as ``name``'s result for ``text``."""
    if size > MAX_VALUE_BYTES:
        return
    store = _store()
    if store is None:
        return
    try:
        store.set(_full_key(name, text), value)
    except Exception as e:
        _warn("writing", e)
