"""Figure builders: pure functions from computed results to Plotly figures.

A builder returns the figure as the plain dict plotly.js takes (``{"data": [...], "layout":
{...}}``), with numpy arrays sent as base64 typed arrays (exact float64, NaN kept as gaps). That
is what ``dcc.Graph`` needs and costs well under a millisecond; building a validated
``go.Figure`` costs 50-300 ms per figure, more than the app's whole latency budget. Tests wrap
the dicts in ``go.Figure`` to validate them.

One colour per architecture in every view (Okabe-Ito, colourblind-safe). Log axes are absolute
and shared by all traces. Values a log axis cannot draw stay visible: inf/NaN as markers at the
top of the plot (in view 1: in a labelled overflow strip above it), exact zeros as markers at the
bottom, both with their value in the hover.
"""
from __future__ import annotations

import numpy as np

from .plotstyle import (COLORS, LINE_WIDTH, REFERENCE_COLOR, arr, axis, band_traces, base_layout, has_special,
                        line_trace, log_axis, log_range, message_figure, overflow_points, overflow_strip, panel_title,
                        special_points, truncation_shapes)


# ----------------------------------------------------------------------------- grad_norm
VIEW1_MARGIN = dict(l=112, r=30, t=50, b=64)


def grad_norm_figure(flows, truncate=None, height=460) -> dict:
    """``grad_norm``: ||dL/dh_t|| against t, one trace per architecture on one shared absolute log axis.

    Steps where a norm is inf or NaN (an exploded network) are marked in a separate, labelled
    strip above the plot (one row per architecture, hover "inf"/"NaN"), never at a value of the
    log axis; the curve has a gap there. Exact zeros are markers at the bottom of the plot.

    Parameters
    ----------
    flows : list of :class:`visualizer.compute.GradFlow`. The top layer's trace is named
        ``RNN``, ``RNN-relu``, ``LSTM`` or ``GRU`` and has one point per time step; lower
        layers are dotted traces named ``"LSTM · layer 1"`` etc.
    truncate : truncation window, drawn as dashed vertical lines.
    """
    if not flows:
        return message_figure("Pick at least one architecture.", height)
    arrays = [f.hidden_grad_norms for f in flows]
    yrange = log_range(arrays) or [-1, 1]
    overflow = [f for f in flows if not np.isfinite(f.hidden_grad_norms).all()]
    data = []
    for f in flows:
        color = COLORS[f.arch]
        L, T = f.hidden_grad_norms.shape
        x = np.arange(T)
        for layer in range(L - 1, -1, -1):
            top = layer == L - 1
            name = f.name if top else f"{f.name} · layer {layer + 1}"
            y = f.hidden_grad_norms[layer]
            data.append(line_trace(x, y, name, color, f.arch, width=LINE_WIDTH if top else 2,
                              dash="solid" if top else "dot", markers=T <= 60, meta="main" if top else "layer"))
            data.extend(special_points(x, y, name, color, yrange, f.arch, nonfinite=False))
            if f in overflow:
                data.extend(overflow_points(x, y, name, color, f.arch, row=f.name))
    shapes = truncation_shapes(truncate, flows[0].hidden_grad_norms.shape[1])
    last = max(f.hidden_grad_norms.shape[1] for f in flows) - 1
    # Fixed margins that fit every label (down to 10^-3xx): no label measured per redraw.
    layout = base_layout(height=height, hovermode="x unified", margin=VIEW1_MARGIN,
                         xaxis=axis("time step t", None, False, hoverformat="d", range=[0, max(last, 1)]),
                         yaxis=log_axis("‖∂L/∂h<sub>t</sub>‖", yrange, None, False), shapes=shapes)
    if overflow:
        domain, strip, strip_shapes, notes = overflow_strip([f.name for f in overflow],
                                                            [COLORS[f.arch] for f in overflow])
        layout["yaxis"]["domain"] = domain
        layout.update(yaxis2=strip, shapes=strip_shapes + shapes, annotations=notes, hoversubplots="axis")
    return {"data": data, "layout": layout}


# ----------------------------------------------------------------------------- jacobian
def _add_overflow_strip(layout, items, data):
    """Mark the inf/NaN steps of each item's ``median`` in an overflow strip above the plot (as the
    ``grad_norm`` view does), never at a value of the log axis. ``items`` need ``arch``, ``name``, ``median``."""
    overflow = [it for it in items if not np.isfinite(it["median"]).all()]
    if not overflow:
        return layout
    for it in overflow:
        x = np.arange(len(it["median"]))
        data.extend(overflow_points(x, it["median"], it["name"], COLORS[it["arch"]], it["arch"], row=it["name"]))
    domain, strip, strip_shapes, notes = overflow_strip([it["name"] for it in overflow],
                                                        [COLORS[it["arch"]] for it in overflow])
    layout["yaxis"]["domain"] = domain
    layout.update(yaxis2=strip, shapes=strip_shapes + layout.get("shapes", []),
                  annotations=notes + layout.get("annotations", []), hoversubplots="axis")
    return layout


def jacobian_figure(items, height=480) -> dict:
    """``jacobian``: ||ds_{T-1}/ds_t|| against the lag k = T-1-t, log scale.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``median``/``min``/``max`` (T,) arrays indexed
        by lag, ``band`` (draw min..max), ``reference`` (T,) the slope sigma_1(W_hh)^k or None,
        ``sigma`` (float or None) and ``verdict`` (one line or None).
    """
    if not items:
        return message_figure("Pick at least one architecture.", height)
    arrays = [it[k] for it in items for k in ("median", "min", "max")]
    yrange = log_range(arrays, top_room=0.4 if has_special(arrays) else 0.0) or [-1, 1]
    data = []
    for it in items:
        color, name, group = COLORS[it["arch"]], it["name"], it["arch"]
        k = np.arange(len(it["median"]))
        if it.get("band"):
            data.extend(band_traces(k, it["min"], it["max"], color, group))
        data.append(line_trace(k, it["median"], name, color, group))
        data.extend(special_points(k, it["median"], name, color, yrange, group, nonfinite=False))
        if it.get("reference") is not None:
            ref_name = f"{name}: σ₁(W<sub>hh</sub>)<sup>k</sup> = {it['sigma']:.3g}<sup>k</sup>"
            data.append(line_trace(k, it["reference"], ref_name, color, group, width=2, dash="dash", meta="reference",
                              hover=f"{name} σ₁<sup>k</sup>: %{{y:.4g}}<extra></extra>"))
    annotations = [dict(text="1/γ threshold: σ₁ = 1/γ gives slope 0", xref="paper", x=1, xanchor="right", y=0,
                        yref="y", yanchor="bottom", showarrow=False, font=dict(size=14, color=REFERENCE_COLOR))]
    notes = [it["verdict"] for it in items if it.get("verdict")]
    if notes:
        annotations.append(dict(text="<br>".join(notes), xref="paper", yref="paper", x=0.01, y=0.02,
                                xanchor="left", yanchor="bottom", align="left", showarrow=False,
                                bgcolor="rgba(255,255,255,0.9)", bordercolor="#ccc", borderwidth=1,
                                font=dict(size=15)))
    layout = base_layout(
        height=height, hovermode="x unified",
        xaxis=axis("lag k = T−1−t  (steps back from the last step)", hoverformat="d"),
        yaxis=log_axis("‖∂s<sub>T−1</sub>/∂s<sub>t</sub>‖", yrange),
        shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=1, y1=1,
                     line=dict(color=REFERENCE_COLOR, width=2, dash="dot"))],
        annotations=annotations)
    return {"data": data, "layout": _add_overflow_strip(layout, items, data)}


# ----------------------------------------------------------------------------- spectra
def spectra_figure(items, height=500) -> dict:
    """``spectra``: singular values of W_hh (left) and of the one-step Jacobians over time (right).

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``weights`` (n,) singular values of the top
        layer's W_hh (or None), ``threshold`` 1/gamma (or None), ``step_max``/``step_min`` (T,)
        largest and smallest singular value of each one-step Jacobian (or None), ``t`` the
        steps these belong to (default: every step).
    """
    if not items:
        return message_figure("Pick at least one architecture.", height)
    data, thresholds = [], {}
    right = [it[k] for it in items for k in ("step_max", "step_min") if it.get(k) is not None]
    yrange = log_range(right, top_room=0.4 if has_special(right) else 0.0) if right else None
    for it in items:
        color, name, group = COLORS[it["arch"]], it["name"], it["arch"]
        if it.get("weights") is not None:
            w = np.asarray(it["weights"], dtype=float)
            data.append(dict(type="scatter", x=arr(np.arange(1, w.size + 1)), y=arr(w), name=name, legendgroup=group,
                             meta="main",
                             mode="lines+markers" if w.size <= 64 else "lines", line=dict(color=color, width=3),
                             marker=dict(size=6, color=color), xaxis="x", yaxis="y",
                             hovertemplate=f"{name} σ<sub>%{{x}}</sub> = %{{y:.6g}}<extra></extra>"))
        if it.get("threshold") is not None:
            thresholds.setdefault(round(float(it["threshold"]), 9), []).append(name)
        if it.get("step_max") is not None:
            t = np.asarray(it["t"]) if it.get("t") is not None else np.arange(len(it["step_max"]))
            show = it.get("weights") is None
            data.append(line_trace(t, it["step_max"], f"{name} σ<sub>max</sub>", color, group, width=3, showlegend=show,
                              xaxis="x2", yaxis="y2", meta="step-max",
                              hover=f"{name} σ<sub>max</sub>: %{{y:.6g}}<extra></extra>"))
            data.append(line_trace(t, it["step_min"], f"{name} σ<sub>min</sub>", color, group, width=2, dash="dot",
                              showlegend=False, xaxis="x2", yaxis="y2", meta="min",
                              hover=f"{name} σ<sub>min</sub>: %{{y:.6g}}<extra></extra>"))
            if yrange:
                data.extend(special_points(t, it["step_max"], name, color, yrange, group, "x2", "y2"))
    shapes, annotations = [], [panel_title("singular values of W<sub>hh</sub> (top layer)", "#1a1a1a", 0, 1.0),
                               panel_title("one-step Jacobians ∂s<sub>t</sub>/∂s<sub>t−1</sub>, sequence 1",
                                      "#1a1a1a", 0.55, 1.0)]
    for value, _names in thresholds.items():
        for xref, yref in (("x domain", "y"), ("x2 domain", "y2")):
            shapes.append(dict(type="line", xref=xref, x0=0, x1=1, yref=yref, y0=value, y1=value,
                               line=dict(color=REFERENCE_COLOR, width=2, dash="dot")))
        annotations.append(dict(text=f"1/γ = {value:g}", xref="x domain", x=1, xanchor="right", y=value, yref="y",
                                yanchor="bottom", showarrow=False, font=dict(size=14, color=REFERENCE_COLOR)))
    layout = base_layout(
        height=height, hovermode="closest", margin=dict(l=80, r=30, t=90, b=70),
        legend=dict(orientation="h", yanchor="bottom", y=1.09, xanchor="left", x=0, font=dict(size=17)),
        xaxis=axis("index i", domain=[0, 0.42], anchor="y"),
        yaxis=axis("σ<sub>i</sub>", anchor="x", rangemode="tozero"),
        xaxis2=axis("time step t", domain=[0.55, 1], anchor="y2"),
        yaxis2=log_axis("σ", yrange, anchor="x2"),
        shapes=shapes, annotations=annotations)
    return {"data": data, "layout": layout}


# ----------------------------------------------------------------------------- gates
def gates_figure(items, height=480) -> dict:
    """``gates``: products of LSTM forget gates / GRU carry gates along time, beside the plain
    RNN's product of step Jacobian norms.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``label`` (what the product is), ``band``,
        ``median``/``min``/``max`` (T,) over the batch, indexed by t.
    """
    if not items:
        return message_figure("Pick at least one architecture.", height)
    arrays = [it[k] for it in items for k in ("median", "min", "max")]
    yrange = log_range(arrays, top_room=0.4 if has_special(arrays) else 0.0) or [-1, 1]
    data = []
    for it in items:
        color, name, group = COLORS[it["arch"]], f"{it['name']}: {it['label']}", it["arch"]
        t = np.arange(len(it["median"]))
        if it.get("band"):
            data.extend(band_traces(t, it["min"], it["max"], color, group))
        data.append(line_trace(t, it["median"], name, color, group))
        data.extend(special_points(t, it["median"], it["name"], color, yrange, group, nonfinite=False))
    layout = base_layout(height=height, hovermode="x unified",
                         xaxis=axis("time step t", hoverformat="d"),
                         yaxis=log_axis("product from step t to the end", yrange),
                         shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=1, y1=1,
                                      line=dict(color=REFERENCE_COLOR, width=1.5, dash="dot"))])
    return {"data": data, "layout": _add_overflow_strip(layout, items, data)}
