"""Argument checks shared by the core: each raises ValueError naming the argument.

Booleans are never accepted as numbers (``True`` is an ``int`` in Python, but ``hidden_size=True``
is a mistake, not a 1).
"""
from __future__ import annotations

import numpy as np


def is_int(v) -> bool:
    """True for Python and NumPy integers (not bool)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def is_number(v) -> bool:
    """True for real int/float scalars (not bool), finite or not."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def is_real(v) -> bool:
    """True for finite real scalars (not bool)."""
    return is_number(v) and bool(np.isfinite(v))


def check_int(name, value, low=1) -> None:
    """Raise unless value is an integer >= low."""
    if not is_int(value) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def check_positive_int(name, value) -> None:
    """Raise unless value is an integer > 0."""
    if not is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_optional_positive_int(name, value) -> None:
    """Raise unless value is None or an integer > 0."""
    if value is not None and (not is_int(value) or value <= 0):
        raise ValueError(f"{name} must be None or a positive integer, got {value!r}")


def check_index(name, value, n) -> int:
    """Raise unless 0 <= value < n (an integer); return it as an int."""
    if not is_int(value) or not 0 <= value < n:
        raise ValueError(f"{name} must be an integer in [0, {n}), got {value!r}")
    return int(value)


def check_steps(steps, T, name="steps") -> list[int]:
    """Increasing step indices in [0, T) as ints (all T steps when ``steps`` is None)."""
    if steps is None:
        return list(range(T))
    try:
        idx = np.asarray(steps)
    except Exception:
        raise ValueError(f"{name} must be increasing integers in [0, {T}), got {steps!r}") from None
    if (idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= T
            or np.any(np.diff(idx) <= 0)):
        raise ValueError(f"{name} must be increasing integers in [0, {T}), got {steps!r}")
    return [int(t) for t in idx]


def check_lags(lags, T) -> int:
    """The first step t computed for ``lags`` = K (t >= T-1-K; None: every step, 0)."""
    if lags is None:
        return 0
    if not is_int(lags) or lags < 0:
        raise ValueError(f"lags must be None or an integer >= 0, got {lags!r}")
    return max(0, T - 1 - int(lags))


def check_layers(layers, L) -> set[int]:
    """The set of layer indices in ``layers`` (None: all L), each in [0, L)."""
    if layers is None:
        return set(range(L))
    try:
        chosen = {int(i) for i in layers}
    except (TypeError, ValueError):
        raise ValueError(f"layers must be None or layer indices in [0, {L}), got {layers!r}") from None
    if not chosen or min(chosen) < 0 or max(chosen) >= L:
        raise ValueError(f"layers must be None or layer indices in [0, {L}), got {layers!r}")
    return chosen


def check_sequence(x, input_size) -> np.ndarray:
    """``x`` as an array of finite reals of shape (T, B, input_size) with T, B > 0."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or x.dtype == np.bool_:
        raise ValueError(f"x must hold real numbers, got dtype {x.dtype}")
    if x.ndim != 3 or x.shape[2] != input_size or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must have shape (T, B, {input_size}) with T, B > 0, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf")
    return x
