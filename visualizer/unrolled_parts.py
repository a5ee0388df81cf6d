"""The pieces of the stepped BPTT figure (:mod:`visualizer.unrolled`): lanes and edges of the unrolled
network, the decade bins that give an edge its width and colour, node colours, hover texts and the
traces that never change between frames. Pure functions of a :class:`visualizer.stepview.StepPayload`.
"""
from __future__ import annotations

import numpy as np

from .plotstyle import COLORS, rgba
from .stepview import DRAWN, StepPayload, fmt, rms
from .stepview import subscript as sub

DECADES = 7  # gradient colour bins, one per decade below the largest gradient
# hot (large) to cold (vanished), every shade visible on white
BIN_COLORS = ["#67000d", "#b2182b", "#d6604d", "#f4a582", "#92c5de", "#4393c3", "#2166ac"]
BIN_WIDTHS = [9, 7.5, 6, 4.5, 3.5, 2.5, 1.8]
NONFINITE = "#ff00ff"
PENDING = "#ffffff"
SKELETON = "#c9ced6"


# ----------------------------------------------------------------------------- geometry
def lanes(p: StepPayload) -> dict:
    """Lane name -> y position: x at the bottom, h (and c) per layer, then y and L."""
    y, out = 0.0, {"x": 0.0}
    for l in range(p.L):
        y += 1.0
        out[f"h{l}"] = y
        if p.arch == "lstm":
            y += 0.7
            out[f"c{l}"] = y
    out["y"] = y + 1.0
    out["L"] = y + 1.8
    return out


def edges(p: StepPayload, ly: dict) -> list[tuple]:
    """Every edge as (kind, layer, t, x0, y0, x1, y1); kind: input, up, rec, cell, out, loss."""
    T, out = p.T, []
    for t in range(T):
        out.append(("input", 0, t, t, ly["x"], t, ly["h0"]))
        for l in range(p.L):
            if l + 1 < p.L:
                out.append(("up", l, t, t, ly[f"h{l}"], t, ly[f"h{l + 1}"]))
            if t > 0:
                out.append(("rec", l, t, t - 1, ly[f"h{l}"], t, ly[f"h{l}"]))
                if p.arch == "lstm":
                    out.append(("cell", l, t, t - 1, ly[f"c{l}"], t, ly[f"c{l}"]))
        out.append(("out", p.L - 1, t, t, ly[f"h{p.L - 1}"], t, ly["y"]))
        out.append(("loss", 0, t, t, ly["y"], t, ly["L"]))
    return out


def edge_gradient(p: StepPayload, kind: str, l: int, t: int) -> float | None:
    """The gradient norm an edge carries backward (None: not a gradient edge).

    rec (h_{t-1} -> h_t): carried into h_{t-1} from step t; up/out: the local gradient arriving at h^l_t
    from the layer above or the readout; cell (c_{t-1} -> c_t): carried into c_{t-1} along the cell path
    from step t; loss: ||dL_t/dy_t|| is not drawn separately (the out edge shows it reaching h_t).
    """
    w = p.walk
    if kind == "rec":
        return float(w.carried_grad_norms[l, t - 1])
    if kind == "up":
        return float(w.local_grad_norms[l, t])
    if kind == "out":
        return float(w.local_grad_norms[p.L - 1, t])
    if kind == "cell":
        return float(w.cell_carried_norms[l, t - 1])
    return None


def decade_bins(p: StepPayload) -> tuple[int, list[str]]:
    """(top decade, legend names): bin k holds gradients in [10^(top-k-1), 10^(top-k))."""
    w = p.walk
    vals = [w.local_grad_norms, w.carried_grad_norms, w.hidden_grad_norms]
    if w.cell_grad_norms is not None:
        vals += [w.cell_grad_norms, w.cell_carried_norms]
    v = np.concatenate([np.ravel(a) for a in vals]).astype(float)
    v = v[np.isfinite(v) & (v > 0)]
    top = int(np.ceil(np.log10(v.max()))) if v.size else 0
    if v.size and 10.0 ** top == v.max():
        top += 1
    names = [f"‖g‖ ∈ [1e{top - k - 1}, 1e{top - k})".replace("-", "−") for k in range(DECADES - 1)]
    names.append(f"‖g‖ < 1e{top - DECADES + 1}".replace("-", "−"))
    return top, names


def bin_of(v: float, top: int) -> int | None:
    """Decade bin of a gradient norm (None: zero; -1: inf/NaN)."""
    if not np.isfinite(v):
        return -1
    if v <= 0:
        return None
    return int(min(DECADES - 1, max(0, top - 1 - np.floor(np.log10(v)))))


# ----------------------------------------------------------------------------- traces
def segments(items):
    """x, y lists of line segments separated by None."""
    xs, ys = [], []
    for x0, y0, x1, y1 in items:
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return xs, ys


def node_colors(values, vmax, color, shown):
    """Fill colours: the architecture colour, more opaque for larger values; white before computed."""
    out = []
    for v, on in zip(values, shown, strict=True):
        if not on:
            out.append(PENDING)
        elif not np.isfinite(v):
            out.append(NONFINITE)
        else:
            out.append(rgba(color, 0.12 + 0.88 * min(1.0, abs(v) / vmax) if vmax > 0 else 0.12))
    return out


LABELLED = 16  # node values are written beside the nodes when at most this many steps are drawn (else: hover)


def texts(values, shown, prefix=""):
    """Node labels: the value where computed (none when too many steps are drawn to fit them)."""
    if min(len(values), DRAWN) > LABELLED:
        return [""] * len(values)
    return [prefix + fmt(v) if on else "" for v, on in zip(values, shown, strict=True)]


def grad_colors(values, top, shown):
    """Node fills from the gradient decade bins (white before the backward pass reaches them)."""
    out = []
    for v, on in zip(values, shown, strict=True):
        b = bin_of(v, top) if on else None
        out.append(PENDING if not on or b is None else (NONFINITE if b < 0 else BIN_COLORS[b]))
    return out


def vmax(*arrays) -> float:
    """Largest finite RMS over the arrays (the colour scale of a lane)."""
    v = np.concatenate([np.ravel(rms(a)) for a in arrays])
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else 1.0


def hover(p: StepPayload, l: int, lane: str) -> list[str]:
    """Static hover text of a lane's nodes: activations before and after the update, and the gradients."""
    w, out = p.walk, []
    for t in range(p.T):
        if lane == "c":
            v, v2, g = w.c[l, t], w.next_c[l, t], w.cell_grad_norms[l, t]
            grad = f"‖∂L/∂c{sub(t)}‖ = {fmt(g)} (carried along the cell path {fmt(w.cell_carried_norms[l, t])})"
        else:
            v, v2 = w.h[l, t], w.next_h[l, t]
            grad = (f"‖∂L/∂h{sub(t)}‖ = ‖local + carried‖ = {fmt(w.hidden_grad_norms[l, t])}, "
                    f"‖local‖ = {fmt(w.local_grad_norms[l, t])}, ‖carried‖ = {fmt(w.carried_grad_norms[l, t])}")
        units = ", ".join(fmt(u) for u in v[:4])
        out.append(f"{lane}{sub(t)}, layer {l + 1}<br>RMS {fmt(rms(v))} (units 1–{min(4, p.H)}: {units})<br>"
                   f"{grad}<br>after the update: RMS {fmt(rms(v2))}")
    return out


def dynamic_styles(p: StepPayload, ly: dict, names: list[str]) -> list[dict]:
    """Type, position and style of the dynamic traces (same order as :func:`_dynamic`)."""
    T, color = p.T, COLORS[p.arch]
    steps = list(range(T))
    styles = []
    for b in range(DECADES + 1):
        nonfinite = b == DECADES
        styles.append({"type": "scatter", "mode": "lines", "hoverinfo": "skip",
                       "name": "inf/NaN" if nonfinite else names[b], "showlegend": True,
                       "line": {"color": NONFINITE if nonfinite else BIN_COLORS[b],
                                "width": 6 if nonfinite else BIN_WIDTHS[b]}})
    node = {"type": "scatter", "mode": "markers+text", "showlegend": False, "textposition": "top right",
            "textfont": {"size": 11}, "hoverinfo": "text", "cliponaxis": False}
    for l in range(p.L):
        styles.append({**node, "name": f"h layer {l + 1}", "x": steps, "y": [ly[f"h{l}"]] * T,
                       "marker": {"size": 17, "line": {"color": color, "width": 2}}, "hovertext": hover(p, l, "h")})
        if p.arch == "lstm":
            styles.append({**node, "name": f"c layer {l + 1}", "x": steps, "y": [ly[f"c{l}"]] * T,
                           "marker": {"size": 13, "symbol": "square", "line": {"color": color, "width": 2}},
                           "hovertext": hover(p, l, "c")})
    w = p.walk
    styles.append({**node, "name": "y", "x": steps, "y": [ly["y"]] * T, "marker": {"size": 13, "symbol": "diamond",
                   "line": {"color": color, "width": 1.5}},
                   "hovertext": [f"y{sub(t)}: RMS of the readout {fmt(rms(w.outputs[t]))}" for t in steps]})
    styles.append({**node, "name": "L", "x": steps, "y": [ly["L"]] * T,
                   "marker": {"size": 15, "symbol": "square", "line": {"color": "#444444", "width": 1.5}},
                   "hovertext": [f"L{sub(t)} = {fmt(w.step_losses[t])} → {fmt(w.next_step_losses[t])} after the "
                                 "update" for t in steps]})
    share_hover = [f"step {s}: share {fmt(w.contributions.shares[-1, s])}, ‖C{sub(s)}‖ = "
                   f"{fmt(w.contributions.norms[-1, s])}, running total {fmt(w.contributions.running[-1, s])}"
                   for s in steps]
    styles.append({"type": "bar", "x": steps, "name": "step's share ⟨Cₛ,G⟩/‖G‖ of ‖∂L/∂W_hh‖", "yaxis": "y2",
                   "marker": {"color": rgba(color, 0.75)}, "hovertext": share_hover, "hoverinfo": "text"})
    lo = min(0.0, float(np.nanmin(np.where(np.isfinite(w.contributions.shares[-1]), w.contributions.shares[-1], 0))))
    hi = max([float(v) for v in (*w.contributions.running[-1], *w.contributions.shares[-1]) if np.isfinite(v)] or [1.0])
    styles[-1]["range"] = [lo * 1.15, hi * 1.15 if hi > 0 else 1.0]  # read by step_figure for yaxis2
    styles.append({"type": "scatter", "mode": "lines+markers", "x": steps, "yaxis": "y2", "name": "‖Σₛ′≥ₛ Cₛ′‖ so far",
                   "line": {"color": "#333333", "width": 2}, "marker": {"size": 5},
                   "hoverinfo": "skip"})
    styles.append({"type": "scatter", "mode": "lines", "x": [-0.5, T - 0.5], "yaxis": "y2",
                   "name": f"‖∂L/∂W_hh‖ = {fmt(w.contributions.total[-1])}",
                   "line": {"color": "#333333", "width": 2, "dash": "dot"}, "hoverinfo": "name"})
    styles.append({"type": "scatter", "mode": "lines", "x": [-0.5, T - 0.5], "yaxis": "y2",
                   "name": f"after clipping ×{fmt(w.clip_scale)}", "showlegend": bool(w.clipped),
                   "line": {"color": "#cc0000", "width": 3, "dash": "dash"}, "hoverinfo": "name"})
    return styles


def merge(style: dict, values: dict) -> dict:
    """A style dict updated with a frame's values (marker merged)."""
    out = {**style, **{k: v for k, v in values.items() if k != "marker"}}
    if "marker" in values:
        out["marker"] = {**style.get("marker", {}), **values["marker"]}
    return {k: v for k, v in out.items() if v is not None}


def static_traces(p: StepPayload, ly: dict, all_edges, has_map: bool) -> list[dict]:
    """Skeleton edges, input nodes, truncation cuts and the loss-step map."""
    T, w = p.T, p.walk
    xs, ys = segments([e[3:] for e in all_edges])
    out = [{"type": "scatter", "mode": "lines", "x": xs, "y": ys, "line": {"color": SKELETON, "width": 1.2},
            "hoverinfo": "skip", "showlegend": False, "name": "edges"},
           {"type": "scatter", "mode": "markers", "x": list(range(T)), "y": [ly["x"]] * T, "name": "x",
            "marker": {"size": 11, "color": "#eeeeee", "line": {"color": "#777777", "width": 1.5}}, "showlegend": False,
            "hovertext": [f"x{sub(t)} = [{', '.join(fmt(v) for v in p.x[t][:4])}]" for t in range(T)],
            "hoverinfo": "text"}]
    cuts = [int(s) for s in w.cut_steps]
    if cuts:
        segs = [(s - 1, ly[f"h{l}"], s, ly[f"h{l}"]) for s in cuts for l in range(p.L)]
        cx, cy = segments(segs)
        out.append({"type": "scatter", "mode": "lines", "x": cx, "y": cy,
                    "name": f"cut by truncation (k = {p.truncate})",
                    "line": {"color": "#cc0000", "width": 2.5, "dash": "dot"}, "hoverinfo": "name"})
        out.append({"type": "scatter", "mode": "text", "x": [s - 0.5 for s in cuts],
                    "y": [ly["h0"] - 0.3] * len(cuts),
                    "text": ["✂"] * len(cuts), "textfont": {"size": 18, "color": "#cc0000"}, "showlegend": False,
                    "hoverinfo": "skip"})
    if has_map:
        z = np.asarray(p.map_norms, float)
        with np.errstate(all="ignore"):
            logz = np.where(z > 0, np.log10(np.where(z > 0, z, 1.0)), np.nan)
        hover = [[f"loss step {t}, via step {s}: {fmt(z[i, s])}" for s in range(T)] for i, t in enumerate(p.map_rows)]
        out.append({"type": "heatmap", "x": list(range(T)), "y": [int(r) for r in p.map_rows],
                    "z": [[None if not np.isfinite(v) else float(v) for v in row] for row in logz],
                    "colorscale": "Viridis", "xaxis": "x", "yaxis": "y3", "hovertext": hover, "hoverinfo": "text",
                    "colorbar": {"title": {"text": "log₁₀", "side": "top"}, "len": 0.26, "y": 0.13,
                                 "thickness": 14, "nticks": 4}, "showlegend": False, "name": "map"})
    return out
