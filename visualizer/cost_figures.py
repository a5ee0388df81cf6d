"""The "Cost" view's figure: a pure function of :class:`visualizer.cost.CostPayload`.

Top row: memory held and time per gradient against T (log-log) for each method, measured points
solid with markers, the rest of a curve (where measuring it would exceed the request's time
share) dashed from the method's cost model; grey dotted growth laws O(T), O(√T), O(1).
Bottom row, per architecture: relative error and cosine similarity of the truncated gradient
against the full one for windows k, and the frontier of memory against gradient error, where the
exact methods sit at rounding level.
"""
from __future__ import annotations

import numpy as np

from .framing import finish
from .plotstyle import (COLORS, REFERENCE_COLOR, arr, axis, base_layout, line_trace, log_axis, log_range,
                        message_figure, panel_title)

METHOD_COLORS = {"bptt": "#1a1a1a", "window": "#E69F00", "sqrt": "#56B4E9", "budget": "#7E57C2", "rtrl": "#A6761D"}
EXACT_SYMBOLS = {"budget": "diamond", "sqrt": "square", "rtrl": "star"}
MIB = 2.0**20
ROW1, ROW2 = [0.6, 1.0], [0.0, 0.4]
COLS2 = ([0.0, 0.27], [0.365, 0.635], [0.73, 1.0])


def _method_traces(curve, quantity, xaxis, yaxis, scale=1.0, legend=True) -> list:
    """Measured points (solid, markers) and the cost-model continuation (dashed) of one method."""
    color, name = METHOD_COLORS[curve.method], curve.label
    T = np.asarray(curve.T, float)
    y = np.asarray(getattr(curve, quantity), float) / scale
    ok = np.asarray(curve.measured, bool)
    unit = "MiB" if quantity == "memory" else "s"
    out = []
    if ok.any():
        out.append(line_trace(T[ok], y[ok], name, color, curve.method, width=3, markers=True, showlegend=legend,
                              xaxis=xaxis, yaxis=yaxis, meta="measured",
                              hover=f"{name}, T=%{{x}}: %{{y:.4g}} {unit} (measured)<extra></extra>"))
    if (~ok).any():
        last = int(np.flatnonzero(ok)[-1]) if ok.any() else None
        idx = np.flatnonzero(~ok) if last is None else np.concatenate([[last], np.flatnonzero(~ok)])
        out.append(line_trace(T[idx], y[idx], f"{name} (cost model)", color, curve.method, width=2.5, dash="dash",
                              showlegend=False, xaxis=xaxis, yaxis=yaxis, meta="model",
                              hover=f"{name}, T=%{{x}}: %{{y:.4g}} {unit} (cost model, not measured)<extra></extra>"))
    return out


def _reference(T, anchor_T, anchor_y, power, label, xaxis, yaxis) -> tuple[dict, dict]:
    """A grey dotted growth law y = anchor_y (T / anchor_T)^power and its label at the right end."""
    T = np.asarray(T, float)
    y = anchor_y * (T / anchor_T) ** power
    trace = dict(type="scatter", x=arr(T), y=arr(y), mode="lines", showlegend=False, hoverinfo="skip",
                 line=dict(color=REFERENCE_COLOR, width=1.5, dash="dot"), xaxis=xaxis, yaxis=yaxis, meta="reference",
                 name=label)
    note = dict(text=label, x=float(np.log10(T[-1])), y=float(np.log10(y[-1])), xref=xaxis, yref=yaxis,
                xanchor="right", yanchor="bottom", showarrow=False, font=dict(size=13, color=REFERENCE_COLOR))
    return trace, note


def cost_figure(payload, height=900) -> dict:
    """The Cost view (see the module docstring); ``payload`` is a :class:`visualizer.cost.CostPayload`."""
    if payload is None or not payload.tradeoffs:
        return message_figure("Pick at least one architecture.", height)
    sweep, data, notes = payload.sweep, [], []
    curves = {c.method: c for c in sweep.curves}
    T = np.asarray(sweep.curves[0].T, float)
    for c in sweep.curves:
        data += _method_traces(c, "memory", "x", "y", MIB)
        data += _method_traces(c, "seconds", "x2", "y2", legend=False)
    mem_range = log_range([c.memory / MIB for c in sweep.curves], pad=0.3)
    sec_range = log_range([c.seconds for c in sweep.curves], pad=0.3)
    full, sq, bud = curves["bptt"], curves["sqrt"], curves["budget"]
    for anchor, power, label in ((full, 1.0, "O(T)"), (sq, 0.5, "O(√T)"), (bud, 0.0, "O(1)")):
        tr, note = _reference(T, T[-1], anchor.memory[-1] / MIB * 1.6, power, label, "x", "y")
        data.append(tr), notes.append(note)
    ok = np.flatnonzero(full.measured)
    if ok.size:
        tr, note = _reference(T, T[ok[-1]], full.seconds[ok[-1]] / 1.6, 1.0, "O(T)", "x2", "y2")
        data.append(tr), notes.append(note)
    data.append(dict(type="scatter", x=[None], y=[None], mode="lines", name="cost model (not measured)",
                     line=dict(color="#777", dash="dash", width=2.5), xaxis="x", yaxis="y", meta="legend"))
    # bottom row: what truncation gives up, per architecture
    errs = [t.rel_error for t in payload.tradeoffs] + [np.array([e[3] for e in t.exact]) for t in payload.tradeoffs]
    floor = min([1e-17] + [float(np.min(e[e > 0])) / 3 for e in errs if np.any(e > 0)])
    err_range = log_range([*errs, np.array([floor, 1.0])], pad=0.2)
    bottom = 10 ** (err_range[0] + 0.1)
    for t in payload.tradeoffs:
        color, group = COLORS[t.arch], t.arch
        ks = np.asarray(t.windows, float)
        err = np.where(np.asarray(t.rel_error) == 0, bottom, t.rel_error)  # exactly 0 at the bottom; NaN a gap
        data.append(dict(type="scatter", x=arr(ks), y=arr(err), name=t.name, legendgroup=group, meta="rel-error",
                         mode="lines+markers", line=dict(color=color, width=3), marker=dict(size=8, color=color),
                         customdata=arr(np.asarray(t.rel_error, float)), xaxis="x3", yaxis="y3",
                         hovertemplate=f"{t.name}, k=%{{x}}: relative error %{{customdata:.3g}}<extra></extra>"))
        data.append(line_trace(ks, t.cosine, t.name, color, group, width=3, markers=True, showlegend=False,
                               xaxis="x4", yaxis="y4", meta="cosine",
                               hover=f"{t.name}, k=%{{x}}: cosine %{{y:.6f}}<extra></extra>"))
        data.append(dict(type="scatter", x=arr(np.asarray(t.window_memory, float) / MIB), y=arr(err),
                         mode="lines+markers", line=dict(color=color, width=2), marker=dict(size=7, color=color),
                         name=t.name, legendgroup=group, showlegend=False, xaxis="x5", yaxis="y5", meta="frontier",
                         customdata=arr(ks), hovertemplate=(f"{t.name}, truncated k=%{{customdata}}: %{{x:.4g}} MiB, "
                                                            "relative error %{y:.3g}<extra></extra>")))
        data.append(dict(type="scatter", x=[t.full_memory / MIB], y=[bottom], mode="markers", name="full BPTT",
                         legendgroup="bptt", showlegend=False, xaxis="x5", yaxis="y5", meta="frontier-full",
                         marker=dict(symbol="circle-open", size=13, color=color, line=dict(width=2.5)),
                         hovertemplate=f"{t.name} full BPTT: %{{x:.4g}} MiB, the reference (error 0)<extra></extra>"))
        for method, label, mem, e, how in t.exact:
            if not np.isfinite(e):
                continue  # no finite reference gradient: nothing to place
            ye = e if e > 0 else bottom
            data.append(dict(type="scatter", x=[mem / MIB], y=[ye], mode="markers", name=label, legendgroup=method,
                             showlegend=False, xaxis="x5", yaxis="y5", meta="frontier-exact",
                             marker=dict(symbol=EXACT_SYMBOLS[method], size=13, color=color,
                                         line=dict(width=1, color="#1a1a1a")),
                             hovertemplate=(f"{t.name} {label}: %{{x:.4g}} MiB, relative error {e:.2g} "
                                            f"({how})<extra></extra>")))
    for method, symbol in EXACT_SYMBOLS.items():  # one legend entry per exact method's marker
        data.append(dict(type="scatter", x=[None], y=[None], mode="markers", name=_exact_label(payload, method),
                         marker=dict(symbol=symbol, size=12, color="#888", line=dict(width=1, color="#1a1a1a")),
                         xaxis="x5", yaxis="y5", meta="legend", legendgroup=method))
    mem5 = log_range([t.window_memory / MIB for t in payload.tradeoffs]
                     + [np.array([e[2] / MIB for e in t.exact] + [t.full_memory / MIB]) for t in payload.tradeoffs])
    kmax = max(int(t.T) for t in payload.tradeoffs)
    annotations = [
        *notes,
        panel_title(f"memory held ({sweep.name}, B={sweep.key.batch}, H={sweep.key.hidden})", "#1a1a1a", 0, 1.0),
        panel_title("time per gradient", "#1a1a1a", 0.55, 1.0),
        panel_title("relative error of truncated ∇", "#1a1a1a", COLS2[0][0], ROW2[1] + 0.05),
        panel_title("cosine(truncated ∇, full ∇)", "#1a1a1a", COLS2[1][0], ROW2[1] + 0.05),
        panel_title("memory against gradient error", "#1a1a1a", COLS2[2][0], ROW2[1] + 0.05)]
    shapes = [dict(type="line", xref=xr, x0=payload.T_app, x1=payload.T_app, yref=f"{yr} domain", y0=0, y1=1,
                   line=dict(color=REFERENCE_COLOR, width=1.5, dash="dashdot"), layer="below")
              for xr, yr in (("x", "y"), ("x2", "y2"))]
    annotations.append(dict(text=f"T={payload.T_app} (this page)", x=float(np.log10(payload.T_app)), xref="x",
                            y=1, yref="y domain", xanchor="left", yanchor="top", showarrow=False,
                            font=dict(size=13, color=REFERENCE_COLOR)))
    layout = base_layout(
        height=height, hovermode="closest", margin=dict(l=80, r=40, t=110, b=70), shapes=shapes,
        legend=dict(orientation="h", yanchor="bottom", y=1.06, xanchor="left", x=0, font=dict(size=15)),
        xaxis=log_axis("sequence length T", log_range([T], pad=0.1), domain=[0, 0.45], anchor="y"),
        yaxis=log_axis("MiB", mem_range, anchor="x", domain=ROW1),
        xaxis2=log_axis("sequence length T", log_range([T], pad=0.1), domain=[0.55, 1], anchor="y2"),
        yaxis2=log_axis("seconds", sec_range, anchor="x2", domain=ROW1),
        xaxis3=log_axis("window k", log_range([np.array([1, kmax])], pad=0.1), domain=COLS2[0], anchor="y3"),
        yaxis3=log_axis("‖g<sub>k</sub> − g‖ / ‖g‖", err_range, anchor="x3", domain=ROW2),
        xaxis4=log_axis("window k", log_range([np.array([1, kmax])], pad=0.1), domain=COLS2[1], anchor="y4"),
        yaxis4=axis("cosine", anchor="x4", domain=ROW2),
        xaxis5=log_axis("MiB held", mem5, domain=COLS2[2], anchor="y5"),
        yaxis5=log_axis("relative error", err_range, anchor="x5", domain=ROW2),
        annotations=annotations)
    return finish({"data": data, "layout": layout}, "cost", legend_room=False)  # its legend has a place of its own


def _exact_label(payload, method) -> str:
    """Legend text of an exact method's marker, from the first architecture's entry."""
    for _m, label, *_ in (e for e in payload.tradeoffs[0].exact if e[0] == method):
        return label + " (exact)"
    return {"budget": "checkpoint (exact)", "sqrt": "√T segments (exact)", "rtrl": "RTRL (exact)"}[method]

