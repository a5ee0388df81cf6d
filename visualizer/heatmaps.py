"""Heatmap figures: per-unit gradients over time (view 3) and Distill-style connectivity (view 6).

Small multiples, one per architecture, on one shared colour scale (log10 of the values; the
exact values are in the hover).
"""
from __future__ import annotations

import numpy as np

from .plotstyle import COLORS, arr, axis, base_layout, coloraxis, heat_range, message_figure, panel_title


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
    lo, hi = heat_range([it["log10"] for it in items])
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
        layout_axes[f"xaxis{ax}"] = axis("time step t" if i == n - 1 else "", anchor=f"y{ax}",
                                          matches="x" if i else None, showticklabels=i == n - 1)
        layout_axes[f"yaxis{ax}"] = axis("unit", anchor=f"x{ax}", domain=[max(0.0, y1 - h), y1])
        annotations.append(panel_title(it["name"] + binned, COLORS[it["arch"]], 0, y1))
    for spec in layout_axes.values():
        if spec.get("matches") is None:
            spec.pop("matches", None)
    layout = base_layout(height=height or max(320, 80 + 200 * n), hovermode="closest",
                         margin=dict(l=95, r=30, t=40, b=70),
                         coloraxis=coloraxis(lo, hi, "log<sub>10</sub> |∂L/∂h|"), annotations=annotations,
                         **layout_axes)
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
