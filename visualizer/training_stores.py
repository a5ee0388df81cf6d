"""The training panel's browser-held stores, read defensively.

The progress payload and the recorded snapshots come back from the browser, so any of them may
be forged: unknown architectures, strings where numbers belong, ragged or huge lists, numbers
beyond any float. :func:`clean_history`, :func:`clean_snap`, :func:`clean_progress` and
:func:`clean_record` keep only what :mod:`visualizer.training_figures` reads, in the types and
sizes it expects (at most :data:`MAX_POINTS` values per series); everything else is dropped.
"""
from __future__ import annotations

import math

from .compute import DISPLAY_NAMES
from .training import MAX_RECORDED, MAX_STEPS
from .urlstate import SPEC

MAX_POINTS = MAX_STEPS  # values per loss / gradient-norm history
MAX_T = SPEC["seq_len"][2]  # time steps per snapshot row
MAX_L = SPEC["layers"][2]  # rows (layers) per snapshot
MAX_SNAPS = 2 * MAX_RECORDED  # snapshots per architecture
_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _number(v) -> float:
    """A float from a JSON value (``"nan"``/``"inf"`` strings as :func:`visualizer.training.jlist`
    writes them; anything unreadable, or an integer beyond floats, is NaN)."""
    if isinstance(v, bool) or v is None:
        return math.nan
    if isinstance(v, (int, float)):
        try:
            return float(v)
        except OverflowError:
            return math.nan
    if isinstance(v, str):
        return _SPECIAL.get(v, math.nan)
    return math.nan


def _numbers(values, cap: int) -> list[float] | None:
    """A flat list of at most ``cap`` floats, or None when ``values`` is not a list."""
    if not isinstance(values, list):
        return None
    return [_number(v) for v in values[:cap]]


def _int(v, low: int, high: int) -> int | None:
    """An int in [low, high] from a JSON number, else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return int(v) if low <= v <= high else None


def _positive(v) -> float | None:
    """A finite positive float, else None."""
    x = _number(v)
    return x if math.isfinite(x) and x > 0 else None


def clean_history(h) -> dict | None:
    """One architecture's history as :func:`visualizer.training.history` writes it, or None."""
    if not isinstance(h, dict):
        return None
    losses = _numbers(h.get("losses"), MAX_POINTS) or []
    norms = _numbers(h.get("grad_norms"), MAX_POINTS) or []
    clipped = h.get("clipped") if isinstance(h.get("clipped"), list) else []
    clipped = [s for s in (_int(c, 1, len(norms)) for c in clipped[:MAX_POINTS]) if s is not None]
    name = h.get("name") if isinstance(h.get("name"), str) else None
    return {"name": name[:40] if name else None, "losses": losses, "grad_norms": norms, "clipped": clipped,
            "steps": _int(h.get("steps"), 1, MAX_STEPS) or len(losses), "clip": _positive(h.get("clip")),
            "baseline": _positive(h.get("baseline")), "diverged": h.get("diverged") is True}


def clean_snap(s, arch=None) -> dict | None:
    """One snapshot (``arch``, ``step``, ``hidden`` (L, T)) with L, T bounded and rows of equal length."""
    if not isinstance(s, dict):
        return None
    arch = s.get("arch") if arch is None else arch
    step = _int(s.get("step"), 0, MAX_STEPS)
    rows = s.get("hidden")
    if arch not in DISPLAY_NAMES or step is None or not isinstance(rows, list) or not rows:
        return None
    rows = [rows] if not isinstance(rows[0], list) else rows[:MAX_L]
    rows = [_numbers(r, MAX_T) for r in rows]
    if any(r is None for r in rows) or len({len(r) for r in rows}) != 1 or not rows[0]:
        return None
    return {"arch": arch, "step": step, "hidden": rows}


def _known(mapping) -> list:
    """The (arch, value) pairs of a dict keyed by known architectures (in the app's order)."""
    if not isinstance(mapping, dict):
        return []
    return [(a, mapping[a]) for a in DISPLAY_NAMES if a in mapping]


def clean_progress(progress) -> dict | None:
    """A progress payload reduced to ``archs``, ``live`` and ``full``, or None when unusable."""
    if not isinstance(progress, dict) or not isinstance(progress.get("archs"), dict):
        return None
    archs = {a: h for a, h in ((a, clean_history(h)) for a, h in _known(progress["archs"])) if h}
    live = progress.get("live") if isinstance(progress.get("live"), list) else []
    snaps, seen = [], set()
    for s in live[: len(DISPLAY_NAMES)]:
        snap = clean_snap(s)
        if snap and snap["arch"] not in seen:
            seen.add(snap["arch"])
            snaps.append(snap)
    return {"archs": archs, "live": snaps, "full": progress.get("full", True) is not False}


def clean_record(record) -> dict:
    """A recorded run reduced to ``archs`` (histories) and ``snaps`` ({arch: snapshots sorted by step})."""
    if not isinstance(record, dict):
        return {"archs": {}, "snaps": {}}
    archs = {a: h for a, h in ((a, clean_history(h)) for a, h in _known(record.get("archs"))) if h}
    snaps = {}
    for arch, items in _known(record.get("snaps")):
        if isinstance(items, list):
            kept = [c for c in (clean_snap(s, arch) for s in items[:MAX_SNAPS]) if c]
            kept = [c for c in kept if len(c["hidden"][-1]) == len(kept[-1]["hidden"][-1])] if kept else []
            if kept:
                snaps[arch] = sorted(kept, key=lambda s: s["step"])
    return {"archs": archs, "snaps": snaps}
