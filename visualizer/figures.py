"""Figure builders: pure functions from computed results to Plotly figures.

A builder returns the figure as the plain dict plotly.js takes (``{"data": [...], "layout":
{...}}``), with numpy arrays sent as base64 typed arrays (exact float64, NaN kept as gaps). That
is what ``dcc.Graph`` needs and costs well under a millisecond; building a validated
``go.Figure`` costs 50-300 ms per figure, more than the app's whole latency budget. Tests wrap
the dicts in ``go.Figure`` to validate them.

One colour per architecture in every view (Okabe-Ito, colourblind-safe). Log axes are absolute
and shared by all traces. Values a log axis cannot draw stay visible, with their value in the
hover: the inf/NaN of a main line in a labelled overflow strip above the plot, its exact zeros
(underflow, or a truncation cut) in a labelled underflow strip under it; other lines' as markers
at the top and bottom of the plot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fmt
from .framing import finish
from .payloads import WHOLE_LABEL
from .plotstyle import (COLORS, LINE_WIDTH, OVERFLOW_AXIS, REFERENCE_COLOR, SYMBOLS, arr, axis, band_traces,
                        base_layout, has_special, line_trace, log_axis, log_range, message_figure, overflow_points,
                        overflow_strip, panel_title, special_points, truncation_shapes)


# ----------------------------------------------------------------------------- grad_norm
VIEW1_MARGIN = dict(l=112, r=30, t=50, b=64)
UNDERFLOW_AXIS = "y3"
UNDERFLOW_ROW = 0.07  # paper height of one row of the underflow strip
TINIEST = float(np.finfo(float).smallest_subnormal)  # below this a float64 is 0


@dataclass(frozen=True)
class Panel:
    """The axes of one log plot and of its strips: ``x``, ``y`` (the log axis), ``over`` (the inf/NaN strip
    above it) and ``under`` (the exact-zeros strip under it)."""

    x: str = "x"
    y: str = "y"
    over: str = OVERFLOW_AXIS
    under: str = UNDERFLOW_AXIS


def _key(axis: str) -> str:
    """The layout key of an axis id: "x2" -> "xaxis2"."""
    return ("xaxis" if axis[0] == "x" else "yaxis") + axis[1:]


def underflow_title(truncate) -> str:
    """The underflow strip's title: what an exact 0 means here."""
    if truncate:
        return "exactly 0 in float64 ▼: cut by truncation (truly 0), or underflow (tiny, not zero)"
    return f"exactly 0 in float64 ▼: underflow, below {fmt.num(TINIEST, 2)} (not zero)"


def underflow_points(x, y, name, color, group, row, truncate, panel=Panel(), why=None) -> list:
    """Markers for the exact zeros of ``y`` in the underflow strip of ``panel`` (its row ``row``): a log
    axis has no 0, and an underflowed gradient is tiny, not zero. ``why`` (hover) overrides what a 0 means."""
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    zero = y == 0
    if not zero.any():
        return []
    why = why or ("cut by truncation or underflow" if truncate else f"underflow: |value| below {fmt.num(TINIEST, 2)}")
    return [dict(type="scatter", x=arr(x[zero]), y=[row] * int(zero.sum()), mode="markers", name=f"{name}: 0",
                 legendgroup=group, showlegend=False, meta="underflow", cliponaxis=False,
                 marker=dict(symbol="triangle-down", size=10, color=color, line=dict(width=1.5, color=color)),
                 xaxis=panel.x, yaxis=panel.under,
                 hovertemplate=f"{name}: <b>0</b> in float64 ({why})<extra></extra>")]


def underflow_strip(rows, colors, truncate, panel=Panel(), title=None) -> tuple[float, dict, list, list]:
    """(top of the strip in paper units, strip axis, shapes, annotations) of an underflow strip
    under the plot of ``panel`` with one row per name in ``rows`` (first at the top), titled ``title``
    (default :func:`underflow_title`)."""
    height = UNDERFLOW_ROW * len(rows) + 0.03
    strip = dict(type="category", domain=[0, height], anchor=panel.x, categoryorder="array",
                 categoryarray=list(reversed(rows)), range=[-0.7, len(rows) - 0.3], fixedrange=True,
                 tickmode="array", tickvals=list(rows),
                 ticktext=[f"<span style='color:{c}'>{r}</span>" for r, c in zip(rows, colors, strict=True)],
                 showgrid=False, zeroline=False, showline=False, ticks="", tickfont=dict(size=14),
                 ticklabelstandoff=14, automargin=False)
    shapes = [dict(type="rect", xref=f"{panel.x} domain", x0=0, x1=1, yref=f"{panel.under} domain", y0=0, y1=1,
                   layer="below", fillcolor="rgba(0,114,178,0.07)", line=dict(width=0))]
    annotations = [dict(text=title or underflow_title(truncate), xref=f"{panel.x} domain", x=1, xanchor="right",
                        yref="paper", y=height,
                        yanchor="bottom", showarrow=False, font=dict(size=14, color="#0b4a75"))]
    return height, strip, shapes, annotations


def grad_norm_figure(flows, truncate=None, height=460) -> dict:
    """``grad_norm``: ||dL/dh_t|| against t, one trace per architecture on one shared absolute log axis.

    Steps where a norm is inf or NaN (an exploded network) are marked in a separate, labelled
    strip above the plot (one row per architecture, hover "inf"/"NaN"), never at a value of the
    log axis; the curve has a gap there. Exact zeros of the top layer (underflow, or a truncation
    cut) are marked in a labelled strip under the plot; a lower layer's at the bottom of the plot.

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
    underflow = [f for f in flows if np.any(f.hidden_grad_norms[-1] == 0)]
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
            if top and f in underflow:
                data.extend(underflow_points(x, y, name, color, f.arch, f.name, truncate))
            else:
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
    if underflow:
        _place_underflow_strip(layout, [f.name for f in underflow], [COLORS[f.arch] for f in underflow], truncate)
    return finish({"data": data, "layout": layout}, "grad_norm", [f.name for f in flows], last,
                  title_room=22 if overflow else 0)


def _place_underflow_strip(layout, rows, colors, truncate=None, panel=Panel(), title=None):
    """Put an underflow strip with ``rows`` under the plot of ``panel`` in ``layout`` (its x axis under
    the strip). Place an overflow strip first: the plot keeps the top of its domain."""
    top, strip, strip_shapes, notes = underflow_strip(rows, colors, truncate, panel, title)
    main = layout[_key(panel.y)]
    main["domain"] = [top + 0.1, main.get("domain", [0, 1])[1]]
    layout[_key(panel.x)]["anchor"] = panel.under
    layout.update({_key(panel.under): strip}, shapes=strip_shapes + layout.get("shapes", []),
                  annotations=notes + layout.get("annotations", []), hoversubplots="axis")


def _zero_points(x, y, name, color, yrange, group, underflow):
    """The exact zeros of a main line: in the underflow strip when it has a row (``underflow``),
    else as markers at the bottom of the plot."""
    if underflow:
        return underflow_points(x, y, name, color, group, name, None)
    return special_points(x, y, name, color, yrange, group, nonfinite=False)


# ----------------------------------------------------------------------------- jacobian
def _add_strips(layout, items, data, lines=(("median", ""),), panel=Panel(), zero_title=None):
    """Mark the inf/NaN steps of each item's ``lines`` (keys, and what to add to the item's name in the
    hover) in an overflow strip above the plot of ``panel`` (as the ``grad_norm`` view does), never at a
    value of the log axis, and give the items with exact zeros in a line a row of the underflow strip
    under it (their markers come from :func:`_zero_points` or :func:`underflow_points`), titled
    ``zero_title``. ``items`` need ``arch``, ``name``, the ``lines`` and optionally ``t`` (the x values;
    default every step)."""
    def having(test):
        return [it for it in items if any(test(np.asarray(it[k], dtype=float)).any() for k, _ in lines)]

    overflow = having(lambda a: ~np.isfinite(a))
    for it in overflow:
        for k, label in lines:
            x = np.asarray(it["t"]) if it.get("t") is not None else np.arange(len(it[k]))
            data.extend(overflow_points(x, it[k], f"{it['name']}{label}", COLORS[it["arch"]], it["arch"],
                                        row=it["name"], xaxis=panel.x, yaxis=panel.over))
    if overflow:
        domain, strip, strip_shapes, notes = overflow_strip(
            [it["name"] for it in overflow], [COLORS[it["arch"]] for it in overflow], panel.over, panel.x)
        main = layout[_key(panel.y)]
        main["domain"] = [main.get("domain", [0, 1])[0], domain[1]]
        layout.update({_key(panel.over): strip}, shapes=strip_shapes + layout.get("shapes", []),
                      annotations=notes + layout.get("annotations", []), hoversubplots="axis")
    zeros = having(lambda a: a == 0)
    if zeros:
        _place_underflow_strip(layout, [it["name"] for it in zeros], [COLORS[it["arch"]] for it in zeros],
                               panel=panel, title=zero_title)
    return layout


def _median_traces(x, it, label, yrange) -> list:
    """An item's min..max band (when ``band``), its median line named ``label`` and markers for its zeros."""
    color, group = COLORS[it["arch"]], it["arch"]
    out = band_traces(x, it["min"], it["max"], color, group) if it.get("band") else []
    out.append(line_trace(x, it["median"], label, color, group))
    out.extend(_zero_points(x, it["median"], it["name"], color, yrange, group, np.any(it["median"] == 0)))
    return out


def _product_figure(items, data, key, xtitle, ytitle, yrange, height) -> dict:
    """The layout the Jacobian and gate views share, finished: steps on x up to the longest item, the
    log y axis, a dotted line at 1, and the strips for items that underflow to 0 or overflow."""
    n = max(len(it["median"]) for it in items)
    layout = base_layout(height=height, hovermode="x unified",
                         xaxis=axis(xtitle, hoverformat="d", range=[0, max(1, n - 1)]),
                         yaxis=log_axis(ytitle, yrange),
                         shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=1, y1=1, layer="below",
                                      line=dict(color=REFERENCE_COLOR, width=1.5, dash="dot"))])
    layout = _add_strips(layout, items, data)
    return finish({"data": data, "layout": layout}, key, [it["name"] for it in items], n,
                  title_room=22 if "yaxis2" in layout else 0)


def _off_scale(ref, yrange) -> str:
    """" (off scale beyond k = ...)" when a reference line leaves the log axis' range, else ""."""
    with np.errstate(all="ignore"):
        out = ~(np.log10(ref) <= yrange[1]) | ~(np.log10(ref) >= yrange[0])
    if not out.any():
        return ""
    return f" (off scale beyond k = {int(np.argmax(out)) - 1})" if out.argmax() > 0 else " (off scale)"


def jacobian_figure(items, height=480) -> dict:
    """``jacobian``: ||ds_{T-1}/ds_t|| against the lag k = T-1-t, log scale.

    The y range is set by the plotted norms alone; a reference line that leaves it is clipped at
    the axes and its legend entry says from which lag on it is off scale. Nothing is drawn over
    the data: rates and references are named in the legend.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``median``/``min``/``max`` (T,) arrays indexed
        by lag, ``band`` (draw min..max), ``rate`` and ``fit`` (the fitted per-step factor and
        curve, or None),
        ``reference`` (T,) the bound (gamma sigma_1)^k or None, ``sigma``, ``rho_reference`` (T,)
        rho(W_hh)^k or None and ``rho``.
    """
    if not items:
        return message_figure("Pick at least one architecture.", height)
    arrays = [it[k] for it in items for k in ("median", "min", "max")]
    yrange = log_range(arrays, top_room=0.4 if has_special(arrays) else 0.0) or [-1, 1]
    data = []
    for it in items:
        color, name, group = COLORS[it["arch"]], it["name"], it["arch"]
        k = np.arange(len(it["median"]))
        data.extend(_median_traces(k, it, name, yrange))
        if it.get("fit") is not None:
            label = f"{name} fit: {fmt.rate(it['rate'])} per step"
            data.append(line_trace(k, it["fit"], label, color, group, width=1.5, dash="dot", meta="fit",
                                   hover=f"{label}: %{{y:.4g}}<extra></extra>"))
        if it.get("reference") is not None:
            ref = np.asarray(it["reference"], dtype=float)
            ref_name = f"{name} bound (γσ₁)<sup>k</sup> = {fmt.num(it['sigma'])}<sup>k</sup>{_off_scale(ref, yrange)}"
            data.append(line_trace(k, ref, ref_name, color, group, width=2, dash="dash", meta="reference",
                                   hover=f"{name} (γσ₁)<sup>k</sup>: %{{y:.4g}}<extra></extra>"))
        if it.get("rho_reference") is not None:
            ref = np.asarray(it["rho_reference"], dtype=float)
            ref_name = (f"{name} ρ(W<sub>hh</sub>)<sup>k</sup> = {fmt.num(it['rho'])}<sup>k</sup>"
                        f"{_off_scale(ref, yrange)}")
            data.append(line_trace(k, ref, ref_name, color, group, width=2, dash="dashdot", meta="rho-reference",
                                   hover=f"{name} ρ<sup>k</sup>: %{{y:.4g}}<extra></extra>"))
    return _product_figure(items, data, "jacobian", "lag k = T−1−t  (steps back from the last step)",
                           "‖∂s<sub>T−1</sub>/∂s<sub>t</sub>‖", yrange, height)


# ----------------------------------------------------------------------------- spectra
SPECTRA_PANEL = Panel(x="x2", y="y2", over="y3", under="y4")  # the right panel, the step Jacobians' log axis
SPECTRA_LINES = (("step_max", " σ<sub>max</sub>"), ("step_min", " σ<sub>min</sub>"))
SPECTRA_ZERO = "exactly 0 in float64 ▼: a singular Jacobian, or underflow"


def spectra_figure(items, height=500) -> dict:
    """``spectra``: singular values of W_hh (left) and of the one-step Jacobians over time (right).

    On the right, as in the other views, steps where a singular value is inf or NaN are marked in a
    labelled strip above the log axis and its exact zeros (a singular Jacobian, or underflow) in a
    labelled strip under it, one row per architecture.

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
    stepped = [it for it in items if it.get("step_max") is not None]
    yrange = log_range([it[k] for it in stepped for k, _ in SPECTRA_LINES])
    for it in items:
        color, name, group = COLORS[it["arch"]], it["name"], it["arch"]
        if it.get("weights") is not None:
            w = np.asarray(it["weights"], dtype=float)
            data.append(dict(type="scatter", x=arr(np.arange(1, w.size + 1)), y=arr(w), name=name, legendgroup=group,
                             meta="main",
                             mode="lines+markers" if w.size <= 64 else "lines", line=dict(color=color, width=3),
                             marker=dict(size=6, color=color, symbol=SYMBOLS[it["arch"]]), xaxis="x", yaxis="y",
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
            for k, label in SPECTRA_LINES:
                data.extend(underflow_points(t, it[k], f"{name}{label}", color, group, name, None, SPECTRA_PANEL,
                                             why="a singular step Jacobian, or underflow"))
    shapes, annotations = [], [  # centred over their panels: long titles never run off the figure's edge
        panel_title("singular values of W<sub>hh</sub> (top layer)", "#1a1a1a", 0.21, 1.0, "center", size=15),
        panel_title("one-step Jacobians ∂s<sub>t</sub>/∂s<sub>t−1</sub>, sequence 1", "#1a1a1a", 0.775, 1.0,
                    "center", size=15)]
    for value, _names in thresholds.items():
        for xref, yref in (("x domain", "y"), ("x2 domain", "y2")):
            shapes.append(dict(type="line", xref=xref, x0=0, x1=1, yref=yref, y0=value, y1=value,
                               line=dict(color=REFERENCE_COLOR, width=2, dash="dot")))
        annotations.append(dict(text=f"1/γ = {value:g}", xref="x domain", x=1, xanchor="right", y=value, yref="y",
                                yanchor="bottom", showarrow=False, font=dict(size=14, color=REFERENCE_COLOR)))
    layout = base_layout(
        height=height, hovermode="closest", margin=dict(l=80, r=30, t=60, b=70),
        xaxis=axis("index i", domain=[0, 0.42], anchor="y"),
        yaxis=axis("σ<sub>i</sub>", anchor="x", rangemode="tozero"),
        xaxis2=axis("time step t", domain=[0.55, 1], anchor="y2"),
        yaxis2=log_axis("σ", yrange, anchor="x2"),
        shapes=shapes, annotations=annotations)
    _add_strips(layout, stepped, data, SPECTRA_LINES, SPECTRA_PANEL, SPECTRA_ZERO)
    if "yaxis3" in layout:  # the panel titles go above the overflow strip's title
        for note in annotations[:2]:
            note["yshift"] = 22
    return finish({"data": data, "layout": layout}, "spectra", [it["name"] for it in items],
                  title_room=50 if "yaxis3" in layout else 28)


# ----------------------------------------------------------------------------- gates
def gates_figure(items, height=480) -> dict:
    """``gates``, like with like from step t to the last: the plain RNN's exact Jacobian product norm
    beside the LSTM's cell path (prod f) and the GRU's carry path (prod z), and dashed, the gated
    networks' whole ||ds_{T-1}/ds_t||.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``label`` (what the product is), ``band``,
        ``median``/``min``/``max`` (T,) over the batch, indexed by t, and ``whole`` (T,) or None.
    """
    if not items:
        return message_figure("Pick at least one architecture.", height)
    arrays = [it[k] for it in items for k in ("median", "min", "max", "whole") if it.get(k) is not None]
    yrange = log_range(arrays, top_room=0.4 if has_special(arrays) else 0.0) or [-1, 1]
    data = []
    for it in items:
        color, name, group = COLORS[it["arch"]], f"{it['name']}: {it['label']}", it["arch"]
        t = np.arange(len(it["median"]))
        data.extend(_median_traces(t, it, name, yrange))
        if it.get("whole") is not None:
            whole = f"{it['name']}: {WHOLE_LABEL}"
            data.append(line_trace(t, it["whole"], whole, color, group, width=2, dash="dash", meta="whole"))
            data.extend(special_points(t, it["whole"], it["name"], color, yrange, group, nonfinite=False))
    return _product_figure(items, data, "gates", "time step t", "from step t to the last step", yrange, height)
