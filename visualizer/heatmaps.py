"""Heatmap figures: per-unit gradients over time (view 3) and Distill-style connectivity (view 6).

One map per architecture, on one shared colour scale (log10 of the values; the exact values are
in the hover).
"""
from __future__ import annotations

import numpy as np

from .plotstyle import COLORS, arr, axis, base_layout, coloraxis, heat_range, message_figure, panel_title


def unit_ticks(H: int) -> list[int]:
    """Unit numbers labelled on a band of H rows: 1 and the multiples of the smallest power of
    two that gives at most four more."""
    step = 1
    while H / step > 4:
        step *= 2
    return [1] + [u for u in range(step, H + 1, step) if u > 1]


def heatmap_figure(items, height=None) -> dict:
    """View 3: |dL/dh_t| per hidden unit, time on x, one band of rows per architecture, one
    colour scale.

    The bands share ONE pair of axes (first architecture at the top, unit 1 at the bottom of its
    band, empty rows between bands): plotly.js redraws one pair of axes instead of one per
    architecture on every update. The hover names the architecture, the step, the unit and the
    exact value.

    Parameters
    ----------
    items : list of dicts with ``arch``, ``name``, ``log10`` (T', H) log10 values (NaN for 0/inf),
        ``values`` (T', H) the raw values for the hover, ``t`` (T',) first step of each column
        and ``bin`` the number of steps per column.
    """
    if not items:
        return message_figure("Pick at least one architecture.", height or 440)
    n = len(items)
    lo, hi = heat_range([it["log10"] for it in items])
    gap = max(3, round(0.2 * max(it["log10"].shape[1] for it in items)))  # empty rows between bands
    data, tickvals, ticktext, annotations = [], [], [], []
    base = 0  # y of unit 1 of the band being placed, bottom band first
    for it in reversed(items):
        H = it["log10"].shape[1]
        units = np.arange(1, H + 1, dtype=float)
        values = it["values"].T  # (H, T')
        binned = f" · each column: max over {it['bin']} steps" if it["bin"] > 1 else ""
        data.append(dict(
            type="heatmap", x=arr(it["t"]), y=arr(base + units - 1), z=arr(it["log10"].T, "f4"),
            customdata=arr(np.stack([np.broadcast_to(units[:, None], values.shape), values], axis=-1)),
            coloraxis="coloraxis", name=it["name"],
            hovertemplate=f"{it['name']}  t=%{{x}}, unit %{{customdata[0]}}: %{{customdata[1]:.6g}}<extra></extra>"))
        ticks = unit_ticks(H)
        tickvals += [base + u - 1 for u in ticks]
        ticktext += [str(u) for u in ticks]
        annotations.append(dict(text=f"<b>{it['name']}{binned}</b>", x=0, xref="paper", xanchor="left",
                                y=base + H - 0.5, yref="y", yanchor="bottom", showarrow=False,
                                font=dict(size=17, color=COLORS[it["arch"]])))
        base += H + gap
    data.reverse()
    annotations.reverse()
    layout = base_layout(height=height or max(320, 80 + 200 * n), hovermode="closest",
                         margin=dict(l=95, r=30, t=40, b=70),
                         coloraxis=coloraxis(lo, hi, "log<sub>10</sub> |∂L/∂h|"), annotations=annotations,
                         xaxis=axis("time step t"),
                         yaxis=axis("unit", tickmode="array", tickvals=tickvals, ticktext=ticktext,
                                    range=[-0.5, base - gap - 0.5], showgrid=False))
    return {"data": data, "layout": layout}


def connectivity_figure(items, height=None) -> dict:
    """View 6: the (T, T) map of ||dy_t/dx_s|| per architecture (Distill-style), one colour scale.

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
        layout_axes[f"xaxis{ax}"] = axis("input step s", anchor=f"y{ax}", domain=[x0, x0 + w])
        layout_axes[f"yaxis{ax}"] = axis("output step t" if i == 0 else "", anchor=f"x{ax}", autorange="reversed",
                                          showticklabels=i == 0, matches="y" if i else None)
        if i == 0:
            layout_axes["yaxis"].pop("matches")
        annotations.append(panel_title(it["name"] + binned, COLORS[it["arch"]], x0 + w / 2, 1.0, "center"))
    layout = base_layout(height=height or {1: 560, 2: 500}.get(n, 460), hovermode="closest",
                         margin=dict(l=70, r=30, t=40, b=60),
                         coloraxis=coloraxis(lo, hi, "log<sub>10</sub> ‖∂y<sub>t</sub>/∂x<sub>s</sub>‖"),
                         annotations=annotations, **layout_axes)
    return {"data": data, "layout": layout}
