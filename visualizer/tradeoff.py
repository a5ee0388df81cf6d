"""What truncation gives up: truncated gradients against the full one, and the exact methods' error.

:func:`tradeoff` compares, per architecture on the app's task, the truncated gradient for windows
k = 1..T (log-spaced, at most :data:`WINDOWS`) with the full one (cosine similarity, relative
error), and the gradients of checkpointing and RTRL with it, on as many sequences, steps and windows
as fit :data:`TRADEOFF_SECONDS` by the cost model of :mod:`visualizer.budget` (:func:`tradeoff_plan`).
The Cost view (:mod:`visualizer.cost`) draws it beside the measured memory and time of each method.

Memoized: a second visit of the tab recomputes nothing. Nothing here imports dash or plotly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import core
from core import checkpointing as ck
from core.models import parameter_count
from core.rtrl import flops_model as rtrl_flops
from core.rtrl import memory_model as rtrl_memory

from . import budget, compute
from .cache import memoize

TRADEOFF_SECONDS = budget.COST_TRADEOFF_SECONDS  # seconds the truncation comparison may spend per architecture
WINDOWS = 12  # windows k compared at most (log-spaced from 1 to T, the chosen window added)
ARCHS = 4  # architectures drawn at most: the view's seconds hold four comparisons (visualizer.budget)
RTRL_SHARE = 0.25  # the part of TRADEOFF_SECONDS RTRL's exactness check may spend (first sequence, a prefix)


@dataclass(frozen=True, eq=False)
class Tradeoff:
    """One architecture on the app's task: truncated gradients against the full one, and the exact methods'."""

    arch: str
    name: str
    T: int
    windows: np.ndarray  # (K,) window lengths k
    cosine: np.ndarray  # (K,) cosine similarity with the full gradient
    rel_error: np.ndarray  # (K,) ||g_k - g|| / ||g||
    window_memory: np.ndarray  # (K,) bytes truncated BPTT holds with window k
    full_memory: int
    exact: tuple  # (method, label, memory bytes, relative error, note) of the exact methods
    sequences: int  # how many of the batch's sequences the gradients were compared on
    T_full: int  # the app's T (``T`` is the steps compared, fewer when one full sequence is too slow)


def agreement(g: dict, ref: dict) -> tuple[float, float]:
    """(cosine similarity, relative error) of the flattened gradients ``g`` against ``ref``, summed one
    parameter at a time (no flattened copies: at the app's maxima one gradient is 67 MB)."""
    dot = na2 = nb2 = nd2 = 0.0
    for k in ref:
        a, b = np.ravel(g[k]), np.ravel(ref[k])
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            return math.nan, math.nan
        d = a - b
        dot, na2, nb2, nd2 = dot + float(a @ b), na2 + float(a @ a), nb2 + float(b @ b), nd2 + float(d @ d)
    na, nb = math.sqrt(na2), math.sqrt(nb2)
    if not (math.isfinite(nb) and nb > 0 and math.isfinite(na)):
        return math.nan, math.nan
    return (dot / (na * nb) if na > 0 else 0.0), math.sqrt(nd2) / nb


def windows_for(T: int, count: int, chosen: int | None) -> np.ndarray:
    """Up to ``count`` log-spaced windows from 1 to T (the chosen one added)."""
    ks = np.unique(np.round(np.geomspace(1, max(T, 1), max(count, 2))).astype(int))
    if chosen and chosen <= T:
        ks = np.unique(np.append(ks, chosen))
    return ks


def _first(x, y, loss_on, nb, steps=None):
    """The first ``nb`` sequences (and first ``steps`` steps) of (x, y); with the loss on the last step
    the prefix's last step is scored against the sequence's target."""
    return x[:steps, :nb], (y[:steps, :nb] if loss_on == "all" else y[:nb])


def _largest(fits, lo: int, hi: int) -> int:
    """The largest n in [lo, hi] with ``fits(n)`` (true up to some n, then false), or lo when none is."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def rtrl_steps(cfg, T) -> int:
    """Steps of RTRL's exactness check (first sequence): the longest prefix whose predicted seconds fit
    :data:`RTRL_SHARE` of :data:`TRADEOFF_SECONDS`; 0 when two steps do not."""
    fits = lambda n: budget.rtrl_seconds(rtrl_flops(cfg, n, 1), n, cfg.num_layers) <= RTRL_SHARE * TRADEOFF_SECONDS  # noqa: E731
    return _largest(fits, 2, T) if T >= 2 and fits(2) else 0


def comparison_seconds(cfg, nb, steps, ks) -> float:
    """Predicted seconds of comparing truncated gradients with windows ``ks``, checkpointing with
    ceil(sqrt(steps)) states and with sqrt segments against full BPTT on ``nb`` sequences of ``steps`` steps
    (each comparison a pass over the gradients)."""
    c = math.ceil(math.sqrt(steps))
    runs = [int(k) for k in ks if k < steps]  # k >= steps is full BPTT itself
    work = ((1 + len(runs)) * ck.work_model(cfg, steps, nb, "bptt") + ck.work_model(cfg, steps, nb, "budget", c)
            + ck.work_model(cfg, steps, nb, "sqrt"))
    passes = 1 + sum(math.ceil(steps / k) for k in runs) + 2 * min(steps, c + 1) + len(ks) + 2  # chunks, comparisons
    return budget.gradient_seconds(work, ck.step_work(cfg, nb), cfg.num_layers, passes * parameter_count(cfg))


def tradeoff_plan(cfg, T, B, chosen, seconds=None) -> tuple[int, int, int, int]:
    """(sequences, steps, window count, RTRL steps) of :func:`tradeoff`: RTRL's check first (its share),
    then with 3 windows the whole sequence or its longest fitting prefix (at least 2 steps), then as
    many of the B sequences, then as many windows (up to :data:`WINDOWS`) as fit ``seconds``
    (default :data:`TRADEOFF_SECONDS`)."""
    tp = rtrl_steps(cfg, T)
    rtrl = budget.rtrl_seconds(rtrl_flops(cfg, tp, 1), tp, cfg.num_layers) if tp else 0.0
    rest = (TRADEOFF_SECONDS if seconds is None else seconds) - rtrl
    secs = lambda nb, steps, count: comparison_seconds(cfg, nb, steps, windows_for(steps, count, chosen))  # noqa: E731
    steps = _largest(lambda s: secs(1, s, 3) <= rest, 2, T)
    nb = _largest(lambda b: secs(b, steps, 3) <= rest, 1, B)
    count = _largest(lambda k: secs(nb, steps, k) <= rest, 3, WINDOWS)
    return nb, steps, count, tp


def tradeoff_seconds(cfg, T, B, chosen, seconds=None) -> float:
    """Predicted seconds of :func:`tradeoff_plan`'s comparison."""
    nb, steps, count, tp = tradeoff_plan(cfg, T, B, chosen, seconds)
    rtrl = budget.rtrl_seconds(rtrl_flops(cfg, tp, 1), tp, cfg.num_layers) if tp else 0.0
    return comparison_seconds(cfg, nb, steps, windows_for(steps, count, chosen)) + rtrl


def sizes(key):
    """(config, T, B, chosen window) of a comparison."""
    return (compute.model_of(key).config, *compute.task_of(key).x.shape[:2], key.truncate)


def shares(keys) -> list:
    """Seconds of each key's comparison: :data:`TRADEOFF_SECONDS` each, except that one whose least
    comparison (2 steps of one sequence) costs more gets that, paid first by the shares of the
    architectures not drawn (the view's seconds allow :data:`ARCHS`), then by the others in proportion
    to what they have above their own least (the total stays ARCHS * TRADEOFF_SECONDS when it can)."""
    floors = [tradeoff_seconds(*sizes(k), seconds=0.0) for k in keys]
    extra = sum(max(0.0, f - TRADEOFF_SECONDS) for f in floors) - max(0, ARCHS - len(keys)) * TRADEOFF_SECONDS
    room = sum(max(0.0, TRADEOFF_SECONDS - f) for f in floors)
    give = min(1.0, max(0.0, extra) / room) if room > 0 else 0.0
    return [f if f >= TRADEOFF_SECONDS else TRADEOFF_SECONDS - give * (TRADEOFF_SECONDS - f) for f in floors]


def tradeoff(key, seconds=None) -> Tradeoff:
    """:func:`compare` ``key`` within ``seconds`` (default :data:`TRADEOFF_SECONDS`), memoized."""
    return compare((key, TRADEOFF_SECONDS if seconds is None else float(seconds)))


@memoize(maxsize=compute.ENTRIES)
def compare(arg) -> Tradeoff:
    """Compare truncated, checkpointed and RTRL gradients with full BPTT's for a :class:`~visualizer.compute.RunKey`
    (or a given model's :class:`~visualizer.compute.ModelRun`).

    The comparisons use the sequences, steps and windows of :func:`tradeoff_plan` (all B sequences
    and T steps when they fit :data:`TRADEOFF_SECONDS`, else the first ``nb`` sequences, and below
    one sequence its first ``steps`` < T steps); RTRL is checked on a prefix of the first sequence.
    ``arg`` is (key, seconds)."""
    key, seconds = arg
    task, model = compute.task_of(key), compute.model_of(key)
    y, loss_on, _ = compute.targets(task, key.data.loss_on)
    cfg = model.config
    T, B = task.x.shape[:2]
    kw = dict(loss=task.loss, loss_on=loss_on)
    nb, steps, count, tp = tradeoff_plan(cfg, T, B, key.truncate, seconds)
    with np.errstate(all="ignore"):
        x, yy = _first(task.x, y, loss_on, nb, steps)
        full = core.bptt(model, x, yy, **kw)
        ks = windows_for(steps, count, key.truncate)
        cos, err = [], []
        for k in ks:
            g = full.grads if k >= steps else core.windowed_bptt(model, x, yy, window=int(k), **kw).grads  # k=T: full
            c, e = agreement(g, full.grads)
            cos.append(c), err.append(e)
        where = "" if nb == B else f", on the first {nb} of {B} sequences"
        where += "" if steps == T else f", first {steps} steps"
        c = math.ceil(math.sqrt(steps))
        res = core.checkpointed_bptt(model, x, yy, budget_states=c, **kw)
        exact = [("budget", f"checkpoint, {c} states", ck.memory_model(cfg, T, B, c),
                  agreement(res.grads, full.grads)[1], f"recomputes {res.recomputed_steps} steps{where}")]
        res = core.bptt(model, x, yy, checkpoint=True, **kw)
        exact.append(("sqrt", "√T segments", ck.bptt_memory_model(cfg, T, B, True),
                      agreement(res.grads, full.grads)[1], f"recomputes {steps} steps{where}"))
        if tp:
            exact.append(_rtrl_check(model, task.x, y, task.loss, loss_on, tp))
    return Tradeoff(key.arch, compute.DISPLAY_NAMES[key.arch], steps, compute.read_only(ks),
                    compute.read_only(np.array(cos)), compute.read_only(np.array(err)),
                    compute.read_only(np.array([ck.window_memory_model(cfg, T, B, int(k)) for k in ks], float)),
                    ck.bptt_memory_model(cfg, T, B), tuple(exact), nb, T)


def _rtrl_check(model, x, y, loss, loss_on, Tp):
    """RTRL's relative error against BPTT on the first sequence's first ``Tp`` steps (:func:`rtrl_steps`);
    its memory for the whole batch from its model."""
    T, B = x.shape[:2]
    cfg = model.config
    xs = x[:Tp, :1]
    ys = y[:Tp, :1] if loss_on == "all" else y[:1]  # "last": the prefix's last step is scored
    ref = core.bptt(model, xs, ys, loss=loss, loss_on=loss_on)
    res = core.rtrl(model, xs, ys, loss=loss, loss_on=loss_on)
    where = "the first sequence" + (f", first {Tp} steps" if Tp < T else "")
    return ("rtrl", "RTRL", rtrl_memory(cfg, B), agreement(res.grads, ref.grads)[1], f"checked on {where}")


tradeoff.cache_clear = compare.cache_clear
