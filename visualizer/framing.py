"""How a finished figure sits on the page: its ``uirevision``, room for the modebar above its
legend and titles, the plotly.js config of every graph, and presentation
mode.

Every figure drawn in a shared graph carries its own ``uirevision`` (:func:`finish`): the view's
key and what sets its axes, so plotly.js keeps a user's zoom while the same axes are redrawn and
never carries one view's axis state into another. :func:`present_figure` scales a finished figure
for a projector (fonts, margins, line widths, markers, height).
"""
from __future__ import annotations

import hashlib
import json
import re

from .plotstyle import arr, decode

# The plotly.js config of every graph (app and HTML report): nothing that talks to a server
# (no "Share chart" button: sendDataToCloud uploads the data to Plotly Cloud), no logo, and only the modebar
# buttons a class uses, so the bar stays clear of legends and panel titles.
GRAPH_CONFIG = {
    "displaylogo": False, "responsive": True, "showSendToCloud": False,
    "modeBarButtonsToRemove": ["sendDataToCloud", "select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d",
                               "toggleSpikelines", "hoverClosestCartesian", "hoverCompareCartesian"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
}
MODEBAR_ROOM = 34  # px at the top of a figure where the modebar sits
LEGEND_ROW = 27  # px per row of a horizontal legend at the base font size
LEGEND_WIDTH = 680  # px a legend may use before it wraps (the narrowest plot area the page gives a view)
_TAGS = re.compile(r"<[^>]+>")


def legend_rows(names, font_size=17, width=LEGEND_WIDTH) -> int:
    """Rows a horizontal legend of ``names`` takes in ``width`` px (an estimate that errs high). A
    legend that does not fit on one row is laid out by plotly.js in columns as wide as its widest
    entry."""
    if not names:
        return 0
    items = [46 + 0.6 * font_size * len(_TAGS.sub("", str(name))) for name in names]
    if sum(items) <= width:
        return 1
    columns = max(1, int(width // max(items)))
    return -(-len(items) // columns)


def legend_names(data) -> list[str]:
    """The entries a figure's legend shows (traces not marked ``showlegend=False``, heatmaps aside)."""
    return [t.get("name", "") for t in data if t.get("showlegend") is not False and t.get("type") != "heatmap"]


def revision(view, layout, *parts) -> str:
    """The ``uirevision`` of a figure: the view's key and a digest of what sets its axes (type,
    range, categories, domains) and of ``parts``. Plotly.js keeps a user's zoom only while this
    stays the same."""
    keys = ("type", "range", "autorange", "categoryarray", "tickvals", "domain", "matches", "anchor")
    axes = {k: {a: v.get(a) for a in keys} for k, v in sorted(layout.items())
            if k.startswith(("xaxis", "yaxis")) and isinstance(v, dict)}
    blob = json.dumps([axes, parts], sort_keys=True, default=str).encode()
    return f"{view}:{hashlib.sha1(blob, usedforsecurity=False).hexdigest()[:12]}"


def finish(fig, view, *parts, title_room=0, legend_room=True) -> dict:
    """Set a figure's ``uirevision`` (see :func:`revision`) and, with ``legend_room``, a top margin
    that holds, from the top down, the modebar, the legend (if any) and ``title_room`` px of panel
    titles: the modebar never sits on a legend or a title. A legend of more than one row makes the
    figure taller by its further rows, so the plot keeps its height. (``legend_room=False``: a figure that
    places its own legend keeps it.)"""
    layout = fig["layout"]
    if not legend_room:
        layout["uirevision"] = revision(view, layout, *parts)
        return fig
    names = legend_names(fig["data"]) if layout.get("showlegend", True) is not False else []
    rows = legend_rows(names)
    margin = dict(layout.get("margin") or {})
    top = margin.get("t", 0)
    margin["t"] = max(top, MODEBAR_ROOM + rows * LEGEND_ROW + title_room + 6)
    layout["margin"] = margin
    if rows:
        # the plot keeps the room it had under a one-row legend: the figure grows by every further row
        one_row = max(top, MODEBAR_ROOM + LEGEND_ROW + title_room + 6)
        height = layout["height"] = (layout.get("height") or 440) + max(0, margin["t"] - one_row)
        layout["legend"] = {**layout.get("legend", {}), "yref": "container", "y": 1 - (MODEBAR_ROOM - 4) / height,
                            "yanchor": "top"}
    layout["uirevision"] = revision(view, layout, *parts)
    return fig


# ----------------------------------------------------------------------------- presentation mode
PRESENT_SCALE = 1.4  # fonts, margins, line widths and markers in presentation mode


def _scaled(value, factor):
    """A number, a list of numbers or a typed-array spec scaled by ``factor``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value * factor
    if isinstance(value, dict) and "bdata" in value:
        return arr(decode(value) * factor, value.get("dtype", "f8"))
    if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
        return [v * factor for v in value]
    return value


# px lengths that grow with the text beside them: an axis's labels and title from its line, a colour bar's
# width, the gap between legend groups, an annotation's offset (spectra's panel titles above a strip's title)
PX_LENGTHS = ("ticklabelstandoff", "standoff", "thickness", "tracegroupgap", "xshift", "yshift")
PX_INTEGERS = ("ticklabelstandoff",)  # plotly.js drops a fractional value (to 0: tick labels on the axis line)


def _scale_fonts(node, factor):
    """Scale every ``size`` under a ``font``/``tickfont``/``hoverlabel`` and the PX_LENGTHS, in place."""
    if isinstance(node, list):
        for item in node:
            _scale_fonts(item, factor)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("font", "tickfont", "titlefont") and isinstance(value, dict) and "size" in value:
            value["size"] = _scaled(value["size"], factor)
        if key in PX_LENGTHS and isinstance(value, (int, float)) and not isinstance(value, bool):
            node[key] = round(value * factor) if key in PX_INTEGERS else _scaled(value, factor)
        _scale_fonts(value, factor)


def present_figure(fig, factor=PRESENT_SCALE) -> dict:
    """A copy of ``fig`` for presentation mode: fonts, tick labels, legends, hover text, margins, the
    PX_LENGTHS, line widths, markers and the figure's height (and least height, ``layout.meta.min_height``)
    ``factor`` times larger."""
    fig = json.loads(json.dumps(fig))
    layout = fig.setdefault("layout", {})
    layout.setdefault("font", {}).setdefault("size", 17)
    layout.setdefault("hoverlabel", {}).setdefault("font", {}).setdefault("size", 16)
    layout.setdefault("legend", {}).setdefault("font", {}).setdefault("size", 17)
    _scale_fonts(layout, factor)
    margin = layout.get("margin") or {}
    layout["margin"] = {k: (_scaled(v, factor) if k in "lrtb" else v) for k, v in margin.items()}
    if isinstance(layout.get("height"), (int, float)):  # the plot area keeps its share of the figure
        layout["height"] = round(layout["height"] * factor)
    meta = layout.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("min_height"), (int, float)):  # see visualizer.unrolled
        meta["min_height"] = round(meta["min_height"] * factor)
    for trace in fig.get("data", []):
        line, marker = trace.get("line"), trace.get("marker")
        if isinstance(line, dict) and "width" in line:
            line["width"] = _scaled(line["width"], factor)
        if isinstance(marker, dict):
            for key in ("size",):
                if key in marker:
                    marker[key] = _scaled(marker[key], factor)
            if isinstance(marker.get("line"), dict) and "width" in marker["line"]:
                marker["line"]["width"] = _scaled(marker["line"]["width"], factor)
        _scale_fonts(trace, factor)
    for shape in layout.get("shapes", []):
        if isinstance(shape.get("line"), dict) and "width" in shape["line"]:
            shape["line"]["width"] = _scaled(shape["line"]["width"], factor)
    return fig
