"""Export the current view: its data as CSV and JSON text, and a standalone offline HTML report.

The numbers are the ones the figures draw, taken from the same :mod:`visualizer.compute`
functions (view 1, ||dL/dh_t||, plus the open tab), at full float64 precision: CSV cells and
JSON numbers are Python's shortest round-trip representation, so ``float(cell)`` gives back the
exact value. Non-finite values are written ``inf``, ``-inf``, ``nan`` (in JSON as strings, so
the file stays strict JSON). The HTML report inlines plotly.js and loads nothing from the
network. Nothing here touches the disk; the app hands the text to ``dcc.Download``.
"""
from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

import core

from . import compute, figures
from .urlstate import Params, to_query

CSV_COLUMNS = ("view", "arch", "name", "layer", "quantity", "x_name", "x", "y_name", "y", "value")
VIEW_TITLES = {
    "grad_norm": "‖∂L/∂hₜ‖ at every step",
    "jacobian": "Jacobian norms ‖∂s₍T−1₎/∂sₜ‖ against the lag",
    "heatmap": "|∂L/∂hₜ| per hidden unit (top layer)",
    "spectra": "Singular values of W_hh and of the one-step Jacobians",
    "gates": "Products of forget / carry gates along time",
    "connectivity": "Connectivity ‖∂yₜ/∂xₛ‖ (first sequence)",
}


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


# ----------------------------------------------------------------------------- the data
def _grad_norm(keys) -> list[Series]:
    """View 1: every layer's ||dL/dh_t|| (the named trace is the top layer)."""
    out = []
    for key in keys:
        f = compute.grad_flow(key)
        L, T = f.hidden_grad_norms.shape
        for layer in range(L):
            out.append(Series("grad_norm", f.arch, f.name, layer + 1, "grad_norm", f.hidden_grad_norms[layer],
                              "t", np.arange(T)))
    return out


def _jacobian(keys) -> list[Series]:
    """View 2: batch median / min / max of ||ds_{T-1}/ds_t|| by lag, the sigma^k reference."""
    out = []
    for it, key in zip(compute.jacobian_items(keys), keys, strict=False):
        lag = np.arange(len(it["median"]))
        for q in ("median", "min", "max", "reference"):
            if it.get(q) is not None:
                out.append(Series("jacobian", it["arch"], it["name"], key.layers, q, np.asarray(it[q]), "lag", lag))
        for q, name in (("sigma", "sigma_1"), ("threshold", "inverse_gamma")):
            if it.get(q) is not None:
                out.append(Series("jacobian", it["arch"], it["name"], key.layers, name, np.asarray(float(it[q]))))
    return out


def _heatmap(keys) -> list[Series]:
    """View 3: the top layer's per-unit |dL/dh_t| as drawn (time binned when very long)."""
    out = []
    for it, key in zip(compute.heatmap_items([compute.grad_flow(k) for k in keys]), keys, strict=False):
        H = it["values"].shape[1]
        out.append(Series("heatmap", it["arch"], it["name"], key.layers, "grad_unit" if it["bin"] == 1 else
                          f"grad_unit_max_over_{it['bin']}_steps", it["values"].T, "t", np.asarray(it["t"]),
                          "unit", np.arange(1, H + 1)))
    return out


def _spectra(keys) -> list[Series]:
    """View 4: singular values of W_hh, 1/gamma, and each step Jacobian's largest / smallest."""
    out = []
    for it, key in zip(compute.spectra_items(keys), keys, strict=False):
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


def _gates(keys) -> list[Series]:
    """View 5: batch median / min / max of the gate products from t to the end."""
    out = []
    for it, key in zip(compute.gate_items(keys), keys, strict=False):
        t = np.arange(len(it["median"]))
        for q in ("median", "min", "max"):
            out.append(Series("gates", it["arch"], it["name"], key.layers, f"gate_product_{q}", np.asarray(it[q]),
                              "t", t))
    return out


def _connectivity(keys) -> list[Series]:
    """View 6: ||dy_t/dx_s|| (rows: output step t, columns: input step s) as drawn."""
    out = []
    for it in compute.connectivity_items(keys):
        q = "connectivity" if it["bin"] == 1 else f"connectivity_max_over_{it['bin']}_input_steps"
        out.append(Series("connectivity", it["arch"], it["name"], None, q, it["values"], "s", np.asarray(it["ticks"]),
                          "t", np.asarray(it["row_ticks"])))
    return out


TAB_DATA = {"jacobian": _jacobian, "heatmap": _heatmap, "spectra": _spectra, "gates": _gates,
            "connectivity": _connectivity}


def view_series(params: Params) -> list[Series]:
    """Everything the current view draws: view 1 and the open tab (``params.view``).

    Raises ValueError (from the core) for settings that cannot be computed.
    """
    keys = [compute.run_key(params, a) for a in params.arch]
    tab = TAB_DATA.get(params.view)
    return _grad_norm(keys) + (tab(keys) if tab else [])


# ----------------------------------------------------------------------------- CSV and JSON
def _cell(v) -> str:
    """Exact text of a number (repr round-trips; inf/nan as words)."""
    return repr(float(v))




def to_csv(series: list[Series]) -> str:
    """Long-format CSV (one row per value) with columns :data:`CSV_COLUMNS`."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for s in series:
        head = [s.view, s.arch, s.name, "" if s.layer is None else s.layer, s.quantity]
        v = np.asarray(s.values, dtype=float)
        if s.x is None:
            w.writerow([*head, "", "", "", "", _cell(v)])
        elif s.y is None:
            for x, value in zip(s.x, v, strict=False):
                w.writerow([*head, s.x_name, int(x), "", "", _cell(value)])
        else:
            for j, y in enumerate(s.y):
                for i, x in enumerate(s.x):
                    w.writerow([*head, s.x_name, int(x), s.y_name, int(y), _cell(v[j, i])])
    return buf.getvalue()


def to_json(series: list[Series], params: Params, indent=None) -> str:
    """JSON: ``{"app", "version", "query", "params", "views": {view: {"title", "series": [...]}}}``.

    Each series has ``arch``, ``name``, ``layer``, ``quantity``, ``values`` and, where it
    applies, ``x_name``/``x`` and ``y_name``/``y`` (2-D values are rows over y).
    """
    views = {}
    for s in series:
        entry = {"arch": s.arch, "name": s.name, "layer": s.layer, "quantity": s.quantity,
                 "values": compute.strict_floats(s.values)}
        if s.x is not None:
            entry.update(x_name=s.x_name, x=[int(v) for v in s.x])
        if s.y is not None:
            entry.update(y_name=s.y_name, y=[int(v) for v in s.y])
        views.setdefault(s.view, {"title": VIEW_TITLES[s.view], "series": []})["series"].append(entry)
    doc = {"app": "bpttlab", "version": core.__version__, "query": to_query(params), "params": params.to_dict(),
           "views": views}
    return json.dumps(doc, allow_nan=False, indent=indent, ensure_ascii=False)


def filename(params: Params, ext: str) -> str:
    """A descriptive file name such as ``bpttlab-rnn-lstm-gru-T100-H32-heatmap.csv``."""
    return f"bpttlab-{'-'.join(params.arch)}-T{params.seq_len}-H{params.hidden}-{params.view}.{ext}"


# ----------------------------------------------------------------------------- HTML report
REPORT_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; margin: 2rem auto;
       max-width: 1200px; color: #1a1a1a; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.8rem; margin-bottom: 0.2rem; } h2 { font-size: 1.3rem; margin-top: 2rem; }
.caption { color: #555; max-width: 70em; } .banner { background: #fde7dc; border-left: 6px solid #D55E00;
padding: 0.5rem 1rem; font-weight: 600; } table { border-collapse: collapse; } td, th { padding: 0.15rem 0.8rem;
border-bottom: 1px solid #ddd; text-align: left; }
code { background: #f3f4f6; padding: 0.1rem 0.3rem; word-break: break-all; }
"""


def report_html(params: Params, figs: list[tuple[str, object, str]], series: list[Series],
                banner: list[str] = ()) -> str:
    """A standalone HTML page: settings, ``figs`` as (title, figure dict or ``go.Figure``, caption) with
    plotly.js inlined once, the banner lines, and the data as embedded JSON.

    Opens offline: no script, stylesheet or font is fetched from the network.
    """
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in params.to_dict().items())
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>bpttlab report</title>"
             f"<style>{REPORT_CSS}</style></head><body>",
             "<h1>bpttlab report</h1>",
             f"<p>bpttlab {html.escape(core.__version__)}. Open the same view in the app with the query "
             f"<code>{html.escape(to_query(params))}</code>.</p>"]
    parts += [f"<p class='banner'>{html.escape(line)}</p>" for line in banner]
    for i, (title, fig, caption) in enumerate(figs):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        fig = go.Figure(fig) if isinstance(fig, dict) else fig  # resolves the template name
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), include_mathjax=False,
                                 config={"displaylogo": False, "responsive": True}))
        if caption:
            parts.append(f"<p class='caption'>{html.escape(caption)}</p>")
    parts.append(f"<h2>Settings</h2><table>{rows}</table>")
    data = to_json(series, params).replace("</", "<\\/")
    parts.append(f"<script type='application/json' id='bpttlab-data'>{data}</script>")
    parts.append("<p class='caption'>The numbers behind these plots are embedded in this file as JSON "
                 "(element <code>#bpttlab-data</code>).</p></body></html>")
    return "".join(parts)


def current_figures(params: Params) -> list[tuple[str, object, str]]:
    """(title, figure, caption) of view 1 and the open tab, built as the app builds them."""
    from .callbacks import VIEW_BUILDERS  # the app's own builders, so the report matches the page
    from .layout import CAPTIONS

    keys = [compute.run_key(params, a) for a in params.arch]
    flows = [compute.grad_flow(k) for k in keys]
    grad_norm = figures.grad_norm_figure(flows, truncate=params.truncate)
    out = [(VIEW_TITLES["grad_norm"], grad_norm, CAPTIONS.get("grad", ""))]
    if params.view in VIEW_BUILDERS:
        out.append((VIEW_TITLES[params.view], VIEW_BUILDERS[params.view](keys), CAPTIONS.get(params.view, "")))
    return out


def report(params: Params) -> str:
    """The offline HTML report of the current view (figures, data and the explosion banner)."""
    series = view_series(params)
    flows = [compute.grad_flow(compute.run_key(params, a)) for a in params.arch]
    return report_html(params, current_figures(params), series, compute.explosion_messages(flows))
