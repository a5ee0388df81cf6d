"""Heatmap figures: the ``heatmap`` view (per-unit gradients over time) and ``connectivity`` (Distill-style).

One map per architecture, on one shared colour scale (log10 of the values; the exact values are
in the hover).
"""
from __future__ import annotations

import numpy as np

from .framing import finish
from .plotstyle import COLORS, arr, axis, base_layout, coloraxis, heat_range, message_figure, panel_title


def unit_ticks(H: int) -> list[int]:
    """Unit numbers labelled on a band of H rows: 1 and the multiples of the smallest power of
    two that gives at most four more."""
    step = 1
    while H / step > 4:
        step *= 2
    return [1] + [u for u in range(step, H + 1, step) if u > 1]


VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
           "#fde725"]
ZERO_COLOR, OVERFLOW_COLOR = "#c8c8c8", "#ff0000"  # exact zeros; inf/NaN: colours Viridis never uses


def _colour_slots(items, title):
    """(z per item, coloraxis): log10 of the values on one shared colour scale; exact zeros and
    inf/NaN get a colour slot of their own below/above it (labelled "0" and "inf/NaN" on the
    colour bar), so every cell of a map has a colour and a hover."""
    lo, hi = heat_range([it["log10"] for it in items])
    zero = any(np.any(it["values"] == 0) for it in items)
    over = any(np.any(~np.isfinite(it["values"])) for it in items)
    slot = 0.05 * (hi - lo)
    cmin, cmax = lo - slot * zero, hi + slot * over
    zs = []
    for it in items:
        z = np.array(it["log10"], dtype=float)
        z[it["values"] == 0] = cmin
        z[~np.isfinite(it["values"])] = cmax
        zs.append(z)
    ca = coloraxis(cmin, cmax, title)
    if zero or over:
        a, b = (lo - cmin) / (cmax - cmin), (hi - cmin) / (cmax - cmin)
        scale = [[a + (b - a) * i / (len(VIRIDIS) - 1), c] for i, c in enumerate(VIRIDIS)]
        if zero:
            scale = [[0, ZERO_COLOR], [a, ZERO_COLOR], [a, VIRIDIS[0]], *scale[1:]]
        if over:
            scale = [*scale[:-1], [b, VIRIDIS[-1]], [b, OVERFLOW_COLOR], [1, OVERFLOW_COLOR]]
        step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500) if (hi - lo) / s <= 7)
        vals = [float(v) + 0.0 for v in np.arange(np.ceil(lo / step) * step, hi + 1e-9, step)]  # no -0
        text = [f"{v:g}".replace("-", "−") for v in vals]
        if zero:
            vals, text = [cmin + slot / 2, *vals], ["0", *text]
        if over:
            vals, text = [*vals, cmax - slot / 2], [*text, "inf/NaN"]
        # plotly.js rejects a scale that does not run exactly from 0 to 1 (and falls back to its
        # default colours): round-off in the slot arithmetic must not leave 0.9999999999999999
        scale = [[min(max(float(p), 0.0), 1.0), c] for p, c in scale]
        scale[0][0], scale[-1][0] = 0.0, 1.0
        ca.update(colorscale=scale)
        ca["colorbar"].update(tickmode="array", tickvals=vals, ticktext=text)
    return zs, ca


def heatmap_figure(items, height=None) -> dict:
    """``heatmap``: |dL/dh_t| per hidden unit, time on x, one band of rows per architecture, one
    colour scale.

    The bands are ONE heatmap on one pair of axes (first architecture at the top, unit 1 at the
    bottom of its band, empty rows between bands): plotly.js redraws one trace and one pair of
    axes on every update instead of one per architecture. The hover names the architecture, the
    unit, the step and the exact value. Exact zeros and inf/NaN have colours of their own.
    (Architectures binned differently over time get one heatmap each on the same axes.)

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``log10`` (T', H) log10 values (NaN for 0/inf),
        ``values`` (T', H) the raw values for the hover, ``t`` (T',) first step of each column
        and ``bin`` the number of steps per column.
    """
    if not items:
        return message_figure("Pick at least one architecture.", height or 440)
    zs, ca = _colour_slots(items, "log₁₀ |∂L/∂h|")
    gap = max(3, round(0.2 * max(it["log10"].shape[1] for it in items)))  # empty rows between bands
    one = all(np.array_equal(it["t"], items[0]["t"]) for it in items)
    data, z, cd, rows, tickvals, ticktext, annotations = [], [], [], [], [], [], []
    for j, (it, zi) in enumerate(zip(reversed(items), reversed(zs), strict=False)):  # bottom band first
        H, T = it["log10"].shape[1], it["log10"].shape[0]
        names = [f"{it['name']} · unit {u}" for u in range(1, H + 1)]
        tickvals += [len(rows) + u - 1 for u in unit_ticks(H)]
        ticktext += [str(u) for u in unit_ticks(H)]
        binned = f" · each column: max over {it['bin']} steps" if it["bin"] > 1 else ""
        annotations.append(dict(text=f"<b>{it['name']}{binned}</b>", x=0, xref="paper", xanchor="left",
                                y=len(rows) + H - 0.5, yref="y", yanchor="bottom", showarrow=False,
                                font=dict(size=17, color=COLORS[it["arch"]])))
        if one:
            z.append(zi.T)
            cd.append(it["values"].T)
        else:
            data.append(_band(it, zi, len(rows)))
        rows += names
        if j < len(items) - 1:
            rows += [f"gap {j}.{g}" for g in range(gap)]  # category names never shown (no tick, no hover)
            if one:
                z.append(np.full((gap, T), np.nan))
                cd.append(np.full((gap, T), np.nan))
    if one:
        data = [dict(type="heatmap", x=arr(items[0]["t"]), y=rows, z=arr(np.vstack(z), "f4"),
                     customdata=arr(np.vstack(cd)), coloraxis="coloraxis", name="|∂L/∂h|", hoverongaps=False,
                     hovertemplate="%{y}, t=%{x}: %{customdata:.6g}<extra></extra>")]
        yaxis = axis("unit", None, False, type="category", tickmode="array", tickvals=[rows[v] for v in tickvals],
                     ticktext=ticktext, showgrid=False)
    else:
        data.reverse()
        yaxis = axis("unit", None, False, tickmode="array", tickvals=tickvals, ticktext=ticktext, showgrid=False,
                     range=[-0.5, len(rows) - 0.5])
    annotations.reverse()
    layout = base_layout(height=height or max(320, 80 + 200 * len(items)), hovermode="closest",
                         margin=dict(l=95, r=30, t=40, b=70), coloraxis=ca, annotations=annotations,
                         xaxis=axis("time step t", None, False, range=_cell_range(items, "t")),
                         yaxis=yaxis)  # fixed margins fit the labels
    if one:
        yaxis.update(categoryorder="array", categoryarray=rows, range=[-0.5, len(rows) - 0.5])
    return finish({"data": data, "layout": layout}, "heatmap", rows, title_room=22)


def _cell_range(items, key, reverse=False) -> list[float]:
    """The axis range that shows every cell of the items' columns (``key``: first step of each)
    whole, and nothing beyond them."""
    lo = min(float(it[key][0]) - it["bin"] / 2 for it in items)
    hi = max(float(it[key][-1]) + it["bin"] / 2 for it in items)
    return [hi, lo] if reverse else [lo, hi]


def _band(it, z, base) -> dict:
    """One architecture's heatmap with its unit 1 at y = ``base`` (numeric rows)."""
    H = z.shape[1]
    units = np.arange(1, H + 1, dtype=float)
    values = it["values"].T  # (H, T')
    return dict(type="heatmap", x=arr(it["t"]), y=arr(base + units - 1), z=arr(z.T, "f4"),
                customdata=arr(np.stack([np.broadcast_to(units[:, None], values.shape), values], axis=-1)),
                coloraxis="coloraxis", name=it["name"], hoverongaps=False,
                hovertemplate=f"{it['name']} · unit %{{customdata[0]}}, t=%{{x}}: "
                              "%{customdata[1]:.6g}<extra></extra>")


def connectivity_figure(items, height=None) -> dict:
    """``connectivity``: the (T, T) map of ||dy_t/dx_s|| per architecture (Distill-style), one colour scale.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``log10`` (T', T') log10 values (NaN where
        there is no dependence), ``values`` (T', T') raw values, ``ticks`` (T',) the first input
        step of each column, ``row_ticks`` (T',) each row's output step (default ``ticks``) and
        ``bin`` input steps per column (and output steps between rows).
    """
    if not items:
        return message_figure("Pick at least one architecture.", height or 520)
    n = len(items)
    gap = 0.04
    w = (1 - gap * (n - 1)) / n
    lo, hi = heat_range([it["log10"] for it in items])
    data, layout_axes, annotations = [], {}, []
    for i, it in enumerate(items):
        ax = "" if i == 0 else str(i + 1)
        x0 = i * (w + gap)
        binned = f" (bins of {it['bin']})" if it["bin"] > 1 else ""
        data.append(dict(
            type="heatmap", x=arr(it["ticks"]), y=arr(it.get("row_ticks", it["ticks"])), z=arr(it["log10"], "f4"),
            customdata=arr(it["values"]), coloraxis="coloraxis", name=it["name"], xaxis=f"x{ax}", yaxis=f"y{ax}",
            hovertemplate=(f"{it['name']}  output t=%{{y}}, input s=%{{x}}"
                           + (f" to s+{it['bin'] - 1} (max)" if it["bin"] > 1 else "")
                           + ": %{customdata:.6g}<extra></extra>")))
        layout_axes[f"xaxis{ax}"] = axis("input step s", anchor=f"y{ax}", domain=[x0, x0 + w],
                                          range=_cell_range([it], "ticks"))
        rows = {"bin": it["bin"], "ticks": it.get("row_ticks", it["ticks"])}
        layout_axes[f"yaxis{ax}"] = axis("output step t" if i == 0 else "", anchor=f"x{ax}",
                                          range=_cell_range([rows], "ticks", reverse=True),
                                          showticklabels=i == 0, matches="y" if i else None)
        if i == 0:
            layout_axes["yaxis"].pop("matches")
        annotations.append(panel_title(it["name"] + binned, COLORS[it["arch"]], x0 + w / 2, 1.0, "center"))
    layout = base_layout(height=height or {1: 560, 2: 500}.get(n, 460), hovermode="closest",
                         margin=dict(l=70, r=30, t=40, b=60),
                         coloraxis=coloraxis(lo, hi, "log<sub>10</sub> ‖∂y<sub>t</sub>/∂x<sub>s</sub>‖"),
                         annotations=annotations, **layout_axes)
    return finish({"data": data, "layout": layout}, "connectivity", [it["name"] for it in items], title_room=26)
