"""Export the current view: its data as CSV and JSON text, and a standalone offline HTML report.

The numbers are the ones the figures draw, from the same payloads (view 1, ||dL/dh_t||, plus the
open tab; each view's ``series`` in :mod:`visualizer.views`), at full float64 precision: CSV cells and
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
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

import core

from . import compute, framing, payloads, views
from .series import Series
from .urlstate import Params, to_query

CSV_COLUMNS = ("view", "arch", "name", "layer", "quantity", "x_name", "x", "y_name", "y", "value")


def shown_views(params: Params) -> list[views.View]:
    """The views the page shows for ``params``: view 1 and the open tab."""
    tab = views.get(params.view)
    return [views.GRAD_NORM] + ([tab] if tab is not None and tab.tab else [])


def _payloads(params: Params) -> tuple[list, list[tuple[views.View, object]]]:
    """(run keys, [(view, payload)]) of the views shown for ``params``; ValueError from the core."""
    keys = [compute.run_key(params, a) for a in params.arch]
    return keys, [(v, views.payload_of(v, keys, params)) for v in shown_views(params)]


def view_series(params: Params) -> list[Series]:
    """Everything the current view draws: view 1 and the open tab (``params.view``).

    Raises ValueError (from the core) for settings that cannot be computed.
    """
    keys, shown = _payloads(params)
    return [s for v, payload in shown for s in v.series(payload, keys)]


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
    shown = {}
    for s in series:
        entry = {"arch": s.arch, "name": s.name, "layer": s.layer, "quantity": s.quantity,
                 "values": compute.strict_floats(s.values)}
        if s.x is not None:
            entry.update(x_name=s.x_name, x=[int(v) for v in s.x])
        if s.y is not None:
            entry.update(y_name=s.y_name, y=[int(v) for v in s.y])
        shown.setdefault(s.view, {"title": views.VIEWS[s.view].title, "series": []})["series"].append(entry)
    doc = {"app": "bpttlab", "version": core.__version__, "query": to_query(params), "params": params.to_dict(),
           "views": shown}
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


# A stepped figure (the step-by-step view) steps with the arrow keys in the report as on the page: the
# report inlines the page's own stepping code (assets/stepview.js) and points it at the figure's div.
STEPVIEW_JS = Path(__file__).resolve().parent.parent / "assets" / "stepview.js"
STEPPED_DIV = "bpttlab-steps"


def _stepped(fig) -> bool:
    """Whether ``fig`` is the step-by-step figure (frames and a "phase" slider)."""
    sliders = fig.layout.sliders
    return bool(fig.frames) and bool(sliders) and sliders[0].name == "phase"


def _step_keys() -> str:
    """The script that lets the arrow keys (shift: a whole phase; Home / End) step the report's stepped figure."""
    code = STEPVIEW_JS.read_text(encoding="utf-8").replace("</", "<\\/")
    install = f"window.dash_clientside.stepview.keys({{graph: {json.dumps(STEPPED_DIV)}}});"
    return (f"<script>{code}</script><script>{install}</script><p class='caption'>Step with the slider, ▶, or the "
            "arrow keys ← → (with shift: a whole phase; Home / End: first / last).</p>")


NONE_MEANS = {"forget_bias": "the initialiser's", "truncate": "none (full BPTT)", "clip": "none (no clipping)"}


def readable_settings(params: Params) -> list[tuple[str, str]]:
    """(field, value as a reader writes it) for every setting: lists joined with commas, None as
    what it means, booleans as yes/no, numbers without float noise."""
    rows = []
    for key, v in params.to_dict().items():
        if isinstance(v, (list, tuple)):
            text = ", ".join(str(x) for x in v) or "none"
        elif v is None:
            text = NONE_MEANS.get(key, "none")
        elif isinstance(v, bool):
            text = "yes" if v else "no"
        elif isinstance(v, float):
            text = f"{v:g}"
        else:
            text = str(v)
        rows.append((key, text))
    return rows


def report_html(params: Params, figs: list[tuple[str, object, str]], series: list[Series],
                banner: list[str] = ()) -> str:
    """A standalone HTML page: settings, ``figs`` as (title, figure dict or ``go.Figure``, caption) with
    plotly.js inlined once, the banner lines, and the data as embedded JSON.

    Opens offline: no script, stylesheet or font is fetched from the network.
    """
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in readable_settings(params))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>bpttlab report</title>"
             f"<style>{REPORT_CSS}</style></head><body>",
             "<h1>bpttlab report</h1>",
             f"<p>bpttlab {html.escape(core.__version__)}. Open the same view in the app with the query "
             f"<code>{html.escape(to_query(params))}</code>.</p>"]
    parts += [f"<p class='banner'>{html.escape(line)}</p>" for line in banner]
    for i, (title, fig, caption) in enumerate(figs):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        fig = go.Figure(fig) if isinstance(fig, dict) else fig  # resolves the template name
        stepped = _stepped(fig)
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), include_mathjax=False,
                                 config=framing.GRAPH_CONFIG, div_id=STEPPED_DIV if stepped else None,
                                 auto_play=False))  # a stepped figure waits for its reader
        if stepped:
            parts.append(_step_keys())
        if caption:
            parts.append(f"<p class='caption'>{html.escape(caption)}</p>")
    parts.append(f"<h2>Settings</h2><table>{rows}</table>")
    data = to_json(series, params).replace("</", "<\\/")
    parts.append(f"<script type='application/json' id='bpttlab-data'>{data}</script>")
    parts.append("<p class='caption'>The numbers behind these plots are embedded in this file as JSON "
                 "(element <code>#bpttlab-data</code>).</p></body></html>")
    return "".join(parts)


def _figures(keys, shown) -> list[tuple[str, object, str]]:
    """(title, figure, caption with the view's note) of each (view, payload) in ``shown``."""
    out = []
    for v, payload in shown:
        note = v.note(keys)
        out.append((v.title, v.figure(payload), f"{v.caption} {note}" if note else v.caption))
    return out


def report(params: Params) -> str:
    """The offline HTML report of the current view (figures, data and the explosion banner)."""
    keys, shown = _payloads(params)
    series = [s for v, payload in shown for s in v.series(payload, keys)]
    banner = payloads.explosion_messages(shown[0][1].flows)  # view 1's flows
    return report_html(params, _figures(keys, shown), series, banner)
