"""View payloads: what each view draws, reduced for display from :mod:`visualizer.compute`'s results.

Median over the batch, log10 for the heatmaps, binning of very large maps, the fitted rate and the
reference slopes (the bound (gamma sigma_1)^k, rho^k), and the sentence a view adds to its caption when it shows a
reduced version of the data. Each ``*_items(keys)`` / :func:`overview` takes a list of
:class:`~visualizer.compute.RunKey` (or :class:`~visualizer.compute.ModelRun`), one per
architecture. Nothing here imports dash or plotly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import core

from . import compute
from .budget import jacobian_plan
from .compute import DISPLAY_NAMES


# ----------------------------------------------------------------------------- display reductions
def batch_summary(values: np.ndarray) -> dict:
    """Median, min and max over the last (batch) axis of an (..., B) array, NaN-aware per entry.

    Entries where any batch element is NaN or inf keep that value in the median (so overflow
    stays visible instead of being averaged away).
    """
    values = np.asarray(values, dtype=float)
    with np.errstate(all="ignore"):
        finite = np.all(np.isfinite(values), axis=-1)
        med = np.median(values, axis=-1)
        worst = np.where(np.any(np.isnan(values), axis=-1), np.nan, np.inf)
        med = np.where(finite, med, worst)
        return {"median": med, "min": np.min(values, axis=-1), "max": np.max(values, axis=-1)}


def safe_log10(values: np.ndarray) -> np.ndarray:
    """log10 of |values| with zeros, NaN and inf mapped to NaN (drawn as gaps in a heatmap)."""
    values = np.abs(np.asarray(values, dtype=float))
    out = np.full(values.shape, np.nan)
    ok = np.isfinite(values) & (values > 0)
    out[ok] = np.log10(values[ok])
    return out


def bin_max(values: np.ndarray, max_len: int, axis: int = 0) -> tuple[np.ndarray, int]:
    """(values reduced by taking the max over consecutive bins along ``axis``, bin size).

    The bin size k is the smallest integer with ceil(n / k) <= max_len; NaN is ignored unless the
    whole bin is NaN. With n <= max_len the values are returned unchanged (k = 1).
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[axis]
    k = max(1, -(-n // max_len))
    if k == 1:
        return values, 1
    moved = np.moveaxis(values, axis, 0)
    pad = (-n) % k
    if pad:
        moved = np.concatenate([moved, np.full((pad, *moved.shape[1:]), -np.inf)], axis=0)
    binned = np.fmax.reduce(moved.reshape((-1, k, *moved.shape[1:])), axis=1)
    return np.moveaxis(binned, 0, axis), k


# ----------------------------------------------------------------------------- messages
def explosion_messages(flows) -> list[str]:
    """One banner line per architecture whose forward pass or gradient became inf/NaN."""
    lines = []
    for f in flows:
        sigma = f" (largest singular value of W_hh: {f.sigma_max:.3g})" if f.sigma_max is not None else ""
        if f.nonfinite_step is not None:
            lines.append(f"{f.name} exploded at step {f.nonfinite_step}: its hidden state overflowed to "
                         f"inf/NaN going forward, grown step after step through W_hh{sigma}.")
        elif f.nonfinite_grad_step is not None:
            lines.append(f"{f.name} exploded at step {f.nonfinite_grad_step}: the gradient overflowed going "
                         f"back in time, the product of step Jacobians having grown past float64's range{sigma}.")
        elif not np.isfinite(f.loss):
            lines.append(f"{f.name} exploded: its loss is {f.loss}, the outputs overflowed.")
    return lines


# ----------------------------------------------------------------------------- view payloads
GATE_LABELS = {"rnn": "‖J<sub>T−1</sub>⋯J<sub>t+1</sub>‖", "rnn-relu": "‖J<sub>T−1</sub>⋯J<sub>t+1</sub>‖",
               "lstm": "cell path ∏ f", "gru": "carry path ∏ z"}
WHOLE_LABEL = "whole ‖∂s<sub>T−1</sub>/∂s<sub>t</sub>‖"
HEAT_CELLS = 60_000  # per architecture, above this the time axis is binned for display


def reference_slope(sigma: float, n: int) -> np.ndarray:
    """(n,) sigma**k for k = 0..n-1: the growth rate a single largest singular value allows."""
    with np.errstate(all="ignore"):
        return float(sigma) ** np.arange(n, dtype=float)


def connectivity_note(keys) -> str | None:
    """A sentence when the connectivity view samples output rows or input steps (within its time
    budget, :func:`visualizer.budget.connectivity_plan`) or bins input columns for display."""
    parts = []
    for key in keys:
        rows, lags = compute.key_connectivity_rows(key)
        T, k = key.data.seq_len, (int(rows[1] - rows[0]) if len(rows) > 1 else 1)
        what = [f"one output step in {k}"] if k > 1 else []
        what += [f"input steps from {T - 1 - lags} on"] if lags is not None else []
        if what:
            parts.append(f"{DISPLAY_NAMES[key.arch]}: {' and '.join(what)}")
    T = max((k.data.seq_len for k in keys), default=0)
    cols = max(1, -(-T // compute.CONNECTIVITY_SIDE))
    sentences = [f"At this size the map is computed for {'; '.join(parts)}."] if parts else []
    if cols > 1:
        sentences.append(f"Each column is the largest value over {cols} consecutive input steps.")
    return " ".join(sentences) or None


def spectra_note(keys) -> str | None:
    """A sentence when the spectra view analyses fewer steps than the sequence has."""
    counts = {DISPLAY_NAMES[k.arch]: len(compute.key_spectra_steps(k)) for k in keys
              if len(compute.key_spectra_steps(k)) < k.data.seq_len}
    if not counts:
        return None
    listed = ", ".join(f"{name} {c}" for name, c in counts.items())
    return f"At this size the step spectra are computed at evenly spaced steps ({listed}; each costs a full SVD, n³)."


def _plan_note(keys, plan) -> str | None:
    """A sentence when ``plan`` (sequences, lags) of some of ``keys`` covers less than the batch."""
    parts = []
    for key in keys:
        B, lags = plan(key)
        if lags is not None:
            parts.append(f"{DISPLAY_NAMES[key.arch]}: the last {lags} of {key.data.seq_len} steps of "
                         f"the first sequence")
        elif key.data.batch > B:
            parts.append(f"{DISPLAY_NAMES[key.arch]}: the first {B} of {key.data.batch} sequences")
    if not parts:
        return None
    return f"At this size the Jacobian products use {'; '.join(parts)} (their cost grows like T·n³)."


def jacobian_note(keys) -> str | None:
    """A sentence when the Jacobian view analyses fewer sequences or steps than the batch has."""
    return _plan_note(keys, jacobian_plan)


def gates_note(keys) -> str | None:
    """A sentence when the gating view's Jacobian products (the RNN's, and the gated networks' whole
    norm) use fewer sequences or steps than the batch has (the gate products themselves: all)."""
    return _plan_note(keys, jacobian_plan)


@dataclass(frozen=True, eq=False)
class Overview:
    """``grad_norm`` payload: one :class:`GradFlow` per architecture (an uploaded model's flow may join
    them, see :mod:`visualizer.classroom`) and the truncation window drawn as dashed lines."""

    flows: tuple
    truncate: int | None = None


def overview(keys) -> Overview:
    """``grad_norm`` payload for ``keys``: :func:`visualizer.compute.grad_flow` of each."""
    return Overview(tuple(compute.grad_flow(k) for k in keys), keys[0].truncate if keys else None)


def jacobian_items(keys) -> list[dict]:
    """``jacobian`` payload: per architecture the batch median/min/max of the top layer's
    ||ds_{T-1}/ds_t|| indexed by lag k = T-1-t, ``rate`` the per-step factor fitted over the lags
    and ``fit`` the fitted curve scale * rate^k (:func:`core.geometric_fit` of the median),
    ``sigma`` = sigma_1(W_hh) and ``threshold`` = 1/gamma; for plain RNNs also ``rho`` = rho(W_hh)
    and the references ``reference`` = (gamma sigma_1)^k (the bound) and ``rho_reference`` = rho^k.
    The sigma_1 bound holds for plain RNNs only: gated cells get no reference."""
    items = []
    for key in keys:
        B, lags = jacobian_plan(key)
        shown = key.data.seq_len if lags is None else lags + 1  # lags 0 .. lags
        s = batch_summary(compute.jacobian_norms(key)[-1])  # (T,) each
        by_lag = {k: v[::-1][:shown] for k, v in s.items()}
        sigma, thr = float(compute.weight_spectra(key)[-1][0]), compute.gamma_threshold(key)
        scale, rate = core.geometric_fit(by_lag["median"])
        with np.errstate(all="ignore"):
            fit = scale * rate ** np.arange(shown, dtype=float)
        item = {"arch": key.arch, "name": DISPLAY_NAMES[key.arch], "band": B > 1, "sequences": B, "lags": lags,
                "rate": rate, "fit": fit if np.isfinite(rate) else None, **by_lag, "sigma": sigma,
                "threshold": thr, "rho": None, "reference": None, "rho_reference": None}
        if key.arch.startswith("rnn"):
            rho = compute.spectral_radius(key)
            item.update(rho=rho, reference=reference_slope(sigma / thr, shown),
                        rho_reference=reference_slope(rho, shown))
        items.append(item)
    return items


def heatmap_items(flows) -> list[dict]:
    """``heatmap`` payload: the top layer's |dL/dh_t| per unit, binned over time when very large."""
    items = []
    for f in flows:
        units = f.hidden_grad_units[-1]  # (T, H)
        T, H = units.shape
        binned, k = bin_max(units, max(1, HEAT_CELLS // H), axis=0)
        items.append({"arch": f.arch, "name": f.name, "values": binned, "log10": safe_log10(binned),
                      "t": np.arange(0, T, k)[: binned.shape[0]], "bin": k})
    return items


def spectra_items(keys) -> list[dict]:
    """``spectra`` payload: top-layer W_hh singular values, 1/gamma for plain RNNs (the bound
    sigma_1 < 1/gamma is theirs; a gated cell's W_hh stacks its gate blocks and gets none), and each
    step Jacobian's largest and smallest singular value (sequence 0)."""
    items = []
    for key in keys:
        threshold = compute.gamma_threshold(key) if key.arch.startswith("rnn") else None
        item = {"arch": key.arch, "name": DISPLAY_NAMES[key.arch], "weights": compute.weight_spectra(key)[-1],
                "threshold": threshold, "step_max": None, "step_min": None,
                "t": compute.key_spectra_steps(key)}
        sv = compute.step_spectra(key)[-1]  # (T, n), descending
        item["step_max"], item["step_min"] = sv[:, 0], sv[:, -1]
        items.append(item)
    return items


def gate_items(keys) -> list[dict]:
    """``gates`` payload, like with like, indexed by t: for plain RNNs the exact ||J_{T-1} ... J_{t+1}||
    (:func:`visualizer.compute.jacobian_norms`); for the LSTM the cell path's product of forget gates
    and for the GRU the carry path's product of z (mean over units, :func:`core.gate_products`), with
    ``whole`` the median of the gated network's whole ||ds_{T-1}/ds_t||. ``median``/``min``/``max``
    over the batch (the Jacobian products over the first :func:`visualizer.compute.jacobian_batch`
    sequences)."""
    items = []
    for key in keys:
        plain = key.arch.startswith("rnn")
        values = compute.jacobian_norms(key)[-1] if plain else compute.gate_products(key)[-1]  # (T, B)
        item = {"arch": key.arch, "name": DISPLAY_NAMES[key.arch], "label": GATE_LABELS[key.arch],
                "band": values.shape[-1] > 1, "sequences": values.shape[-1], **batch_summary(values), "whole": None}
        if not plain:
            item["whole"] = batch_summary(compute.jacobian_norms(key)[-1])["median"]
        items.append(item)
    return items


def connectivity_items(keys) -> list[dict]:
    """``connectivity`` payload: ||dy_t/dx_s|| (sequence 0) at most ``compute.CONNECTIVITY_SIDE`` per side. Rows are
    the output steps ``row_ticks`` (:func:`visualizer.compute.connectivity_rows`: every step, or the last of each
    bin of ``bin`` steps), columns the max over ``bin`` consecutive input steps from ``ticks``."""
    items = []
    for key in keys:
        c = compute.connectivity(key)
        binned, k = bin_max(c, compute.CONNECTIVITY_SIDE, axis=1)
        items.append({"arch": key.arch, "name": DISPLAY_NAMES[key.arch], "values": binned,
                      "log10": safe_log10(binned), "ticks": np.arange(0, c.shape[1], k)[: binned.shape[1]],
                      "row_ticks": compute.key_connectivity_rows(key)[0], "bin": k})
    return items
