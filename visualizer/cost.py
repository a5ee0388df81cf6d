"""The cost of BPTT: measured memory and time per gradient against T, and the Cost view's payload and caption.

:func:`sweep` times one gradient of the first chosen architecture by each method (full BPTT,
truncated BPTT run window by window, binomial checkpointing with ceil(sqrt(T)) states and with a
fixed budget of states, RTRL) at log-spaced T up to the app's maximum. Memory is what each method
reports holding (tests check it equals the method's model). A method's timing stops before the
point that would exceed its share of :data:`MEASURE_SECONDS` by the cost model of
:mod:`visualizer.budget` (:func:`sweep_plan`); the rest of its curve is its last measured time
scaled by its work model, flagged as such. What truncation gives up, per architecture, comes from
:mod:`visualizer.tradeoff`; :func:`payload` puts the two together and :func:`note` words them.

Both are memoized: a second visit of the tab recomputes nothing. Nothing here imports dash or plotly.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

import core
from core import checkpointing as ck
from core.models import parameter_count
from core.rtrl import flops_model as rtrl_flops
from core.rtrl import memory_model as rtrl_memory

from . import budget, compute, tradeoff
from .cache import memoize

T_MIN, T_MAX = 4, 2000  # the sweep's range: a few steps to the app's longest sequence (urlstate.SPEC, tested)
T_POINTS = 10  # log-spaced T values measured at most (the app's own T is added)
MEASURE_SECONDS = budget.COST_SWEEP_SECONDS  # seconds one sweep may spend timing (cost model), shared by the methods
DEFAULT_WINDOW = 20  # the truncated method's window when the app's truncation is off
BUDGET_STATES = 4  # the stored states of the budget method
METHODS = ("bptt", "window", "sqrt", "budget", "rtrl")


@dataclass(frozen=True)
class SweepKey:
    """What the measured costs depend on: the model's shape, the batch, the window and the loss placement."""

    arch: str
    input_size: int
    hidden: int
    output_size: int
    layers: int
    batch: int
    window: int
    loss_on: str


@dataclass(frozen=True, eq=False)
class MethodCurve:
    """One method's cost against T. ``measured[i]`` False: seconds[i] comes from the work model
    (scaled from the last measured point) and memory[i] from the memory model."""

    method: str
    label: str
    T: np.ndarray
    memory: np.ndarray  # bytes
    seconds: np.ndarray
    measured: np.ndarray  # bool
    recomputed: np.ndarray  # steps evaluated more than once


@dataclass(frozen=True, eq=False)
class Sweep:
    """:func:`sweep`'s result: ``curves`` in :data:`METHODS` order."""

    key: SweepKey
    name: str
    curves: tuple


def labels(window: int) -> dict:
    """Legend label of each method."""
    return {"bptt": "full BPTT", "window": f"truncated, k={window}", "sqrt": "checkpoint, √T states",
            "budget": f"checkpoint, {BUDGET_STATES} states", "rtrl": "RTRL"}


def t_grid() -> np.ndarray:
    """The sweep's T values: log-spaced from T_MIN to T_MAX."""
    return np.unique(np.round(np.geomspace(T_MIN, T_MAX, T_POINTS)).astype(int))


def window_of(key) -> int:
    """The truncated method's window: the app's truncation, or :data:`DEFAULT_WINDOW` when it is off."""
    return int(key.truncate) if key.truncate else DEFAULT_WINDOW


def sweep_key(key) -> SweepKey:
    """The :class:`SweepKey` of a :class:`visualizer.compute.RunKey` or :class:`~visualizer.compute.ModelRun`."""
    cfg = compute.model_of(key).config
    return SweepKey(key.arch, cfg.input_size, key.hidden, cfg.output_size, key.layers, key.data.batch,
                    window_of(key), key.data.loss_on)


def _model(key: SweepKey):
    """A model of the key's shape (the costs do not depend on the weights' values)."""
    return core.build(key.arch, input_size=key.input_size, hidden_size=key.hidden, output_size=key.output_size,
                      num_layers=key.layers)


def _run(method, model, x, y, loss_on, window):
    """One gradient by ``method`` -> (memory_bytes, recomputed steps)."""
    T = x.shape[0]
    if method == "bptt":
        return core.bptt(model, x, y, loss_on=loss_on).memory_bytes, 0
    if method == "window":
        return core.windowed_bptt(model, x, y, loss_on=loss_on, window=window).memory_bytes, 0
    if method in ("sqrt", "budget"):
        res = core.checkpointed_bptt(model, x, y, loss_on=loss_on, budget_states=states_of(method, T))
        return res.memory_bytes, res.recomputed_steps
    return core.rtrl(model, x, y, loss_on=loss_on).memory_bytes, 0


def _timed(fn):
    """(seconds of the fastest of up to 5 calls, stopping once they add up to >= 60 ms, the last result)."""
    best, spent, out = math.inf, 0.0, None
    for _ in range(5):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent >= 0.06:
            break
    return best, out


def memory_model(method, cfg, T, B, window) -> int:
    """The memory model of ``method`` (each equals what the method reports; see tests/core)."""
    if method == "bptt":
        return ck.bptt_memory_model(cfg, T, B)
    if method == "window":
        return ck.window_memory_model(cfg, T, B, window)
    if method in ("sqrt", "budget"):
        return ck.memory_model(cfg, T, B, states_of(method, T))
    return rtrl_memory(cfg, B)


def recomputed_model(method, T) -> int:
    """Steps ``method`` evaluates more than once at length T."""
    return ck.recomputed_steps(T, states_of(method, T) - 1) if method in ("sqrt", "budget") else 0


def states_of(method, T) -> int:
    """Stored states of a checkpointing method at length T: ceil(sqrt(T)), or :data:`BUDGET_STATES`."""
    return math.ceil(math.sqrt(T)) if method == "sqrt" else BUDGET_STATES


def work_of(method, cfg, T, B) -> float:
    """The work model of ``method`` (see :func:`core.checkpointing.work_model`)."""
    if method in ("sqrt", "budget"):
        return ck.work_model(cfg, T, B, "budget", states_of(method, T))
    return ck.work_model(cfg, T, B, method)


def chunks(method, T, window) -> int:
    """How many chunks of steps ``method`` runs the layers over (weight passes): one, T/k windows, or
    one per stored state and one more, at most T (measured at H=512, 4 layers, T from 2 to 64)."""
    return {"bptt": 1, "window": math.ceil(T / max(window, 1))}.get(method, min(T, states_of(method, T) + 1))


def predicted_seconds(method, cfg, T, B, window=DEFAULT_WINDOW) -> float:
    """Seconds of one gradient by ``method`` at length T by the cost model (:mod:`visualizer.budget`)."""
    if method == "rtrl":
        return budget.rtrl_seconds(rtrl_flops(cfg, T, B), T, cfg.num_layers)
    return budget.gradient_seconds(work_of(method, cfg, T, B), ck.step_work(cfg, B), cfg.num_layers,
                                   chunks(method, T, window) * parameter_count(cfg))


def timing_seconds(t: float) -> float:
    """Seconds :func:`_timed` spends on a call of ``t`` seconds (up to five calls, stopping at 60 ms)."""
    return t * min(5, max(1, math.ceil(0.06 / max(t, 1e-9))))


def sweep_plan(cfg, B, layers, window=DEFAULT_WINDOW) -> dict:
    """{method: how many of :func:`t_grid`'s lengths it measures}: in increasing T while the predicted
    seconds of timing them fit the method's share of :data:`MEASURE_SECONDS` (the shortest always,
    except RTRL's)."""
    share, plan = MEASURE_SECONDS / len(methods_for(layers)), {}
    for m in methods_for(layers):
        n, spent = 0, 0.0
        for T in t_grid():
            spent += timing_seconds(predicted_seconds(m, cfg, int(T), B, window))
            if spent > share and (n or m == "rtrl"):
                break
            n += 1
        plan[m] = n
    return plan


def sweep_seconds(cfg, B, layers, window=DEFAULT_WINDOW) -> float:
    """Predicted seconds of :func:`sweep_plan`'s measurements."""
    return sum(timing_seconds(predicted_seconds(m, cfg, int(T), B, window))
               for m, n in sweep_plan(cfg, B, layers, window).items() for T in t_grid()[:n])


def methods_for(layers: int) -> tuple:
    """The methods the sweep shows (all of them, whatever the number of layers)."""
    return METHODS


@memoize(maxsize=compute.ENTRIES)  # small curves; a class's students each keep (architecture x method) entries
def method_curve(mkey) -> MethodCurve:
    """Measure one method over :func:`t_grid` for ``mkey = (SweepKey, method)``, in increasing T, at
    the lengths :func:`sweep_plan` allows; the remaining points come from the models (the last
    measured time scaled by the work model, or the cost model when none was measured)."""
    key, m = mkey
    model = _model(key)
    cfg, B = model.config, key.batch
    planned = sweep_plan(cfg, B, key.layers, key.window or DEFAULT_WINDOW)[m]
    rng = np.random.default_rng(0)
    grid = t_grid()
    x_all = rng.standard_normal((grid[-1], B, key.input_size))
    mem, sec, ok, rec = [], [], [], []
    last = None  # (T, seconds) of the last measured point
    with np.errstate(all="ignore"):
        for i, T in enumerate(int(t) for t in grid):
            x = x_all[:T]
            y = np.repeat(x[..., :1], key.output_size, axis=-1)
            y = y if key.loss_on == "all" else y[-1]
            if i < planned:
                s, (b, r) = _timed(lambda x=x, y=y: _run(m, model, x, y, key.loss_on, key.window))
                last = (T, s)
                mem.append(b), sec.append(s), ok.append(True), rec.append(r)
            else:
                guess = (last[1] * work_of(m, cfg, T, B) / work_of(m, cfg, last[0], B) if last is not None
                         else predicted_seconds(m, cfg, T, B))
                mem.append(memory_model(m, cfg, T, B, key.window)), sec.append(guess)
                ok.append(False), rec.append(recomputed_model(m, T))
    ro = compute.read_only
    return MethodCurve(m, labels(key.window)[m], ro(grid.copy()), ro(np.array(mem, float)), ro(np.array(sec, float)),
                       ro(np.array(ok, bool)), ro(np.array(rec, float)))


def sweep(key: SweepKey) -> Sweep:
    """Every method's :func:`method_curve` (each memoized: changing the window re-measures only truncation)."""
    return Sweep(key, compute.DISPLAY_NAMES[key.arch],
                 tuple(method_curve((key if m == "window" else replace(key, window=0), m))
                       for m in methods_for(key.layers)))


# ----------------------------------------------------------------------------- the view's payload, words, series
@dataclass(frozen=True, eq=False)
class CostPayload:
    """The Cost view's data: the first architecture's :class:`Sweep` and every architecture's
    :class:`visualizer.tradeoff.Tradeoff`."""

    sweep: Sweep
    tradeoffs: tuple
    T_app: int  # the app's sequence length (marked on the top panels)


def planned_seconds(keys) -> float:
    """Predicted seconds of the whole Cost view for a list of :class:`visualizer.compute.RunKey`."""
    sk = sweep_key(keys[0])
    total = sweep_seconds(_model(sk).config, sk.batch, sk.layers, sk.window)
    return total + sum(tradeoff.tradeoff_seconds(*tradeoff.sizes(k), seconds=s)
                       for k, s in zip(keys, tradeoff.shares(keys), strict=True))


def payload(keys) -> CostPayload | None:
    """The Cost view's payload for a list of :class:`visualizer.compute.RunKey` (None if empty)."""
    if not keys:
        return None
    compared = tuple(tradeoff.tradeoff(k, s) for k, s in zip(keys, tradeoff.shares(keys), strict=True))
    return CostPayload(sweep(sweep_key(keys[0])), compared, int(keys[0].data.seq_len))


def _mib(b) -> str:
    """Bytes as a short GiB/MiB/KiB figure."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if b >= size:
            return f"{b / size:.3g} {unit}"
    return f"{b / 2**10:.3g} KiB"


def _at(curve, T):
    """(memory, seconds, measured, recomputed) of ``curve`` at length T."""
    i = int(np.flatnonzero(curve.T == T)[0])
    return curve.memory[i], curve.seconds[i], bool(curve.measured[i]), int(curve.recomputed[i])


def note(keys) -> str | None:
    """Sentences for the caption, every number read from the payload the figure draws."""
    pl = payload(keys)
    if pl is None:
        return None
    sw, c = pl.sweep, {cv.method: cv for cv in pl.sweep.curves}
    T = int(sw.curves[0].T[-1])
    full, win, sq, bud = (_at(c[m], T) for m in ("bptt", "window", "sqrt", "budget"))
    c_sqrt = states_of("sqrt", T)
    out = [f"At T={T}, full BPTT holds {_mib(full[0])} for the {sw.name}; truncation to k={sw.key.window} holds "
           f"{_mib(win[0])}; checkpointing with {c_sqrt} states holds {_mib(sq[0])} and recomputes {sq[3]} steps; "
           f"{BUDGET_STATES} states hold {_mib(bud[0])} and recompute {bud[3]} steps "
           f"({bud[1] / full[1]:.2g}× full BPTT's time{'' if bud[2] and full[2] else ', partly from the cost model'})."]
    r = _at(c["rtrl"], T)
    out.append(f"RTRL holds {_mib(r[0])} at every T (the sensitivities d s/d θ) but needs "
               f"{r[1] / full[1]:.3g}× full BPTT's time at T={T}"
               f"{' (measured)' if r[2] and full[2] else ' (from the cost model)'}.")
    lines = []
    for t in pl.tradeoffs:
        if not np.all(np.isfinite(t.rel_error)):
            lines.append(f"{t.name}: its gradients overflowed (inf/NaN), so there is no error to show")
            continue
        bad = np.flatnonzero(~(t.rel_error <= 0.1))
        k10 = "every k shown" if not bad.size else (
            f"k ≥ {int(t.windows[bad[-1] + 1])}" if bad[-1] + 1 < t.windows.size else "no window shown")
        worst_exact = max(e[3] for e in t.exact)
        lines.append(f"{t.name}: relative error ≤ 10% from {k10} (cosine {t.cosine[0]:.3f} at k={int(t.windows[0])})"
                     f", exact methods within {worst_exact:.1g}")
    out.append("Truncation: " + "; ".join(lines) + ".")
    measured = sum(int(cv.measured.sum()) for cv in sw.curves)
    total = sum(cv.measured.size for cv in sw.curves)
    out.append(f"Timings: {measured} of {total} points measured (the fastest of up to five calls; "
               f"random inputs of this model's size, T at {len(sw.curves[0].T)} log-spaced lengths, cached); "
               "dashed parts come from each method's cost model; wall-clock times on a server shared with other "
               "requests vary from run to run. "
               "Windows k: " + ", ".join(sorted({f"{len(t.windows)}" for t in pl.tradeoffs}, key=int))
               + " log-spaced values per architecture. "
               f"This work is planned to fit {budget.VIEW_SECONDS:g} s of computation by the view's cost model "
               f"({planned_seconds(keys):.2g} s planned).")
    fewer = [f"{t.name} on the first " + (f"{t.T} of {t.T_full} steps" if t.sequences == keys[0].data.batch else
                                          f"{t.sequences} of {keys[0].data.batch} sequences"
                                          + ("" if t.T_full == t.T else f" and their first {t.T} steps"))
             for t in pl.tradeoffs if t.sequences < keys[0].data.batch or t.T_full > t.T]
    if fewer:
        out.append("To fit the time bound the gradients are compared " + ", ".join(fewer) + ".")
    rtrl_where = [f"{t.name} {e[4]}" for t in pl.tradeoffs for e in t.exact if e[0] == "rtrl"]
    if rtrl_where:
        out.append("RTRL's error: " + "; ".join(rtrl_where) + ".")
    if len(rtrl_where) < len(pl.tradeoffs):
        out.append("RTRL's error is not checked where two of its steps on one sequence would take more than "
                   f"{tradeoff.RTRL_SHARE * tradeoff.TRADEOFF_SECONDS:.2g} s by the cost model.")
    if keys[0].data.loss_on == "last":
        out.append("With the loss on the last step only its window (the last T mod k steps, or k) gets gradient.")
    return " ".join(out)
