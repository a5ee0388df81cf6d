"""Figure builders: pure functions from computed results to ``go.Figure``.

One colour per architecture in every view (Okabe-Ito, colourblind-safe). Log axes are absolute
and shared by all traces. Values a log axis cannot draw stay visible: inf/NaN as markers at the
top of the plot, exact zeros as markers at the bottom, both with their value in the hover.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

COLORS = {"rnn": "#D55E00", "rnn-relu": "#CC79A7", "lstm": "#0072B2", "gru": "#009E73"}
REFERENCE_COLOR = "#555555"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
HEAT_SCALE = "Viridis"
BAND_ALPHA = 0.15


def _rgba(hex_color: str, alpha: float) -> str:
    """'rgba(r,g,b,a)' for a '#rrggbb' colour."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def base_layout(height=440, **overrides) -> dict:
    """The look shared by every figure: large fonts, white background, legend on top."""
    layout = dict(
        template="plotly_white",
        height=height,
        font=dict(family=FONT, size=17, color="#1a1a1a"),
        margin=dict(l=90, r=30, t=60, b=70),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0, font=dict(size=17)),
        hoverlabel=dict(font=dict(size=16, family=FONT)),
        uirevision="keep",
    )
    layout.update(overrides)
    return layout


def message_figure(text: str, height=440) -> go.Figure:
    """An empty figure that shows ``text`` in its middle (no data, errors, nothing selected)."""
    fig = go.Figure(layout=base_layout(height=height))
    fig.update_layout(xaxis=dict(visible=False), yaxis=dict(visible=False), showlegend=False,
                      annotations=[dict(text=text, x=0.5, y=0.5, xref="paper", yref="paper",
                                        showarrow=False, font=dict(size=20, color="#444"))])
    return fig


# ----------------------------------------------------------------------------- log-axis helpers
def log_range(arrays, pad=0.3, top_room=0.0):
    """[lo, hi] in log10 units covering the finite positive values of ``arrays`` (None if none)."""
    lo, hi = math.inf, -math.inf
    for a in arrays:
        a = np.asarray(a, dtype=float)
        ok = a[np.isfinite(a) & (a > 0)]
        if ok.size:
            lo, hi = min(lo, float(ok.min())), max(hi, float(ok.max()))
    if not math.isfinite(lo):
        return None
    lo, hi = math.log10(lo), math.log10(hi)
    if hi - lo < 1:
        mid = (hi + lo) / 2
        lo, hi = mid - 0.5, mid + 0.5
    return [lo - pad, hi + pad + top_room]


def _special_points(x, y, name, color, yrange, legendgroup):
    """Marker traces for inf/NaN (at the top) and exact zeros (at the bottom) of ``y``."""
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    traces = []
    bad = ~np.isfinite(y)
    if bad.any():
        label = np.where(np.isnan(y[bad]), "NaN", np.where(y[bad] > 0, "inf", "-inf"))
        traces.append(go.Scatter(
            x=x[bad], y=np.full(int(bad.sum()), 10 ** (yrange[1] - 0.15)), mode="markers",
            name=f"{name}: inf/NaN", legendgroup=legendgroup, showlegend=False, customdata=label,
            marker=dict(symbol="x", size=11, color=color, line=dict(width=1, color=color)),
            hovertemplate=f"{name} t=%{{x}}: <b>%{{customdata}}</b><extra></extra>"))
    zero = np.isfinite(y) & (y <= 0)
    if zero.any():
        traces.append(go.Scatter(
            x=x[zero], y=np.full(int(zero.sum()), 10 ** (yrange[0] + 0.1)), mode="markers",
            name=f"{name}: zero", legendgroup=legendgroup, showlegend=False,
            marker=dict(symbol="line-ew", size=12, color=color, line=dict(width=2, color=color)),
            hovertemplate=f"{name} t=%{{x}}: <b>0</b> (exactly)<extra></extra>"))
    return traces


def _positive_or_gap(y):
    """``y`` as float with zeros, NaN and inf replaced by NaN (gaps on a log axis)."""
    y = np.asarray(y, dtype=float).copy()
    y[~(np.isfinite(y) & (y > 0))] = np.nan
    return y


def _band(x, lo, hi, color, legendgroup):
    """A filled min..max band (two traces) behind a line."""
    lo, hi = _positive_or_gap(lo), _positive_or_gap(hi)
    common = dict(x=x, mode="lines", line=dict(width=0), legendgroup=legendgroup, showlegend=False,
                  hoverinfo="skip")
    return [go.Scatter(y=hi, **common),
            go.Scatter(y=lo, fill="tonexty", fillcolor=_rgba(color, BAND_ALPHA), **common)]


def _log_axis(yrange, title):
    """A log y axis with a fixed absolute range and power-of-ten tick labels."""
    axis = dict(type="log", title=dict(text=title), exponentformat="power", showexponent="all",
                gridcolor="#e3e3e3", zeroline=False)
    if yrange is not None:
        axis["range"] = yrange
    return axis


def _truncation_shapes(truncate, T):
    """Faint vertical lines where truncated BPTT detaches the state (at most 60)."""
    if not truncate or truncate >= T or T // truncate > 60:
        return []
    return [dict(type="line", x0=t - 0.5, x1=t - 0.5, y0=0, y1=1, yref="paper",
                 line=dict(color="#999", width=1.5, dash="dash")) for t in range(truncate, T, truncate)]


# ----------------------------------------------------------------------------- view 1
def grad_norm_figure(flows, truncate=None, height=460) -> go.Figure:
    """View 1: ||dL/dh_t|| against t, one trace per architecture on one shared absolute log axis.

    Parameters
    ----------
    flows : list of :class:`visualizer.compute.GradFlow`. The top layer is the named trace
        (``RNN``, ``LSTM``, ...; one point per time step); lower layers are dotted.
    truncate : truncation window, drawn as dashed vertical lines.
    """
    if not flows:
        return message_figure("Pick at least one architecture.", height)
    arrays = [f.hidden_grad_norms for f in flows]
    has_bad = any(np.any(~np.isfinite(a)) for a in arrays)
    yrange = log_range(arrays, top_room=0.4 if has_bad else 0.0) or [-1, 1]
    data = []
    for f in flows:
        color = COLORS[f.arch]
        L, T = f.hidden_grad_norms.shape
        x = np.arange(T)
        for layer in range(L):
            top = layer == L - 1
            name = f.name if top else f"{f.name} · layer {layer + 1}"
            y = f.hidden_grad_norms[layer]
            data.append(go.Scatter(
                x=x, y=_positive_or_gap(y), name=name, legendgroup=f.arch, showlegend=True,
                mode="lines+markers" if T <= 60 else "lines",
                line=dict(color=color, width=3.5 if top else 2, dash="solid" if top else "dot"),
                marker=dict(size=6, color=color),
                hovertemplate=f"{name}: %{{y:.6g}}<extra></extra>"))
            data.extend(_special_points(x, y, name, color, yrange, f.arch))
    layout = base_layout(
        height=height, hovermode="x unified",
        xaxis=dict(title=dict(text="time step t"), gridcolor="#e3e3e3", zeroline=False),
        yaxis=_log_axis(yrange, "‖∂L/∂h<sub>t</sub>‖"),
        shapes=_truncation_shapes(truncate, flows[0].hidden_grad_norms.shape[1]),
    )
    return go.Figure(data=data, layout=layout)


# ----------------------------------------------------------------------------- view 2
def jacobian_figure(items, height=480) -> go.Figure:
    """View 2: ||ds_{T-1}/ds_t|| against the lag k = T-1-t, log scale.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``median``/``min``/``max`` (T,) arrays indexed
        by lag, ``reference`` (T,) the slope sigma_1(W_hh)^k or None, ``sigma`` and
        ``threshold`` (1/gamma) floats or None.
    """
    if not items:
        return message_figure("Pick at least one architecture.", height)
    arrays = [it["median"] for it in items] + [it["min"] for it in items] + [it["max"] for it in items]
    has_bad = any(np.any(~np.isfinite(a)) for a in arrays)
    yrange = log_range(arrays, top_room=0.4 if has_bad else 0.0) or [-1, 1]
    data = []
    for it in items:
        color, name = COLORS[it["arch"]], it["name"]
        k = np.arange(len(it["median"]))
        if it.get("band", True):
            data.extend(_band(k, it["min"], it["max"], color, it["arch"]))
        data.append(go.Scatter(
            x=k, y=_positive_or_gap(it["median"]), name=name, legendgroup=it["arch"],
            mode="lines", line=dict(color=color, width=3.5),
            hovertemplate=f"{name}: %{{y:.6g}}<extra></extra>"))
        data.extend(_special_points(k, it["median"], name, color, yrange, it["arch"]))
        if it.get("reference") is not None:
            sigma = it["sigma"]
            data.append(go.Scatter(
                x=k, y=_positive_or_gap(it["reference"]), name=f"σ₁(W<sub>hh</sub>)<sup>k</sup> = {sigma:.3g}<sup>k</sup>",
                legendgroup=it["arch"], mode="lines", line=dict(color=color, width=2, dash="dash"),
                hovertemplate=f"{name} reference σ₁<sup>k</sup>: %{{y:.4g}}<extra></extra>"))
    shapes = [dict(type="line", xref="paper", x0=0, x1=1, y0=1, y1=1,
                   line=dict(color=REFERENCE_COLOR, width=2, dash="dot"))]
    notes = [it["verdict"] for it in items if it.get("verdict")]
    annotations = [dict(text="slope at σ₁ = 1/γ (Pascanu et al. 2013)", xref="paper", x=1, xanchor="right",
                        y=0, yref="y", yanchor="bottom", showarrow=False, font=dict(size=14, color=REFERENCE_COLOR))]
    if notes:
        annotations.append(dict(text="<br>".join(notes), xref="paper", yref="paper", x=0.01, y=0.02,
                                xanchor="left", yanchor="bottom", align="left", showarrow=False,
                                bgcolor="rgba(255,255,255,0.85)", font=dict(size=14)))
    layout = base_layout(
        height=height, hovermode="x unified",
        xaxis=dict(title=dict(text="lag k = T−1−t (steps back from the end)"), gridcolor="#e3e3e3", zeroline=False),
        yaxis=_log_axis(yrange, "‖∂s<sub>T−1</sub>/∂s<sub>t</sub>‖"),
        shapes=shapes, annotations=annotations)
    return go.Figure(data=data, layout=layout)


# ----------------------------------------------------------------------------- view 3
def heatmap_figure(items, height=None) -> go.Figure:
    """View 3: |dL/dh_t| per hidden unit, time on x, one row per architecture, one colour scale.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``log10`` (T', H) log10 values (NaN for 0/inf),
        ``values`` (T', H) the raw values for the hover, ``t`` (T',) first step of each column
        and ``bin`` the number of steps per column.
    """
    if not items:
        return message_figure("Pick at least one architecture.", height or 440)
    n = len(items)
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.06 if n > 1 else 0.0,
                        subplot_titles=[f"{it['name']}" + (f"  (each column: max over {it['bin']} steps)" if it["bin"] > 1 else "")
                                        for it in items])
    lo, hi = _heat_range([it["log10"] for it in items])
    for row, it in enumerate(items, start=1):
        H = it["log10"].shape[1]
        fig.add_trace(go.Heatmap(
            x=it["t"], y=np.arange(1, H + 1), z=it["log10"].T, customdata=it["values"].T,
            coloraxis="coloraxis", name=it["name"],
            hovertemplate=f"{it['name']} t=%{{x}}, unit %{{y}}: %{{customdata:.6g}}<extra></extra>"), row=row, col=1)
        fig.update_yaxes(title_text="unit", row=row, col=1)
    fig.update_xaxes(title_text="time step t", row=n, col=1)
    fig.update_layout(**base_layout(height=height or max(300, 60 + 190 * n)),
                      coloraxis=dict(colorscale=HEAT_SCALE, cmin=lo, cmax=hi,
                                     colorbar=dict(title=dict(text="log<sub>10</sub> |∂L/∂h|"), thickness=18)))
    for ann, it in zip(fig.layout.annotations, items):
        ann.font = dict(size=17, color=COLORS[it["arch"]])
    return fig


def _heat_range(arrays):
    """(lo, hi) of the finite values of all arrays (shared colour scale); (-1, 0) if none."""
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [f for f in finite if f.size]
    if not finite:
        return -1.0, 0.0
    lo, hi = min(float(f.min()) for f in finite), max(float(f.max()) for f in finite)
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


# ----------------------------------------------------------------------------- view 4
def spectra_figure(items, height=480) -> go.Figure:
    """View 4: singular values of W_hh (left) and of the one-step Jacobians over time (right).

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``weights`` (n,) singular values of the top
        layer's W_hh (or None), ``threshold`` 1/gamma (or None), ``step_max``/``step_min`` (T,)
        largest and smallest singular value of each one-step Jacobian (or None).
    """
    if not items:
        return message_figure("Pick at least one architecture.", height)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("singular values of W<sub>hh</sub>", "one-step Jacobians ∂s<sub>t</sub>/∂s<sub>t−1</sub>"))
    thresholds = {}
    for it in items:
        color, name = COLORS[it["arch"]], it["name"]
        if it.get("weights") is not None:
            w = np.asarray(it["weights"])
            fig.add_trace(go.Scatter(
                x=np.arange(1, w.size + 1), y=w, name=name, legendgroup=it["arch"], mode="lines+markers",
                line=dict(color=color, width=3), marker=dict(size=6),
                hovertemplate=f"{name} σ<sub>%{{x}}</sub> = %{{y:.6g}}<extra></extra>"), row=1, col=1)
        if it.get("threshold") is not None:
            thresholds.setdefault(round(float(it["threshold"]), 6), []).append(name)
        if it.get("step_max") is not None:
            t = np.arange(len(it["step_max"]))
            fig.add_trace(go.Scatter(
                x=t, y=_positive_or_gap(it["step_max"]), name=f"{name} σ<sub>max</sub>", legendgroup=it["arch"],
                showlegend=it.get("weights") is None, mode="lines", line=dict(color=color, width=3),
                hovertemplate=f"{name} t=%{{x}} σ<sub>max</sub> = %{{y:.6g}}<extra></extra>"), row=1, col=2)
            fig.add_trace(go.Scatter(
                x=t, y=_positive_or_gap(it["step_min"]), name=f"{name} σ<sub>min</sub>", legendgroup=it["arch"],
                showlegend=False, mode="lines", line=dict(color=color, width=2, dash="dot"),
                hovertemplate=f"{name} t=%{{x}} σ<sub>min</sub> = %{{y:.6g}}<extra></extra>"), row=1, col=2)
    for value, names in thresholds.items():
        for col in (1, 2):
            fig.add_hline(y=value, line=dict(color=REFERENCE_COLOR, width=2, dash="dot"), row=1, col=col)
        fig.add_annotation(text=f"1/γ = {value:g} ({', '.join(names)})", xref="x domain", x=1, xanchor="right",
                           y=value, yref="y", yanchor="bottom", showarrow=False,
                           font=dict(size=14, color=REFERENCE_COLOR), row=1, col=1)
    fig.update_xaxes(title_text="index i", gridcolor="#e3e3e3", row=1, col=1)
    fig.update_xaxes(title_text="time step t", gridcolor="#e3e3e3", row=1, col=2)
    fig.update_yaxes(title_text="σ<sub>i</sub>", gridcolor="#e3e3e3", row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="power", gridcolor="#e3e3e3", title_text="σ", row=1, col=2)
    fig.update_layout(**base_layout(height=height, hovermode="closest"))
    return fig


# ----------------------------------------------------------------------------- view 5
def gates_figure(items, height=480) -> go.Figure:
    """View 5: products of LSTM forget gates / GRU carry gates (1 - z) along time, beside the
    plain RNN's product of step Jacobian norms.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``label`` (what the product is),
        ``median``/``min``/``max`` (T,) over the batch, indexed by t.
    """
    if not items:
        return message_figure("Pick at least one architecture.", height)
    arrays = [it["median"] for it in items] + [it["min"] for it in items] + [it["max"] for it in items]
    has_bad = any(np.any(~np.isfinite(a)) for a in arrays)
    yrange = log_range(arrays, top_room=0.4 if has_bad else 0.0) or [-1, 1]
    data = []
    for it in items:
        color, name = COLORS[it["arch"]], f"{it['name']}: {it['label']}"
        t = np.arange(len(it["median"]))
        if it.get("band", True):
            data.extend(_band(t, it["min"], it["max"], color, it["arch"]))
        data.append(go.Scatter(
            x=t, y=_positive_or_gap(it["median"]), name=name, legendgroup=it["arch"], mode="lines",
            line=dict(color=color, width=3.5), hovertemplate=f"{name}: %{{y:.6g}}<extra></extra>"))
        data.extend(_special_points(t, it["median"], it["name"], color, yrange, it["arch"]))
    layout = base_layout(
        height=height, hovermode="x unified",
        xaxis=dict(title=dict(text="time step t"), gridcolor="#e3e3e3", zeroline=False),
        yaxis=_log_axis(yrange, "product from t to the end"))
    return go.Figure(data=data, layout=layout)


# ----------------------------------------------------------------------------- view 6
def connectivity_figure(items, height=None) -> go.Figure:
    """View 6: the (T, T) map of ||dy_t/dx_s|| per architecture (Distill-style), one colour scale.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``log10`` (T', T') log10 values (NaN where
        zero), ``values`` (T', T') raw values, ``ticks`` (T',) the step of each row/column and
        ``bin`` steps per cell.
    """
    if not items:
        return message_figure("Pick at least one architecture.", height or 480)
    n = len(items)
    fig = make_subplots(rows=1, cols=n, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[it["name"] + (f" (max over {it['bin']}×{it['bin']} steps)" if it["bin"] > 1 else "")
                                        for it in items])
    lo, hi = _heat_range([it["log10"] for it in items])
    for col, it in enumerate(items, start=1):
        fig.add_trace(go.Heatmap(
            x=it["ticks"], y=it["ticks"], z=it["log10"], customdata=it["values"], coloraxis="coloraxis",
            name=it["name"],
            hovertemplate=f"{it['name']} output t=%{{y}}, input s=%{{x}}: %{{customdata:.6g}}<extra></extra>"),
            row=1, col=col)
        fig.update_xaxes(title_text="input step s", row=1, col=col, constrain="domain")
        fig.update_yaxes(scaleanchor=f"x{'' if col == 1 else col}", autorange="reversed", row=1, col=col,
                         constrain="domain")
    fig.update_yaxes(title_text="output step t", row=1, col=1)
    fig.update_layout(**base_layout(height=height or 520),
                      coloraxis=dict(colorscale=HEAT_SCALE, cmin=lo, cmax=hi,
                                     colorbar=dict(title=dict(text="log<sub>10</sub> ‖∂y<sub>t</sub>/∂x<sub>s</sub>‖"), thickness=18)))
    for ann, it in zip(fig.layout.annotations, items):
        ann.font = dict(size=17, color=COLORS[it["arch"]])
    return fig
