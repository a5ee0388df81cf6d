"""Figure builders: pure functions from computed results to Plotly figures.

A builder returns the figure as the plain dict plotly.js takes (``{"data": [...], "layout":
{...}}``), with numpy arrays sent as base64 typed arrays (exact float64, NaN kept as gaps). That
is what ``dcc.Graph`` needs and costs well under a millisecond; building a validated
``go.Figure`` costs 50-300 ms per figure, more than the app's whole latency budget. Tests wrap
the dicts in ``go.Figure`` to validate them.

One colour per architecture in every view (Okabe-Ito, colourblind-safe). Log axes are absolute
and shared by all traces. Values a log axis cannot draw stay visible: inf/NaN as markers at the
top of the plot, exact zeros as markers at the bottom, both with their value in the hover.
"""
from __future__ import annotations

import base64
import math

import numpy as np

COLORS = {"rnn": "#D55E00", "rnn-relu": "#CC79A7", "lstm": "#0072B2", "gru": "#009E73"}
REFERENCE_COLOR = "#555555"
GRID = "#e3e3e3"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
HEAT_SCALE = "Viridis"
BAND_ALPHA = 0.15
LINE_WIDTH = 3.5


def arr(a, dtype="f8") -> dict:
    """A numpy array as a plotly.js typed-array spec (base64, with shape for 2-D arrays)."""
    a = np.ascontiguousarray(a, dtype=np.dtype(dtype))
    spec = {"dtype": dtype, "bdata": base64.b64encode(a.tobytes()).decode("ascii")}
    if a.ndim > 1:
        spec["shape"] = ",".join(str(s) for s in a.shape)
    return spec


def decode(spec) -> np.ndarray:
    """Inverse of :func:`arr` (lists pass through as arrays)."""
    if isinstance(spec, dict):
        a = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]))
        if "shape" in spec:
            a = a.reshape([int(s) for s in str(spec["shape"]).split(",")])
        return a
    return np.asarray(spec)


def _rgba(hex_color: str, alpha: float) -> str:
    """'rgba(r,g,b,a)' for a '#rrggbb' colour."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def base_layout(height=440, **overrides) -> dict:
    """The look shared by every figure: large fonts, white background, legend on top."""
    layout = dict(
        height=height,
        font=dict(family=FONT, size=17, color="#1a1a1a"),
        margin=dict(l=70, r=30, t=50, b=60),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0, font=dict(size=17),
                    traceorder="normal"),
        hoverlabel=dict(font=dict(size=16, family=FONT)),
        uirevision="keep",
        paper_bgcolor="white",
        plot_bgcolor="white",
    )
    layout.update(overrides)
    return layout


def _axis(title, **kw) -> dict:
    """A linear axis with a title and light grid."""
    return dict(title=dict(text=title, standoff=12), gridcolor=GRID, zeroline=False, linecolor="#888", showline=True,
                automargin=True, **kw)


def decade_step(span: float, max_labels: int = 9) -> int:
    """Decades between log-axis labels: the smallest of 1, 2, 3, 5, 10, 20, 25, 50, 100, ... that
    keeps at most ``max_labels`` labels over ``span`` decades."""
    for step in (1, 2, 3, 5, 10, 20, 25, 50):
        if span / step <= max_labels:
            return step
    return 100


def _log_axis(title, yrange, **kw) -> dict:
    """A log axis with a fixed absolute range and power-of-ten tick labels."""
    axis = dict(type="log", title=dict(text=title, standoff=12), exponentformat="power", showexponent="all",
                gridcolor=GRID, zeroline=False, linecolor="#888", showline=True, automargin=True, **kw)
    if yrange is not None:
        axis["range"] = list(yrange)
        axis["dtick"] = decade_step(yrange[1] - yrange[0])
    return axis


def message_figure(text: str, height=440) -> dict:
    """An empty figure that shows ``text`` in its middle (no data, errors, nothing selected)."""
    return {"data": [], "layout": base_layout(
        height=height, showlegend=False, xaxis=dict(visible=False), yaxis=dict(visible=False),
        annotations=[dict(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                          font=dict(size=20, color="#444"))])}


# ----------------------------------------------------------------------------- log-axis helpers
def log_range(arrays, pad=0.3, top_room=0.0):
    """[lo, hi] in log10 units covering the finite positive values of ``arrays`` (None if none)."""
    lo, hi = math.inf, -math.inf
    for a in arrays:
        if a is None:
            continue
        a = np.asarray(a, dtype=float)
        ok = a[np.isfinite(a) & (a > 0)]
        if ok.size:
            lo, hi = min(lo, float(ok.min())), max(hi, float(ok.max()))
    if not math.isfinite(lo):
        return None
    lo, hi = math.log10(lo), math.log10(hi)
    if hi - lo < 2:  # at least two decades, so the ticks are powers of ten
        mid = (hi + lo) / 2
        lo, hi = mid - 1, mid + 1
    return [lo - pad, hi + pad + top_room]


def _has_special(arrays) -> bool:
    """True if any array holds inf/NaN or an exact zero (they need room for markers)."""
    for a in arrays:
        a = np.asarray(a, dtype=float)
        if np.any(~np.isfinite(a)) or np.any(a <= 0):
            return True
    return False


def _positive_or_gap(y) -> np.ndarray:
    """``y`` as float64 with zeros, NaN and inf replaced by NaN (gaps on a log axis)."""
    y = np.array(y, dtype=float)
    y[~(np.isfinite(y) & (y > 0))] = np.nan
    return y


def _special_points(x, y, name, color, yrange, group, xaxis="x", yaxis="y") -> list:
    """Marker traces for inf/NaN (at the top) and exact zeros (at the bottom) of ``y``."""
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    traces = []
    bad = ~np.isfinite(y)
    if bad.any():
        labels = np.where(np.isnan(y[bad]), "NaN", np.where(y[bad] > 0, "inf", "-inf")).tolist()
        traces.append(dict(
            type="scatter", x=arr(x[bad]), y=arr(np.full(int(bad.sum()), 10 ** (yrange[1] - 0.15))),
            mode="markers", name=f"{name}: inf/NaN", legendgroup=group, showlegend=False, customdata=labels,
            marker=dict(symbol="x", size=11, color=color), xaxis=xaxis, yaxis=yaxis,
            hovertemplate=f"{name}: <b>%{{customdata}}</b><extra></extra>"))
    zero = np.isfinite(y) & (y <= 0)
    if zero.any():
        traces.append(dict(
            type="scatter", x=arr(x[zero]), y=arr(np.full(int(zero.sum()), 10 ** (yrange[0] + 0.1))),
            mode="markers", name=f"{name}: zero", legendgroup=group, showlegend=False,
            marker=dict(symbol="line-ew-open", size=14, color=color, line=dict(width=3, color=color)),
            xaxis=xaxis, yaxis=yaxis, hovertemplate=f"{name}: <b>0</b> (exactly)<extra></extra>"))
    return traces


def _line(x, y, name, color, group, width=LINE_WIDTH, dash="solid", markers=False, showlegend=True,
          hover=None, xaxis="x", yaxis="y", meta="main") -> dict:
    """A line trace with its exact value in the hover. ``meta`` tells main traces ("main") from
    references and lower layers (tests and exports select by it)."""
    return dict(type="scatter", x=arr(x), y=arr(_positive_or_gap(y)), name=name, legendgroup=group, meta=meta,
                showlegend=showlegend, mode="lines+markers" if markers else "lines",
                line=dict(color=color, width=width, dash=dash), marker=dict(size=7, color=color),
                xaxis=xaxis, yaxis=yaxis,
                hovertemplate=hover or f"{name}: %{{y:.6g}}<extra></extra>")


def _band(x, lo, hi, color, group, xaxis="x", yaxis="y") -> list:
    """A filled min..max band (two traces) behind a line."""
    common = dict(type="scatter", x=arr(x), mode="lines", line=dict(width=0, color=color), legendgroup=group,
                  showlegend=False, hoverinfo="skip", xaxis=xaxis, yaxis=yaxis)
    return [dict(y=arr(_positive_or_gap(hi)), **common),
            dict(y=arr(_positive_or_gap(lo)), fill="tonexty", fillcolor=_rgba(color, BAND_ALPHA), **common)]


def _truncation_shapes(truncate, T) -> list:
    """Dashed vertical lines where truncated BPTT detaches the state (at most 60)."""
    if not truncate or truncate >= T or T // truncate > 60:
        return []
    return [dict(type="line", x0=t - 0.5, x1=t - 0.5, y0=0, y1=1, yref="paper", layer="below",
                 line=dict(color="#888", width=1.5, dash="dash")) for t in range(truncate, T, truncate)]


# ----------------------------------------------------------------------------- view 1
def grad_norm_figure(flows, truncate=None, height=460) -> dict:
    """View 1: ||dL/dh_t|| against t, one trace per architecture on one shared absolute log axis.

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
    yrange = log_range(arrays, top_room=0.4 if _has_special(arrays) else 0.0) or [-1, 1]
    data = []
    for f in flows:
        color = COLORS[f.arch]
        L, T = f.hidden_grad_norms.shape
        x = np.arange(T)
        for layer in range(L - 1, -1, -1):
            top = layer == L - 1
            name = f.name if top else f"{f.name} · layer {layer + 1}"
            y = f.hidden_grad_norms[layer]
            data.append(_line(x, y, name, color, f.arch, width=LINE_WIDTH if top else 2,
                              dash="solid" if top else "dot", markers=T <= 60, meta="main" if top else "layer"))
            data.extend(_special_points(x, y, name, color, yrange, f.arch))
    layout = base_layout(height=height, hovermode="x unified",
                         xaxis=_axis("time step t", hoverformat="d"),
                         yaxis=_log_axis("‖∂L/∂h<sub>t</sub>‖", yrange),
                         shapes=_truncation_shapes(truncate, flows[0].hidden_grad_norms.shape[1]))
    return {"data": data, "layout": layout}


# ----------------------------------------------------------------------------- view 2
def jacobian_figure(items, height=480) -> dict:
    """View 2: ||ds_{T-1}/ds_t|| against the lag k = T-1-t, log scale.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``median``/``min``/``max`` (T,) arrays indexed
        by lag, ``band`` (draw min..max), ``reference`` (T,) the slope sigma_1(W_hh)^k or None,
        ``sigma`` (float or None) and ``verdict`` (one line or None).
    """
    if not items:
        return message_figure("Pick at least one architecture.", height)
    arrays = [it[k] for it in items for k in ("median", "min", "max")]
    yrange = log_range(arrays, top_room=0.4 if _has_special(arrays) else 0.0) or [-1, 1]
    data = []
    for it in items:
        color, name, group = COLORS[it["arch"]], it["name"], it["arch"]
        k = np.arange(len(it["median"]))
        if it.get("band"):
            data.extend(_band(k, it["min"], it["max"], color, group))
        data.append(_line(k, it["median"], name, color, group))
        data.extend(_special_points(k, it["median"], name, color, yrange, group))
        if it.get("reference") is not None:
            ref_name = f"{name}: σ₁(W<sub>hh</sub>)<sup>k</sup> = {it['sigma']:.3g}<sup>k</sup>"
            data.append(_line(k, it["reference"], ref_name, color, group, width=2, dash="dash", meta="reference",
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
        xaxis=_axis("lag k = T−1−t  (steps back from the last step)", hoverformat="d"),
        yaxis=_log_axis("‖∂s<sub>T−1</sub>/∂s<sub>t</sub>‖", yrange),
        shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=1, y1=1,
                     line=dict(color=REFERENCE_COLOR, width=2, dash="dot"))],
        annotations=annotations)
    return {"data": data, "layout": layout}


# ----------------------------------------------------------------------------- heatmaps
def _heat_range(arrays):
    """(lo, hi) of the finite values of all arrays (one shared colour scale); (-1, 0) if none."""
    finite = [a[np.isfinite(a)] for a in (np.asarray(x, dtype=float) for x in arrays)]
    finite = [f for f in finite if f.size]
    if not finite:
        return -1.0, 0.0
    lo, hi = min(float(f.min()) for f in finite), max(float(f.max()) for f in finite)
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _coloraxis(lo, hi, title) -> dict:
    """The shared colour scale of a set of heatmaps."""
    return dict(colorscale=HEAT_SCALE, cmin=lo, cmax=hi,
                colorbar=dict(title=dict(text=title, side="right"), thickness=18, len=1.0, y=0.5, yanchor="middle"))


def _title(text, color, x, y, xanchor="left") -> dict:
    """A coloured small-multiple title placed in paper coordinates."""
    return dict(text=f"<b>{text}</b>", x=x, y=y, xref="paper", yref="paper", xanchor=xanchor, yanchor="bottom",
                showarrow=False, font=dict(size=17, color=color))


def heatmap_figure(items, height=None) -> dict:
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
    gap, top_pad = 0.09, 0.06
    h = (1 - top_pad - gap * (n - 1)) / n
    lo, hi = _heat_range([it["log10"] for it in items])
    data, layout_axes, annotations = [], {}, []
    for i, it in enumerate(items):
        ax = "" if i == 0 else str(i + 1)
        y1 = 1 - top_pad - i * (h + gap)
        H = it["log10"].shape[1]
        binned = f" · each column: max over {it['bin']} steps" if it["bin"] > 1 else ""
        data.append(dict(
            type="heatmap", x=arr(it["t"]), y=arr(np.arange(1, H + 1)), z=arr(it["log10"].T, "f4"),
            customdata=arr(it["values"].T), coloraxis="coloraxis", name=it["name"], xaxis=f"x{ax}", yaxis=f"y{ax}",
            hovertemplate=f"{it['name']}  t=%{{x}}, unit %{{y}}: %{{customdata:.6g}}<extra></extra>"))
        layout_axes[f"xaxis{ax}"] = _axis("time step t" if i == n - 1 else "", anchor=f"y{ax}",
                                          matches="x" if i else None, showticklabels=i == n - 1)
        layout_axes[f"yaxis{ax}"] = _axis("unit", anchor=f"x{ax}", domain=[max(0.0, y1 - h), y1])
        annotations.append(_title(it["name"] + binned, COLORS[it["arch"]], 0, y1))
    for axis in layout_axes.values():
        if axis.get("matches") is None:
            axis.pop("matches", None)
    layout = base_layout(height=height or max(320, 80 + 200 * n), hovermode="closest",
                         margin=dict(l=95, r=30, t=40, b=70),
                         coloraxis=_coloraxis(lo, hi, "log<sub>10</sub> |∂L/∂h|"), annotations=annotations,
                         **layout_axes)
    return {"data": data, "layout": layout}


def connectivity_figure(items, height=None) -> dict:
    """View 6: the (T, T) map of ||dy_t/dx_s|| per architecture (Distill-style), one colour scale.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``log10`` (T', T') log10 values (NaN where
        there is no dependence), ``values`` (T', T') raw values, ``ticks`` (T',) the first step
        of each row/column and ``bin`` steps per cell side.
    """
    if not items:
        return message_figure("Pick at least one architecture.", height or 520)
    n = len(items)
    gap = 0.04
    w = (1 - gap * (n - 1)) / n
    lo, hi = _heat_range([it["log10"] for it in items])
    data, layout_axes, annotations = [], {}, []
    for i, it in enumerate(items):
        ax = "" if i == 0 else str(i + 1)
        x0 = i * (w + gap)
        binned = f" (max over {it['bin']}×{it['bin']} steps)" if it["bin"] > 1 else ""
        data.append(dict(
            type="heatmap", x=arr(it["ticks"]), y=arr(it["ticks"]), z=arr(it["log10"], "f4"),
            customdata=arr(it["values"]), coloraxis="coloraxis", name=it["name"], xaxis=f"x{ax}", yaxis=f"y{ax}",
            hovertemplate=f"{it['name']}  output t=%{{y}}, input s=%{{x}}: %{{customdata:.6g}}<extra></extra>"))
        layout_axes[f"xaxis{ax}"] = _axis("input step s", anchor=f"y{ax}", domain=[x0, x0 + w])
        layout_axes[f"yaxis{ax}"] = _axis("output step t" if i == 0 else "", anchor=f"x{ax}", autorange="reversed",
                                          showticklabels=i == 0, matches="y" if i else None)
        if i == 0:
            layout_axes["yaxis"].pop("matches")
        annotations.append(_title(it["name"] + binned, COLORS[it["arch"]], x0 + w / 2, 1.0, "center"))
    layout = base_layout(height=height or {1: 560, 2: 500}.get(n, 460), hovermode="closest",
                         margin=dict(l=70, r=30, t=40, b=60),
                         coloraxis=_coloraxis(lo, hi, "log<sub>10</sub> ‖∂y<sub>t</sub>/∂x<sub>s</sub>‖"),
                         annotations=annotations, **layout_axes)
    return {"data": data, "layout": layout}


# ----------------------------------------------------------------------------- view 4
def spectra_figure(items, height=500) -> dict:
    """View 4: singular values of W_hh (left) and of the one-step Jacobians over time (right).

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``weights`` (n,) singular values of the top
        layer's W_hh (or None), ``threshold`` 1/gamma (or None), ``step_max``/``step_min`` (T,)
        largest and smallest singular value of each one-step Jacobian (or None).
    """
    if not items:
        return message_figure("Pick at least one architecture.", height)
    data, thresholds = [], {}
    right = [it[k] for it in items for k in ("step_max", "step_min") if it.get(k) is not None]
    yrange = log_range(right, top_room=0.4 if _has_special(right) else 0.0) if right else None
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
            t = np.arange(len(it["step_max"]))
            show = it.get("weights") is None
            data.append(_line(t, it["step_max"], f"{name} σ<sub>max</sub>", color, group, width=3, showlegend=show,
                              xaxis="x2", yaxis="y2", meta="step-max", hover=f"{name} σ<sub>max</sub>: %{{y:.6g}}<extra></extra>"))
            data.append(_line(t, it["step_min"], f"{name} σ<sub>min</sub>", color, group, width=2, dash="dot",
                              showlegend=False, xaxis="x2", yaxis="y2", meta="min",
                              hover=f"{name} σ<sub>min</sub>: %{{y:.6g}}<extra></extra>"))
            if yrange:
                data.extend(_special_points(t, it["step_max"], name, color, yrange, group, "x2", "y2"))
    shapes, annotations = [], [_title("singular values of W<sub>hh</sub> (top layer)", "#1a1a1a", 0, 1.0),
                               _title("one-step Jacobians ∂s<sub>t</sub>/∂s<sub>t−1</sub>, sequence 1",
                                      "#1a1a1a", 0.55, 1.0)]
    for value, names in thresholds.items():
        for xref, yref in (("x domain", "y"), ("x2 domain", "y2")):
            shapes.append(dict(type="line", xref=xref, x0=0, x1=1, yref=yref, y0=value, y1=value,
                               line=dict(color=REFERENCE_COLOR, width=2, dash="dot")))
        annotations.append(dict(text=f"1/γ = {value:g}", xref="x domain", x=1, xanchor="right", y=value, yref="y",
                                yanchor="bottom", showarrow=False, font=dict(size=14, color=REFERENCE_COLOR)))
    layout = base_layout(
        height=height, hovermode="closest", margin=dict(l=80, r=30, t=90, b=70),
        legend=dict(orientation="h", yanchor="bottom", y=1.09, xanchor="left", x=0, font=dict(size=17)),
        xaxis=_axis("index i", domain=[0, 0.42], anchor="y"),
        yaxis=_axis("σ<sub>i</sub>", anchor="x", rangemode="tozero"),
        xaxis2=_axis("time step t", domain=[0.55, 1], anchor="y2"),
        yaxis2=_log_axis("σ", yrange, anchor="x2"),
        shapes=shapes, annotations=annotations)
    return {"data": data, "layout": layout}


# ----------------------------------------------------------------------------- view 5
def gates_figure(items, height=480) -> dict:
    """View 5: products of LSTM forget gates / GRU carry gates along time, beside the plain
    RNN's product of step Jacobian norms.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``label`` (what the product is), ``band``,
        ``median``/``min``/``max`` (T,) over the batch, indexed by t.
    """
    if not items:
        return message_figure("Pick at least one architecture.", height)
    arrays = [it[k] for it in items for k in ("median", "min", "max")]
    yrange = log_range(arrays, top_room=0.4 if _has_special(arrays) else 0.0) or [-1, 1]
    data = []
    for it in items:
        color, name, group = COLORS[it["arch"]], f"{it['name']}: {it['label']}", it["arch"]
        t = np.arange(len(it["median"]))
        if it.get("band"):
            data.extend(_band(t, it["min"], it["max"], color, group))
        data.append(_line(t, it["median"], name, color, group))
        data.extend(_special_points(t, it["median"], it["name"], color, yrange, group))
    layout = base_layout(height=height, hovermode="x unified",
                         xaxis=_axis("time step t", hoverformat="d"),
                         yaxis=_log_axis("product from step t to the end", yrange),
                         shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=1, y1=1,
                                      line=dict(color=REFERENCE_COLOR, width=1.5, dash="dot"))])
    return {"data": data, "layout": layout}
