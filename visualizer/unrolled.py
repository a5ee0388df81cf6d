"""The unrolled network stepped through one BPTT iteration: a pure figure builder with Plotly frames.

Top: nodes x_t -> h_t (one lane per layer, the LSTM's cell c_t its own lane) -> y_t -> L_t along time.
Middle: each step's share of dL/dW_hh. Bottom: the (loss step t) x (step s) map of
||dL_t/dW_hh through step s||. All three share the step axis; beyond ``DRAWN`` steps a window
is shown and a second slider moves it.

Every phase is a frame (forward, losses, backward right to left, the sum, the update, the next
forward pass), sent once with the figure: the slider, Play and the page's step buttons move
between frames in the browser, and the same figure steps in the HTML report. Gradients are drawn
on a log scale in whole decades (edge width and colour), the local part on the vertical edge
from above, the carried part on the edge from step t+1.
"""
from __future__ import annotations

import numpy as np

from .plotstyle import COLORS, FONT, GRID, base_layout, rgba
from .stepview import (DRAWN, StepPayload, backward_text, forward_text, fmt, init_text, losses_text, next_text, rms,
                       sum_text, update_text)

DECADES = 7  # gradient colour bins, one per decade below the largest gradient
BIN_COLORS = ["#7f0000", "#b30000", "#d7301f", "#ef6548", "#fc8d59", "#fdbb84", "#fdd49e"]
BIN_WIDTHS = [9, 7.5, 6, 4.5, 3.5, 2.5, 1.8]
NONFINITE = "#ff00ff"
PENDING = "#ffffff"
SKELETON = "#c9ced6"
STEPS_PER_FRAME_MAX = 30  # frames per phase at most (longer sequences advance several steps per frame)


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
    names = [f"[1e{top - k - 1}, 1e{top - k})".replace("-", "−") for k in range(DECADES - 1)]
    names.append(f"< 1e{top - DECADES + 1}".replace("-", "−"))
    return top, names


def bin_of(v: float, top: int) -> int | None:
    """Decade bin of a gradient norm (None: zero; -1: inf/NaN)."""
    if not np.isfinite(v):
        return -1
    if v <= 0:
        return None
    return int(min(DECADES - 1, max(0, top - 1 - np.floor(np.log10(v)))))


# ----------------------------------------------------------------------------- traces
def _segments(items):
    """x, y lists of line segments separated by None."""
    xs, ys = [], []
    for x0, y0, x1, y1 in items:
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return xs, ys


def _node_colors(values, vmax, color, shown):
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


def _texts(values, shown, prefix=""):
    """Node labels: the value where computed (none when too many steps are drawn to fit them)."""
    if min(len(values), DRAWN) > LABELLED:
        return [""] * len(values)
    return [prefix + fmt(v) if on else "" for v, on in zip(values, shown, strict=True)]


def _grad_colors(values, top, shown):
    """Node fills from the gradient decade bins (white before the backward pass reaches them)."""
    out = []
    for v, on in zip(values, shown, strict=True):
        b = bin_of(v, top) if on else None
        out.append(PENDING if not on or b is None else (NONFINITE if b < 0 else BIN_COLORS[b]))
    return out


def _state(p: StepPayload, phase: str, k: int) -> dict:
    """What is known in frame (phase, k): steps forward done, losses, backward reached, update, next forward."""
    T = p.T
    order = ["init", "forward", "losses", "backward", "sum", "update", "next"]
    i = order.index(phase)
    return {"fwd": T if i > 1 else (k + 1 if phase == "forward" else 0),
            "loss": i >= 2,
            "bwd": 0 if i > 3 else (k if phase == "backward" else T),  # steps >= bwd are done
            "sum": i >= 4, "update": i >= 5, "grads": 3 <= i <= 5,
            "next": (k + 1 if phase == "next" else 0)}


def _precompute(p: StepPayload, all_edges, top: int) -> dict:
    """Everything the frames pick from, computed once: the decade bin of every gradient edge, and per node
    lane the colours and labels of the forward pass, of the next forward pass and of the backward pass."""
    w, color = p.walk, COLORS[p.arch]
    edges = []
    for kind, l, t, x0, y0, x1, y1 in all_edges:
        g = edge_gradient(p, kind, l, t)
        b = None if g is None else bin_of(g, top)
        if b is not None:
            edges.append((b, t - 1 if kind in ("rec", "cell") else t, (x0, y0, x1, y1)))
    every = np.ones(p.T, bool)

    def act(values, vmax, col=color):
        return {"colors": _node_colors(values, vmax, col, every), "texts": _texts(values, every)}

    def grad(values):
        return {"colors": _grad_colors(values, top, every), "texts": _texts(values, every)}

    lanes = []
    for l in range(p.L):
        pairs = [(w.h, w.next_h, w.hidden_grad_norms)]
        if p.arch == "lstm":
            pairs.append((w.c, w.next_c, w.cell_grad_norms))
        for before, after, g in pairs:
            vmax = _vmax(before[l], after[l])
            lanes.append({"act": act(rms(before[l]), vmax), "next": act(rms(after[l]), vmax), "grad": grad(g[l])})
    vmax = _vmax(w.outputs, w.next_outputs)
    lanes.append({"act": act(rms(w.outputs), vmax), "next": act(rms(w.next_outputs), vmax), "grad": None})
    lmax = float(np.nanmax(np.where(np.isfinite(w.step_losses), w.step_losses, 0)))
    lanes.append({"act": act(w.step_losses, lmax, "#444444"), "next": act(w.next_step_losses, lmax, "#444444"),
                  "grad": None})
    return {"edges": edges, "lanes": lanes}


def _pick(source: dict, shown) -> dict:
    """A node trace's frame values: ``source``'s colours and labels where ``shown``, blank elsewhere."""
    return {"marker": {"color": [c if on else PENDING for c, on in zip(source["colors"], shown, strict=True)]},
            "text": [t if on else "" for t, on in zip(source["texts"], shown, strict=True)]}


def _dynamic(p: StepPayload, st: dict, pre: dict) -> list[dict]:
    """The traces a frame changes, in a fixed order."""
    w, T = p.walk, p.T
    steps = np.arange(T)
    backward = st["grads"]
    # gradient edges, one trace per decade (+ inf/NaN), only on steps the backward pass has reached
    bins = [[] for _ in range(DECADES + 1)]
    if backward:
        for b, tref, seg in pre["edges"]:
            if tref >= st["bwd"]:
                bins[b].append(seg)
    traces = []
    for segs in bins:
        xs, ys = _segments(segs)
        traces.append({"x": xs, "y": ys})
    # nodes: h (and c) per layer, then y and L
    after = st["next"] > 0
    fwd = steps < (st["next"] if after else st["fwd"])
    reached = steps >= st["bwd"]
    for lane in pre["lanes"][:-2]:
        if backward:
            traces.append(_pick(lane["grad"], reached))
        else:
            traces.append(_pick(lane["next"] if after else lane["act"], fwd))
    out_lane, loss_lane = pre["lanes"][-2:]
    traces.append(_pick(out_lane["next"] if after else out_lane["act"], fwd))
    scored = steps == T - 1 if p.loss_on == "last" else np.ones(T, bool)
    lshown = (fwd if after else np.full(T, st["loss"])) & scored
    traces.append(_pick(loss_lane["next"] if after else loss_lane["act"], lshown))
    # contributions: bars appear as the backward pass reaches each step; the running total follows
    c = w.contributions
    done = reached & backward
    traces.append({"y": np.where(done, c.shares[-1], np.nan).tolist()})
    traces.append({"y": np.where(done, c.running[-1], np.nan).tolist()})
    total = float(c.total[-1])
    traces.append({"y": [total, total] if st["sum"] else [None, None]})
    traces.append({"y": [total * w.clip_scale] * 2 if st["update"] and w.clipped else [None, None]})
    return traces


def _vmax(*arrays) -> float:
    """Largest finite RMS over the arrays (the colour scale of a lane)."""
    v = np.concatenate([np.ravel(rms(a)) for a in arrays])
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else 1.0


def frame_plan(p: StepPayload) -> list[tuple[str, int, str]]:
    """(phase, step, label) of every frame, in order."""
    T = p.T
    per = int(np.ceil(T / STEPS_PER_FRAME_MAX))
    fwd = [min(T - 1, k) for k in range(per - 1, T + per - 1, per)]
    fwd = sorted(set(fwd))
    bwd = sorted({max(0, T - 1 - k) for k in range(0, T + per - 1, per)}, reverse=True)
    plan = [("init", 0, "start")]
    plan += [("forward", t, "forward" if i == 0 else "") for i, t in enumerate(fwd)]
    plan += [("losses", T - 1, "losses")]
    plan += [("backward", s, "backward" if i == 0 else "") for i, s in enumerate(bwd)]
    plan += [("sum", 0, "Σ"), ("update", 0, "update")]
    plan += [("next", t, "next" if i == 0 else "") for i, t in enumerate(fwd)]
    return plan


def frame_text(p: StepPayload, phase: str, k: int) -> str:
    """The explanation of a frame, computed from the data."""
    return {"init": lambda: init_text(p), "forward": lambda: forward_text(p, k), "losses": lambda: losses_text(p),
            "backward": lambda: backward_text(p, k), "sum": lambda: sum_text(p), "update": lambda: update_text(p),
            "next": lambda: next_text(p) if k == p.T - 1 else forward_text(p, k, after=True)}[phase]()


def _window(T: int, focus: int) -> list[float]:
    """x range of the drawn window that keeps step ``focus`` in view."""
    if T <= DRAWN:
        return [-0.6, T - 0.4]
    start = int(min(max(0, focus - DRAWN // 2), T - DRAWN))
    return [start - 0.6, start + DRAWN - 0.4]


def _wrap(text: str, width: int = 100) -> str:
    """Plotly titles do not wrap: break the text into lines of at most ``width`` characters."""
    import textwrap

    return "<br>".join(textwrap.wrap(text, width))


def _hover(p: StepPayload, l: int, lane: str) -> list[str]:
    """Static hover text of a lane's nodes: activations before and after the update, and the gradients."""
    w, out = p.walk, []
    for t in range(p.T):
        if lane == "c":
            v, v2, g = w.c[l, t], w.next_c[l, t], w.cell_grad_norms[l, t]
            grad = f"‖∂L/∂c{_sub_t(t)}‖ = {fmt(g)} (carried along the cell path {fmt(w.cell_carried_norms[l, t])})"
        else:
            v, v2 = w.h[l, t], w.next_h[l, t]
            grad = (f"‖∂L/∂h{_sub_t(t)}‖ = {fmt(w.hidden_grad_norms[l, t])} (local {fmt(w.local_grad_norms[l, t])}"
                    f" + carried {fmt(w.carried_grad_norms[l, t])})")
        units = ", ".join(fmt(u) for u in v[:4])
        out.append(f"{lane}{_sub_t(t)}, layer {l + 1}<br>RMS {fmt(rms(v))} (units 1–{min(4, p.H)}: {units})<br>"
                   f"{grad}<br>after the update: RMS {fmt(rms(v2))}")
    return out


def _sub_t(t: int) -> str:
    return str(t).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def _dynamic_styles(p: StepPayload, ly: dict, names: list[str]) -> list[dict]:
    """Type, position and style of the dynamic traces (same order as :func:`_dynamic`)."""
    T, color = p.T, COLORS[p.arch]
    steps = list(range(T))
    styles = []
    for b in range(DECADES + 1):
        nonfinite = b == DECADES
        styles.append({"type": "scatter", "mode": "lines", "hoverinfo": "skip", "legendgroup": "grad",
                       "name": "inf/NaN" if nonfinite else names[b], "showlegend": True,
                       "legendgrouptitle": {"text": "‖gradient‖ (backward)"} if b == 0 else None,
                       "line": {"color": NONFINITE if nonfinite else BIN_COLORS[b],
                                "width": 6 if nonfinite else BIN_WIDTHS[b]}})
    node = {"type": "scatter", "mode": "markers+text", "showlegend": False, "textposition": "top right",
            "textfont": {"size": 11}, "hoverinfo": "text", "cliponaxis": False}
    for l in range(p.L):
        styles.append({**node, "name": f"h layer {l + 1}", "x": steps, "y": [ly[f"h{l}"]] * T,
                       "marker": {"size": 17, "line": {"color": color, "width": 2}}, "hovertext": _hover(p, l, "h")})
        if p.arch == "lstm":
            styles.append({**node, "name": f"c layer {l + 1}", "x": steps, "y": [ly[f"c{l}"]] * T,
                           "marker": {"size": 13, "symbol": "square", "line": {"color": color, "width": 2}},
                           "hovertext": _hover(p, l, "c")})
    w = p.walk
    styles.append({**node, "name": "y", "x": steps, "y": [ly["y"]] * T, "marker": {"size": 13, "symbol": "diamond",
                   "line": {"color": color, "width": 1.5}},
                   "hovertext": [f"y{_sub_t(t)}: RMS of the readout {fmt(rms(w.outputs[t]))}" for t in steps]})
    styles.append({**node, "name": "L", "x": steps, "y": [ly["L"]] * T,
                   "marker": {"size": 15, "symbol": "square", "line": {"color": "#444444", "width": 1.5}},
                   "hovertext": [f"L{_sub_t(t)} = {fmt(w.step_losses[t])} → {fmt(w.next_step_losses[t])} after the "
                                 "update" for t in steps]})
    share_hover = [f"step {s}: share {fmt(w.contributions.shares[-1, s])}, ‖C{_sub_t(s)}‖ = "
                   f"{fmt(w.contributions.norms[-1, s])}, running total {fmt(w.contributions.running[-1, s])}"
                   for s in steps]
    styles.append({"type": "bar", "x": steps, "name": "step's share ⟨Cₛ,G⟩/‖G‖", "yaxis": "y2", "marker": {
        "color": rgba(color, 0.75)}, "hovertext": share_hover, "hoverinfo": "text", "legendgroup": "dw",
        "legendgrouptitle": {"text": "∂L/∂W_hh"}})
    lo = min(0.0, float(np.nanmin(np.where(np.isfinite(w.contributions.shares[-1]), w.contributions.shares[-1], 0))))
    hi = max([float(v) for v in (*w.contributions.running[-1], *w.contributions.shares[-1]) if np.isfinite(v)] or [1.0])
    styles[-1]["range"] = [lo * 1.15, hi * 1.15 if hi > 0 else 1.0]  # read by step_figure for yaxis2
    styles.append({"type": "scatter", "mode": "lines+markers", "x": steps, "yaxis": "y2", "name": "‖Σₛ′≥ₛ Cₛ′‖ so far",
                   "line": {"color": "#333333", "width": 2}, "marker": {"size": 5}, "legendgroup": "dw",
                   "hoverinfo": "skip"})
    styles.append({"type": "scatter", "mode": "lines", "x": [-0.5, T - 0.5], "yaxis": "y2", "legendgroup": "dw",
                   "name": f"‖∂L/∂W_hh‖ = {fmt(w.contributions.total[-1])}",
                   "line": {"color": "#333333", "width": 2, "dash": "dot"}, "hoverinfo": "name"})
    styles.append({"type": "scatter", "mode": "lines", "x": [-0.5, T - 0.5], "yaxis": "y2", "legendgroup": "dw",
                   "name": f"after clipping ×{fmt(w.clip_scale)}", "showlegend": bool(w.clipped),
                   "line": {"color": "#cc0000", "width": 3, "dash": "dash"}, "hoverinfo": "name"})
    return styles


def _merge(style: dict, values: dict) -> dict:
    """A style dict updated with a frame's values (marker merged)."""
    out = {**style, **{k: v for k, v in values.items() if k != "marker"}}
    if "marker" in values:
        out["marker"] = {**style.get("marker", {}), **values["marker"]}
    return {k: v for k, v in out.items() if v is not None}


def _static(p: StepPayload, ly: dict, all_edges, has_map: bool) -> list[dict]:
    """Skeleton edges, input nodes, truncation cuts and the loss-step map."""
    T, w = p.T, p.walk
    xs, ys = _segments([e[3:] for e in all_edges])
    out = [{"type": "scatter", "mode": "lines", "x": xs, "y": ys, "line": {"color": SKELETON, "width": 1.2},
            "hoverinfo": "skip", "showlegend": False, "name": "edges"},
           {"type": "scatter", "mode": "markers", "x": list(range(T)), "y": [ly["x"]] * T, "name": "x",
            "marker": {"size": 11, "color": "#eeeeee", "line": {"color": "#777777", "width": 1.5}}, "showlegend": False,
            "hovertext": [f"x{_sub_t(t)} = [{', '.join(fmt(v) for v in p.x[t][:4])}]" for t in range(T)],
            "hoverinfo": "text"}]
    cuts = [int(s) for s in w.cut_steps]
    if cuts:
        segs = [(s - 1, ly[f"h{l}"], s, ly[f"h{l}"]) for s in cuts for l in range(p.L)]
        cx, cy = _segments(segs)
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
                                 "thickness": 14}, "showlegend": False, "name": "map"})
    return out


def step_figure(p: StepPayload, height: int = 900) -> dict:
    """The stepped figure of one BPTT iteration (see the module docstring)."""
    ly = lanes(p)
    all_edges = edges(p, ly)
    top, names = decade_bins(p)
    has_map = p.map_norms is not None and len(p.map_rows) > 0
    styles = _dynamic_styles(p, ly, names)
    bar_range = next(s.pop("range") for s in styles if "range" in s)
    plan = frame_plan(p)
    frames, pre = [], _precompute(p, all_edges, top)
    for i, (phase, k, _) in enumerate(plan):
        values = _dynamic(p, _state(p, phase, k), pre)
        for v, st in zip(values, styles, strict=True):  # a frame's trace without its type would become a scatter
            v.update({key: st[key] for key in ("type", "yaxis") if key in st})
        focus = {"init": 0, "losses": p.T - 1, "sum": 0, "update": 0}.get(phase, k)
        frames.append({"name": str(i), "data": values, "traces": list(range(len(values))),
                       "layout": {"title": {"text": _wrap(frame_text(p, phase, k))},
                                  "xaxis": {"range": _window(p.T, focus)}}})
    data = [_merge(s, v) for s, v in zip(styles, frames[0]["data"], strict=True)]
    data += _static(p, ly, all_edges, has_map)
    lane_names = {"x": "x", "y": "y", "L": "loss"}
    ticks = sorted(ly.items(), key=lambda kv: kv[1])
    ticktext = [lane_names[k] if k in lane_names else f"{k[0]}{'' if p.L == 1 else int(k[1:]) + 1}" for k, _ in ticks]
    net, bars = ([0.56, 1.0], [0.36, 0.50]) if has_map else ([0.42, 1.0], [0.0, 0.34])
    anim = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    sliders = [{"name": "phase", "active": 0, "x": 0.08, "len": 0.92, "y": -0.07, "yanchor": "top",
                "pad": {"t": 30}, "currentvalue": {"visible": False}, "font": {"size": 12},
                "steps": [{"method": "animate", "label": label, "args": [[str(i)], anim]}
                          for i, (_, _, label) in enumerate(plan)]}]
    if p.T > DRAWN:
        sliders.append({"name": "window", "active": 0, "x": 0.08, "len": 0.92, "y": -0.19, "yanchor": "top",
                        "pad": {"t": 20}, "currentvalue": {"prefix": "window from step ", "font": {"size": 12}},
                        "font": {"size": 10}, "tickcolor": "white",
                        "steps": [{"method": "relayout", "label": str(s),
                                   "args": [{"xaxis.range": [s - 0.6, s + DRAWN - 0.4]}]}
                                  for s in range(0, p.T - DRAWN + 1)]})
    layout = base_layout(
        height=height, font={"family": FONT, "size": 14, "color": "#1a1a1a"},
        margin={"l": 70, "r": 40, "t": 150, "b": 200 if p.T > DRAWN else 130},
        title={"text": frames[0]["layout"]["title"]["text"], "x": 0.01, "xanchor": "left", "y": 0.985,
               "yanchor": "top", "font": {"size": 15}},
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 12},
                "groupclick": "toggleitem"},
        xaxis={"range": _window(p.T, 0), "anchor": "y3" if has_map else "y2", "title": {"text": "step t"},
               "gridcolor": GRID, "zeroline": False, "dtick": 1 if p.T <= DRAWN else 5},
        yaxis={"domain": net, "range": [-0.5, ly["L"] + 0.6], "tickvals": [v for _, v in ticks],
               "ticktext": ticktext, "showgrid": False, "zeroline": False, "fixedrange": True},
        yaxis2={"domain": bars, "anchor": "x", "range": bar_range, "title": {"text": "∂L/∂W_hh", "font": {"size": 12}},
                "gridcolor": GRID, "zeroline": True, "zerolinecolor": "#999", "fixedrange": True},
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0.0, "y": -0.07, "xanchor": "left",
                      "yanchor": "top", "pad": {"t": 30, "r": 10}, "showactive": False, "buttons": [
                          {"label": "▶", "method": "animate",
                           "args": [None, {"frame": {"duration": 900, "redraw": True}, "transition": {"duration": 0},
                                           "fromcurrent": True, "mode": "immediate"}]},
                          {"label": "❚❚", "method": "animate", "args": [[None], anim]}]}],
        sliders=sliders, uirevision=f"steps-{p.arch}-{p.T}", hovermode="closest", bargap=0.25,
        modebar={"orientation": "v"})
    if has_map:
        layout["yaxis3"] = {"domain": [0.0, 0.28], "anchor": "x",
                            "title": {"text": "loss step t", "font": {"size": 12}}, "gridcolor": GRID,
                            "zeroline": False}
        layout["annotations"] = [{"text": "‖∂Lₜ/∂W_hh through step s‖: which loss (row) reaches which step (column)",
                                  "x": 0, "y": 0.295, "xref": "paper", "yref": "paper", "xanchor": "left",
                                  "yanchor": "bottom", "showarrow": False, "font": {"size": 12}}]
    return {"data": data, "layout": layout, "frames": frames}
