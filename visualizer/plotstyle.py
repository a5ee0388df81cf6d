"""The look shared by every figure, and the pieces the figure builders are made of.

Okabe-Ito colours (colourblind-safe), one per architecture in every view; large fonts for a
projector; numpy arrays sent to plotly.js as base64 typed arrays (exact float64, NaN kept);
absolute log axes labelled in whole decades; markers for the values a log axis cannot draw.
Colour is never the only channel: each architecture also has its own marker symbol on its lines
(greyscale prints, colour-blind viewers, and an LSTM line drawn under a GRU line stay readable).
How a finished figure sits on the page (uirevision, modebar room, presentation mode) is in
:mod:`visualizer.framing`.
"""
from __future__ import annotations

import base64
import html
import math

import numpy as np

COLORS = {"rnn": "#D55E00", "rnn-relu": "#CC79A7", "lstm": "#0072B2", "gru": "#009E73"}
REFERENCE_COLOR = "#555555"
GRID = "#e3e3e3"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
# A second channel per architecture besides colour: its marker symbol (also in the legend).
SYMBOLS = {"rnn": "circle", "rnn-relu": "triangle-up", "lstm": "square", "gru": "diamond"}
GLYPHS = {"rnn": "●", "rnn-relu": "▲", "lstm": "■", "gru": "◆"}  # the symbols as text (controls, info line)
MARKS_PER_LINE = 14  # symbols along a long line (every point is marked when a line has at most 60)
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


def rgba(hex_color: str, alpha: float) -> str:
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
                    traceorder="normal", itemsizing="constant"),
        hoverlabel=dict(font=dict(size=16, family=FONT)),
        paper_bgcolor="white",
        plot_bgcolor="white",
    )
    layout.update(overrides)
    return layout


# Tick labels never overflow the figure (automargin makes room), so plotly.js need not measure
# each label to hide overflowing ones ("hide past div", its default): one forced layout per label
# saved on every redraw.
TICK_OVERFLOW = "allow"


def axis(title, standoff=12, automargin=True, **kw) -> dict:
    """A linear axis with a title and light grid. ``standoff=None`` places the title at plotly's
    default distance and ``automargin=False`` keeps the figure's margins: plotly.js then need not
    measure every tick label on each redraw (the figure's margins must fit the labels)."""
    return dict(title=_title(title, standoff), gridcolor=GRID, zeroline=False, linecolor="#888", showline=True,
                automargin=automargin, ticklabeloverflow=TICK_OVERFLOW, **kw)


def _title(text, standoff) -> dict:
    """An axis title, ``standoff`` pixels from the tick labels (None: plotly's default place)."""
    return dict(text=text) if standoff is None else dict(text=text, standoff=standoff)


def decade_step(span: float, max_labels: int = 9) -> int:
    """Decades between log-axis labels: the smallest of 1, 2, 3, 5, 10, 20, 25, 50, 100, ... that
    keeps at most ``max_labels`` labels over ``span`` decades."""
    for step in (1, 2, 3, 5, 10, 20, 25, 50):
        if span / step <= max_labels:
            return step
    return 100


def log_axis(title, yrange, standoff=12, automargin=True, **kw) -> dict:
    """A log axis with a fixed absolute range and power-of-ten tick labels (``standoff`` and
    ``automargin`` as in :func:`axis`)."""
    axis = dict(type="log", title=_title(title, standoff), exponentformat="power", showexponent="all",
                gridcolor=GRID, zeroline=False, linecolor="#888", showline=True, automargin=automargin,
                ticklabeloverflow=TICK_OVERFLOW, **kw)
    if yrange is not None:
        axis["range"] = list(yrange)
        axis["dtick"] = decade_step(yrange[1] - yrange[0])
    return axis


# Every modebar button a graph of the app can show (framing.GRAPH_CONFIG removes the rest): a figure
# without data removes them all, so no toolbar floats over an empty graph.
MODEBAR_BUTTONS = ("toimage", "zoom", "pan", "select", "lasso", "zoomin", "zoomout", "autoscale", "resetscale",
                   "togglespikelines", "hoverclosest", "hovercompare")


def message_figure(text: str, height=440, width_chars=48) -> dict:
    """An empty figure that shows ``text`` in its middle (no data, errors, nothing selected),
    wrapped at ``width_chars`` characters so it fits a narrow graph; it has no modebar (nothing to
    zoom or save)."""
    lines, line = [], ""
    for word in str(text).split():
        if line and len(line) + 1 + len(word) > width_chars:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return {"data": [], "layout": base_layout(
        height=height, showlegend=False, xaxis=dict(visible=False), yaxis=dict(visible=False),
        uirevision="message", modebar=dict(remove=list(MODEBAR_BUTTONS)),
        annotations=[dict(text="<br>".join(html.escape(x) for x in lines), x=0.5, y=0.5, xref="paper",
                          yref="paper", showarrow=False, font=dict(size=20, color="#444"))])}


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


def has_special(arrays) -> bool:
    """True if any array holds inf/NaN or an exact zero (they need room for markers)."""
    for a in arrays:
        a = np.asarray(a, dtype=float)
        if np.any(~np.isfinite(a)) or np.any(a <= 0):
            return True
    return False


def positive_or_gap(y) -> np.ndarray:
    """``y`` as float64 with zeros, NaN and inf replaced by NaN (gaps on a log axis)."""
    y = np.array(y, dtype=float)
    y[~(np.isfinite(y) & (y > 0))] = np.nan
    return y


def special_points(x, y, name, color, yrange, group, xaxis="x", yaxis="y", nonfinite=True) -> list:
    """Marker traces for inf/NaN (at the top; skipped with ``nonfinite=False``) and exact zeros
    (at the bottom) of ``y``."""
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    traces = []
    bad = ~np.isfinite(y)
    if nonfinite and bad.any():
        traces.append(dict(
            type="scatter", x=arr(x[bad]), y=arr(np.full(int(bad.sum()), 10 ** (yrange[1] - 0.15))),
            mode="markers", name=f"{name}: inf/NaN", legendgroup=group, showlegend=False,
            customdata=nonfinite_labels(y[bad]), marker=dict(symbol="x", size=11, color=color), xaxis=xaxis,
            yaxis=yaxis, hovertemplate=f"{name}: <b>%{{customdata}}</b><extra></extra>"))
    zero = np.isfinite(y) & (y <= 0)
    if zero.any():
        traces.append(dict(
            type="scatter", x=arr(x[zero]), y=arr(np.full(int(zero.sum()), 10 ** (yrange[0] + 0.1))),
            mode="markers", name=f"{name}: exactly 0 (at the bottom)", legendgroup=group, showlegend=True,
            meta="zero", marker=dict(symbol="line-ns-open", size=12, color=color, line=dict(width=2.5, color=color)),
            xaxis=xaxis, yaxis=yaxis, hovertemplate=f"{name}: <b>0</b> (exactly)<extra></extra>"))
    return traces


def nonfinite_labels(y) -> list:
    """'NaN', 'inf' or '-inf' for each (non-finite) value of ``y``."""
    y = np.asarray(y, dtype=float)
    return np.where(np.isnan(y), "NaN", np.where(y > 0, "inf", "-inf")).tolist()


# ----------------------------------------------------------------------------- overflow strip
OVERFLOW_AXIS = "y2"
OVERFLOW_SYMBOLS = {"inf": "triangle-up", "-inf": "triangle-down", "NaN": "x"}
OVERFLOW_ROW = 0.07  # paper height of one row of the strip
OVERFLOW_TITLE = "overflow (no finite value):  ▲ inf   ✕ NaN"


def overflow_points(x, y, name, color, group, row, xaxis="x", yaxis=OVERFLOW_AXIS) -> list:
    """Markers for the inf/NaN values of ``y`` in the overflow strip (axis ``yaxis``, its row ``row``):
    never at a value of the log axis, where they could be read as a number."""
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    bad = ~np.isfinite(y)
    if not bad.any():
        return []
    labels = nonfinite_labels(y[bad])
    return [dict(type="scatter", x=arr(x[bad]), y=[row] * len(labels), mode="markers", name=f"{name}: inf/NaN",
                 legendgroup=group, showlegend=False, meta="overflow", customdata=labels, cliponaxis=False,
                 marker=dict(symbol=[OVERFLOW_SYMBOLS[v] for v in labels], size=10, color=color,
                             line=dict(width=1.5, color=color)),
                 xaxis=xaxis, yaxis=yaxis, hovertemplate=f"{name}: <b>%{{customdata}}</b><extra></extra>")]


def overflow_strip(rows, colors, axis=OVERFLOW_AXIS, xaxis="x") -> tuple[dict, dict, list, list]:
    """(main y-axis domain, strip axis, shapes, annotations) of an overflow strip (axis ``axis``) above
    the plot of ``xaxis`` with one row per name in ``rows`` (first at the top), its tick labels in ``colors``."""
    height = OVERFLOW_ROW * len(rows) + 0.03
    top_of_main = 1 - height - 0.05
    strip = dict(type="category", domain=[1 - height, 1], anchor=xaxis, categoryorder="array",
                 categoryarray=list(reversed(rows)), range=[-0.7, len(rows) - 0.3], fixedrange=True,
                 tickmode="array", tickvals=list(rows),
                 ticktext=[f"<span style='color:{c}'>{r}</span>" for r, c in zip(rows, colors, strict=False)],
                 showgrid=False, zeroline=False, showline=False, ticks="", tickfont=dict(size=14), ticklabelstandoff=14,
                 automargin=False, ticklabeloverflow=TICK_OVERFLOW)
    shapes = [dict(type="rect", xref=f"{xaxis} domain", x0=0, x1=1, yref=f"{axis} domain", y0=0, y1=1, layer="below",
                   fillcolor="rgba(213,94,0,0.07)", line=dict(width=0))]
    annotations = [dict(text=OVERFLOW_TITLE, xref=f"{xaxis} domain", x=1, xanchor="right", yref="paper", y=1,
                        yanchor="bottom", showarrow=False, font=dict(size=14, color="#8a2b00"))]
    return [0, top_of_main], strip, shapes, annotations


def marker_sizes(n, group, every_point=False, size=8.0):
    """Marker sizes along a line of ``n`` points: every point with ``every_point``, else about
    MARKS_PER_LINE evenly spaced marks, offset per architecture so coinciding lines show both."""
    if every_point:
        return np.full(n, size)
    sizes = np.zeros(n)
    step = max(1, math.ceil(n / MARKS_PER_LINE))
    order = list(SYMBOLS)
    phase = (order.index(group) * step) // len(order) if group in SYMBOLS else 0
    sizes[phase::step] = size + 3  # sparse marks a little larger than marks at every point
    return sizes


def line_trace(x, y, name, color, group, width=LINE_WIDTH, dash="solid", markers=False, showlegend=True,
               hover=None, xaxis="x", yaxis="y", meta="main", symbol=None) -> dict:
    """A line trace with its exact value in the hover. ``meta`` tells main traces ("main") from
    references and lower layers (tests and exports select by it). Lines of an architecture
    (``group`` a key of SYMBOLS, or ``symbol`` given) carry its marker symbol along them (at every
    point with ``markers``)."""
    symbol = symbol or SYMBOLS.get(group)
    trace = dict(type="scatter", x=arr(x), y=arr(positive_or_gap(y)), name=name, legendgroup=group, meta=meta,
                 showlegend=showlegend, mode="lines+markers" if markers else "lines",
                 line=dict(color=color, width=width, dash=dash), marker=dict(size=7, color=color),
                 xaxis=xaxis, yaxis=yaxis,
                 hovertemplate=hover or f"{name}: %{{y:.6g}}<extra></extra>")
    if symbol and meta in ("main", "layer", "step-max"):
        n = len(np.asarray(x))
        trace.update(mode="lines+markers", marker=dict(symbol=symbol, color=color, size=arr(marker_sizes(
            n, group, markers, 7.0 if meta == "main" else 5.0)), line=dict(width=0, color=color)))
    return trace


def band_traces(x, lo, hi, color, group, xaxis="x", yaxis="y") -> list:
    """A filled min..max band (two traces) behind a line."""
    common = dict(type="scatter", x=arr(x), mode="lines", line=dict(width=0, color=color), legendgroup=group,
                  showlegend=False, hoverinfo="skip", xaxis=xaxis, yaxis=yaxis)
    return [dict(y=arr(positive_or_gap(hi)), **common),
            dict(y=arr(positive_or_gap(lo)), fill="tonexty", fillcolor=rgba(color, BAND_ALPHA), **common)]


def truncation_shapes(truncate, T) -> list:
    """Dashed vertical lines where truncated BPTT detaches the state (at most 60)."""
    if not truncate or truncate >= T or T // truncate > 60:
        return []
    return [dict(type="line", x0=t - 0.5, x1=t - 0.5, y0=0, y1=1, yref="paper", layer="below",
                 line=dict(color="#888", width=1.5, dash="dash")) for t in range(truncate, T, truncate)]


# ----------------------------------------------------------------------------- heatmaps
def heat_range(arrays):
    """(lo, hi) of the finite values of all arrays (one shared colour scale); (-1, 0) if none."""
    finite = [a[np.isfinite(a)] for a in (np.asarray(x, dtype=float) for x in arrays)]
    finite = [f for f in finite if f.size]
    if not finite:
        return -1.0, 0.0
    lo, hi = min(float(f.min()) for f in finite), max(float(f.max()) for f in finite)
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def coloraxis(lo, hi, title) -> dict:
    """The shared colour scale of a set of heatmaps."""
    return dict(colorscale=HEAT_SCALE, cmin=lo, cmax=hi,
                colorbar=dict(title=dict(text=title, side="right"), thickness=18, len=1.0, y=0.5, yanchor="middle",
                              ticklabeloverflow=TICK_OVERFLOW))


def panel_title(text, color, x, y, xanchor="left", size=17) -> dict:
    """A coloured small-multiple title placed in paper coordinates."""
    return dict(text=f"<b>{text}</b>", x=x, y=y, xref="paper", yref="paper", xanchor=xanchor, yanchor="bottom",
                showarrow=False, font=dict(size=size, color=color))
