"""The numbers each view draws, as flat :class:`Series` for export (CSV, JSON, the HTML report).

Each ``*_series(payload, keys)`` reads the payload its view's figure is drawn from (see
:mod:`visualizer.views`), so an export holds exactly the plotted values, at full float64 precision.
Pure functions: nothing here computes or imports dash or plotly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Series:
    """One plotted quantity of one architecture: ``values`` over ``x`` (1-D), or over ``y`` by
    ``x`` (2-D, rows = y) for the heatmaps. Scalars have ``x`` None and a 0-d ``values``."""

    view: str
    arch: str
    name: str
    layer: int | None
    quantity: str
    values: np.ndarray
    x_name: str | None = None
    x: np.ndarray | None = None
    y_name: str | None = None
    y: np.ndarray | None = None


def grad_norm_series(overview, keys) -> list[Series]:
    """``grad_norm``: every layer's ||dL/dh_t|| (the named trace is the top layer)."""
    out = []
    for f in overview.flows:
        L, T = f.hidden_grad_norms.shape
        for layer in range(L):
            out.append(Series("grad_norm", f.arch, f.name, layer + 1, "grad_norm", f.hidden_grad_norms[layer],
                              "t", np.arange(T)))
    return out


def jacobian_series(items, keys) -> list[Series]:
    """``jacobian``: batch median / min / max of ||ds_{T-1}/ds_t|| by lag, the fitted curve, the bound
    (gamma sigma_1)^k ("reference") and rho^k ("rho_reference"), and the numbers behind them."""
    out = []
    for it, key in zip(items, keys, strict=True):
        lag = np.arange(len(it["median"]))
        for q in ("median", "min", "max", "fit", "reference", "rho_reference"):
            if it.get(q) is not None:
                out.append(Series("jacobian", it["arch"], it["name"], key.layers, q, np.asarray(it[q]), "lag", lag))
        for q, name in (("sigma", "sigma_1"), ("threshold", "inverse_gamma"), ("rate", "rate_per_step"),
                        ("rho", "spectral_radius")):
            if it.get(q) is not None:
                out.append(Series("jacobian", it["arch"], it["name"], key.layers, name, np.asarray(float(it[q]))))
    return out


def heatmap_series(items, keys) -> list[Series]:
    """``heatmap``: the top layer's per-unit |dL/dh_t| as drawn (time binned when very long)."""
    out = []
    for it, key in zip(items, keys, strict=True):
        H = it["values"].shape[1]
        quantity = "grad_unit" if it["bin"] == 1 else f"grad_unit_max_over_{it['bin']}_steps"
        out.append(Series("heatmap", it["arch"], it["name"], key.layers, quantity, it["values"].T, "t",
                          np.asarray(it["t"]), "unit", np.arange(1, H + 1)))
    return out


def spectra_series(items, keys) -> list[Series]:
    """``spectra``: singular values of W_hh, 1/gamma, and each step Jacobian's largest / smallest."""
    out = []
    for it, key in zip(items, keys, strict=True):
        a, n, L = it["arch"], it["name"], key.layers
        if it.get("weights") is not None:
            w = np.asarray(it["weights"])
            out.append(Series("spectra", a, n, L, "weight_singular_value", w, "index", np.arange(1, w.size + 1)))
        if it.get("threshold") is not None:
            out.append(Series("spectra", a, n, L, "inverse_gamma", np.asarray(float(it["threshold"]))))
        for q in ("step_max", "step_min"):
            if it.get(q) is not None:
                v = np.asarray(it[q])
                t = np.asarray(it["t"]) if it.get("t") is not None else np.arange(v.size)
                out.append(Series("spectra", a, n, L, f"{q}_singular_value", v, "t", t))
    return out


def gates_series(items, keys) -> list[Series]:
    """``gates``: batch median / min / max from t to the end of the plain RNN's exact Jacobian product
    norm or the gated path's product, and the gated networks' whole Jacobian norm (median)."""
    out = []
    for it, key in zip(items, keys, strict=True):
        t = np.arange(len(it["median"]))
        what = "jacobian_norm" if it["arch"].startswith("rnn") else "gate_product"
        for q in ("median", "min", "max"):
            out.append(Series("gates", it["arch"], it["name"], key.layers, f"{what}_{q}", np.asarray(it[q]), "t", t))
        if it.get("whole") is not None:
            out.append(Series("gates", it["arch"], it["name"], key.layers, "jacobian_norm_median",
                              np.asarray(it["whole"]), "t", t))
    return out


def connectivity_series(items, keys) -> list[Series]:
    """``connectivity``: ||dy_t/dx_s|| (rows: output step t, columns: input step s) as drawn."""
    out = []
    for it in items:
        q = "connectivity" if it["bin"] == 1 else f"connectivity_max_over_{it['bin']}_input_steps"
        out.append(Series("connectivity", it["arch"], it["name"], None, q, it["values"], "s", np.asarray(it["ticks"]),
                          "t", np.asarray(it["row_ticks"])))
    return out


def cost_series(pl, keys) -> list[Series]:
    """The Cost view: each method's memory, seconds, measured flag and recomputed steps over T (first
    architecture); per architecture the truncation curves and the exact methods' error and memory."""
    if pl is None:
        return []
    sw, out = pl.sweep, []
    for cv in sw.curves:
        for q, vals in (("memory_bytes", cv.memory), ("seconds", cv.seconds), ("measured", cv.measured.astype(float)),
                        ("recomputed_steps", cv.recomputed)):
            out.append(Series("cost", sw.key.arch, sw.name, None, f"{cv.method}_{q}", np.asarray(vals, float), "T",
                              np.asarray(cv.T)))
    for t in pl.tradeoffs:
        for q, vals in (("cosine", t.cosine), ("relative_error", t.rel_error), ("window_memory_bytes",
                                                                                 t.window_memory)):
            out.append(Series("cost", t.arch, t.name, None, f"truncated_{q}", np.asarray(vals, float), "k",
                              np.asarray(t.windows)))
        for method, _label, mem, err, _how in t.exact:
            out.append(Series("cost", t.arch, t.name, None, f"{method}_relative_error", np.asarray(err, float)))
            out.append(Series("cost", t.arch, t.name, None, f"{method}_memory_bytes", np.asarray(float(mem))))
    return out
