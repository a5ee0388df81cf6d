"""Measurements behind every sentence the app tells a student about vanishing and exploding.

Each function returns a number (or one per layer) that an explanation quotes: the spectral
radius and largest singular value of W_hh, the mean derivative of the RNN's nonlinearity, the
per-step rate of a decaying (or growing) curve, the top Lyapunov exponent estimated from a
product of state Jacobians, and how saturated the gates of an LSTM or GRU are. Everything is
float64 and computed from the same forward pass as :mod:`core.jacobians`.

The bounds they test (Pascanu et al. 2013) for a plain RNN h_t = phi(W_ih x_t + W_hh h_{t-1} + b)
with step Jacobian J_t = diag(phi'_t) W_hh and gamma = sup |phi'|:

* sigma_1(W_hh) < 1/gamma is *sufficient* for vanishing: ||J_T ... J_{t+1}|| <= (gamma sigma_1)^{T-t}.
* sigma_1(W_hh) > 1/gamma is *necessary* (not sufficient) for exploding.
* The long-run rate per step is exp of the top Lyapunov exponent lim (1/k) log ||J_T ... J_{T-k+1}||,
  which :func:`lyapunov_exponent` estimates. rho(W_hh) times the mean phi' is a heuristic for it
  (not a bound); an explanation quotes it only beside the measured rate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import check_layers
from .steplin import _check_x, _layers, _params64
from .models import Model, check_model

GATE_NAMES = {"lstm": ("i", "f", "o"), "gru": ("r", "z")}  # the sigmoid gates, PyTorch order
SATURATION = (0.05, 0.95)  # a sigmoid gate value outside this interval counts as saturated


def _check_plain(model, what):
    """Raise ValueError unless ``model`` is a plain (tanh or ReLU) RNN."""
    check_model(model)
    if model.config.arch != "rnn":
        raise ValueError(f"{what} is defined for a plain RNN, got arch={model.config.arch!r}")


def spectral_radius(model: Model, layers=None) -> np.ndarray:
    """Largest eigenvalue modulus of each layer's recurrent weight matrix (plain RNN).

    Parameters
    ----------
    model : :class:`core.RNN` (tanh or ReLU). Gated cells stack G blocks in ``weight_hh`` (not a
        square matrix): ValueError.
    layers : None for every layer, or layer indices: only those are computed, the others are NaN.

    Returns
    -------
    rho : (L,) float64.

    .. math:: \\rho(W_{hh}) = \\max_i |\\lambda_i(W_{hh})| \\le \\sigma_1(W_{hh})
    """
    _check_plain(model, "the spectral radius of W_hh")
    chosen = check_layers(layers, model.config.num_layers)
    p = _params64(model)
    return np.array([np.max(np.abs(np.linalg.eigvals(p[f"weight_hh_l{l}"]))) if l in chosen else np.nan
                     for l in range(model.config.num_layers)])


def top_singular_value(model: Model, layers=None) -> np.ndarray:
    """sigma_1 of each layer's ``weight_hh`` (the whole stacked matrix for LSTM and GRU), (L,); with
    ``layers`` (indices) only those, the others NaN."""
    check_model(model)
    chosen = check_layers(layers, model.config.num_layers)
    p = _params64(model)
    return np.array([np.linalg.norm(p[f"weight_hh_l{l}"], 2) if l in chosen else np.nan
                     for l in range(model.config.num_layers)])


def activation_derivative_mean(model: Model, x) -> np.ndarray:
    """Mean of phi'(a_t) over the steps t = 1 .. T-1 (those in the products J_{T-1} ... J_1),
    the batch and the units, per layer (plain RNN).

    Parameters
    ----------
    model : :class:`core.RNN`. x : (T, B, input_size) inputs.

    Returns
    -------
    d : (L,) float64: mean 1 - h^2 (tanh) or the fraction of active units (ReLU); NaN if T = 1
        or a state is NaN.

    .. math:: \\bar\\phi' = \\frac{1}{(T-1)BH}\\sum_{t=1}^{T-1}\\sum_{b,j} \\phi'(a_{t,b,j})
    """
    _check_plain(model, "the mean activation derivative")
    x = _check_x(model, x)
    out = []
    with np.errstate(all="ignore"):
        for cache in _layers(model, x, _params64(model)):
            h = cache.hs[1:] if x.shape[0] > 1 else np.full((1,), np.nan)  # (T-1, B, H)
            d = 1.0 - h * h if model.config.nonlinearity == "tanh" else np.where(np.isnan(h), np.nan, h > 0)
            out.append(float(np.mean(d)))
    return np.array(out)


def geometric_fit(values) -> tuple[float, float]:
    """Least-squares line through (k, ln values[k]) over the finite positive entries of a curve.

    Parameters
    ----------
    values : (K,) e.g. ||ds_{T-1}/ds_{T-1-k}|| by lag k, or ||dL/dh_t|| read backwards.

    Returns
    -------
    (scale, rate) : floats with values[k] ~ scale * rate**k; ``rate`` < 1 for a decaying curve,
        > 1 for a growing one. (NaN, NaN) with fewer than two usable points. Zeros (underflow),
        inf and NaN are left out of the fit.

    .. math:: \\min_{\\alpha,\\beta}\\sum_k (\\ln v_k - \\alpha - \\beta k)^2, \\quad
              (\\text{scale}, \\text{rate}) = (e^{\\alpha}, e^{\\beta})
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"values must be one curve (K,), got shape {v.shape}")
    k = np.arange(v.size, dtype=float)
    ok = np.isfinite(v) & (v > 0)
    if np.count_nonzero(ok) < 2:
        return float("nan"), float("nan")
    k, y = k[ok], np.log(v[ok])
    kc = k - k.mean()
    beta = np.sum(kc * (y - y.mean())) / np.sum(kc * kc)
    return float(np.exp(y.mean() - beta * k.mean())), float(np.exp(beta))


def rate_per_step(values) -> float:
    """The per-step factor of :func:`geometric_fit`: exp of the fitted slope of ln values
    against the index (NaN with fewer than two finite positive values)."""
    return geometric_fit(values)[1]


def lyapunov_exponent(norms_by_lag, k=None) -> float:
    """Top Lyapunov exponent estimated from a product of k step Jacobians.

    Parameters
    ----------
    norms_by_lag : (K,) ||J_{T-1} ... J_{T-k}|| at lag k = 0 .. K-1 (lag 0 is the identity), e.g.
        the reversed output of :func:`core.jacobian_norms`.
    k : the lag to use (1 <= k < K); default the largest lag whose norm is finite and positive.

    Returns
    -------
    lam : float, natural log per step (exp(lam) is the rate per step); NaN if no lag qualifies.

    .. math:: \\hat\\lambda_k = \\frac{1}{k}\\ln\\big\\lVert J_{T-1} J_{T-2} \\cdots J_{T-k}\\big\\rVert
    """
    v = np.asarray(norms_by_lag, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"norms_by_lag must be one curve (K,), got shape {v.shape}")
    if k is None:
        ok = np.flatnonzero(np.isfinite(v) & (v > 0))
        ok = ok[ok >= 1]
        if ok.size == 0:
            return float("nan")
        k = int(ok[-1])
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < v.size:
        raise ValueError(f"k must be an integer in [1, {v.size}), got {k!r}")
    if not (np.isfinite(v[k]) and v[k] > 0):
        return float("nan")
    return float(np.log(v[k]) / k)


@dataclass(frozen=True)
class GateStats:
    """How the sigmoid gates of an LSTM (i, f, o) or GRU (r, z) sit, per layer and gate.

    ``fraction[l, g]``: share of the values of gate ``names[g]`` (over steps, batch and units)
    below ``low`` or above ``high``; ``mean[l, g]`` their mean; ``total[l]``: the share over all
    the layer's sigmoid gates together."""

    names: tuple
    low: float
    high: float
    fraction: np.ndarray  # (L, G)
    mean: np.ndarray  # (L, G)
    total: np.ndarray  # (L,)


def gate_saturation(model: Model, x, low: float = SATURATION[0], high: float = SATURATION[1]) -> GateStats:
    """Saturation of the sigmoid gates of an LSTM or GRU over a batch.

    Parameters
    ----------
    model : :class:`core.LSTM` or :class:`core.GRU`. x : (T, B, input_size) inputs.
    low, high : 0 <= low < high <= 1, the saturation thresholds.

    Returns
    -------
    :class:`GateStats`.
    """
    check_model(model)
    arch = model.config.arch
    if arch not in GATE_NAMES:
        raise ValueError(f"gate saturation needs an LSTM or GRU, got arch={arch!r}")
    if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high <= 1):
        raise ValueError(f"need 0 <= low < high <= 1, got low={low!r}, high={high!r}")
    x = _check_x(model, x)
    H = model.config.hidden_size
    blocks = {"i": 0, "f": 1, "o": 3} if arch == "lstm" else {"r": 0, "z": 1}
    names = GATE_NAMES[arch]
    frac, mean, total = [], [], []
    with np.errstate(all="ignore"):
        for cache in _layers(model, x, _params64(model)):
            gates = np.stack([st.gates for st in cache.steps])  # (T, B, GH)
            vals = [gates[..., blocks[n] * H:(blocks[n] + 1) * H] for n in names]
            sat = [(v < low) | (v > high) for v in vals]
            frac.append([float(np.mean(s)) for s in sat])
            mean.append([float(np.mean(v)) for v in vals])
            total.append(float(np.mean(np.stack(sat))))
    return GateStats(names=names, low=float(low), high=float(high), fraction=np.array(frac),
                     mean=np.array(mean), total=np.array(total))
