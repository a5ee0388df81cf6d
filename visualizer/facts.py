"""The numbers an explanation quotes, measured on exactly the data the views draw.

Each function takes a :class:`~visualizer.compute.RunKey` (one architecture under the app's
settings), reads the memoized results of :mod:`visualizer.compute` (the same arrays view 1 and
the tabs plot) and reduces them with :mod:`core.analysis` to a small frozen record. The
templates of :mod:`visualizer.narrative` turn records into sentences; they never see a setting
they could quote without measuring it. Nothing here imports dash or plotly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import core

from . import compute, payloads
from .budget import jacobian_plan
from .cache import memoize


@dataclass(frozen=True)
class GradFacts:
    """``grad_norm``'s top-layer curve ||dL/dh_t|| of one architecture, t = 0 .. T-1."""

    name: str
    T: int
    first: float  # ||dL/dh_0||
    last: float  # ||dL/dh_{T-1}||
    ratio: float  # first / last (0, inf or NaN are data)
    rate: float  # ratio ** (1 / (T - 1)): the mean factor per step going back (NaN if T = 1 or not positive)
    low: float  # min_t ||dL/dh_t|| / last
    low_step: int  # where that minimum is
    zero_steps: int  # steps where the norm is exactly 0 (underflow or cut by truncation)
    first_nonzero: int | None  # first step with a nonzero norm


@dataclass(frozen=True)
class JacobianFacts:
    """The Jacobians tab's median ||ds_{T-1}/ds_t|| by lag k = T-1-t for one architecture."""

    name: str
    rate: float  # fitted per-step factor over the lags (core.rate_per_step)
    lyapunov: float  # exp of the Lyapunov estimate at the largest usable lag
    at_last_lag: float  # ||ds_{T-1}/ds_s|| at the largest lag computed, s = from_step
    from_step: int  # 0, or the first step computed when the size allows only the last lags
    peak: float  # max over lags
    peak_lag: int


@dataclass(frozen=True)
class WeightFacts:
    """sigma_1(W_hh) and Pascanu et al.'s 1/gamma; for plain RNNs rho(W_hh) and the mean phi'."""

    name: str
    sigma1: float
    threshold: float  # 1/gamma
    rho: float | None
    dphi: float | None  # mean phi'(a_t) over t >= 1, batch, units
    plain: bool


@dataclass(frozen=True)
class GateFacts:
    """An LSTM's or GRU's gates: mean and saturation per sigmoid gate, and the gated path's
    product from step 0 to the last (median over the batch of the mean over units)."""

    name: str
    names: tuple
    low: float
    high: float
    fraction: tuple  # per gate, share saturated
    mean: tuple  # per gate
    total: float  # share of all sigmoid gate values saturated
    path: float  # prod_{s=1}^{T-1} f_s (LSTM) or z_s (GRU)
    path_gate: str  # "f" or "z"


def _ratio(a, b):
    with np.errstate(all="ignore"):
        return float(np.float64(a) / np.float64(b))


@memoize(maxsize=compute.ENTRIES)
def grad_facts(key: compute.RunKey) -> GradFacts:
    """:class:`GradFacts` of view 1's top-layer curve for ``key``."""
    g = np.asarray(compute.grad_flow(key).hidden_grad_norms[-1], dtype=float)
    T = g.size
    ratio = _ratio(g[0], g[-1])
    with np.errstate(all="ignore"):
        rate = float(ratio ** (1.0 / (T - 1))) if T > 1 and np.isfinite(ratio) and ratio > 0 else float("nan")
        rel = g / g[-1]
    finite = np.where(np.isfinite(rel), rel, np.inf)
    nonzero = np.flatnonzero(g != 0)
    return GradFacts(name=compute.DISPLAY_NAMES[key.arch], T=T, first=float(g[0]), last=float(g[-1]), ratio=ratio,
                     rate=rate, low=float(np.min(finite)), low_step=int(np.argmin(finite)),
                     zero_steps=int(np.count_nonzero(g == 0)),
                     first_nonzero=int(nonzero[0]) if nonzero.size else None)


@memoize(maxsize=compute.ENTRIES, key=compute.forward_key)
def jacobian_facts(key: compute.RunKey) -> JacobianFacts:
    """:class:`JacobianFacts` of the median over the analysed sequences, as the tab draws it."""
    by_lag = payloads.batch_summary(compute.jacobian_norms(key)[-1])["median"][::-1]
    lags = jacobian_plan(key)[1]
    by_lag = by_lag if lags is None else by_lag[: lags + 1]  # the lags computed at this size
    finite = np.where(np.isfinite(by_lag), by_lag, -np.inf)
    lam = core.lyapunov_exponent(by_lag) if by_lag.size > 1 else float("nan")
    return JacobianFacts(name=compute.DISPLAY_NAMES[key.arch], rate=core.rate_per_step(by_lag),
                         lyapunov=float(np.exp(lam)), at_last_lag=float(by_lag[-1]),
                         from_step=key.data.seq_len - by_lag.size,
                         peak=float(np.max(finite)), peak_lag=int(np.argmax(finite)))


@memoize(maxsize=compute.ENTRIES, key=compute.forward_key)
def weight_facts(key: compute.RunKey) -> WeightFacts:
    """:class:`WeightFacts` of the top layer of ``key``'s model."""
    model = compute.model_of(key)
    plain = key.arch.startswith("rnn")
    rho = dphi = None
    top = [key.layers - 1]  # only the top layer is quoted: at H=512, L=4 the others cost seconds
    if plain:
        rho = compute.spectral_radius(key)
        with np.errstate(all="ignore"):
            dphi = float(core.activation_derivative_mean(model, compute.task_of(key).x)[-1])
    return WeightFacts(name=compute.DISPLAY_NAMES[key.arch], sigma1=float(core.top_singular_value(model, top)[-1]),
                       threshold=compute.gamma_threshold(key), rho=rho, dphi=dphi, plain=plain)


def gate_path(key: compute.RunKey, start: int) -> float:
    """The gated path's product (prod f for the LSTM, prod z for the GRU) from step ``start`` to the last:
    the median over the batch of the mean over units, as the Gating tab draws it."""
    return float(np.median(compute.gate_products(key)[-1][start]))


@memoize(maxsize=compute.ENTRIES, key=compute.forward_key)
def gate_facts(key: compute.RunKey) -> GateFacts:
    """:class:`GateFacts` of the top layer of an LSTM or GRU (ValueError for plain RNNs)."""
    model, x = compute.model_of(key), compute.task_of(key).x
    stats = core.gate_saturation(model, x)
    path = gate_path(key, 0)
    return GateFacts(name=compute.DISPLAY_NAMES[key.arch], names=stats.names, low=stats.low, high=stats.high,
                     fraction=tuple(float(v) for v in stats.fraction[-1]),
                     mean=tuple(float(v) for v in stats.mean[-1]), total=float(stats.total[-1]), path=path,
                     path_gate="f" if key.arch == "lstm" else "z")


@dataclass(frozen=True)
class BlowUpFacts:
    """The first steps of a training run without clipping (:func:`visualizer.training.blow_up_facts`)."""

    grad_norms: tuple  # pre-clip global gradient norm of each step run
    sigma_before: float  # sigma_1(W_hh) of the top layer at initialisation
    sigma_after: float  # ... after the first update
    diverged_step: int | None  # the step whose loss or gradient was inf/NaN, or None
    lr: float
    optimizer: str
    momentum: float  # SGD's momentum (0 for Adam, whose update is not a multiple of the gradient)
