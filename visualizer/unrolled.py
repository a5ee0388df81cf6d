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

from .plotstyle import FONT, GRID, base_layout
from .stepview import (DRAWN, StepPayload, backward_text, forward_text, init_text, losses_text, next_text, rms,
                       sum_text, top_layer, update_text)
from .unrolled_parts import (COLORS, DECADES, PENDING, bin_of, decade_bins, dynamic_styles,
                             edge_gradient, edges, grad_colors, lanes, merge, node_colors, segments, static_traces,
                             texts, vmax)

STEPS_PER_FRAME_MAX = 30  # frames per phase at most (longer sequences advance several steps per frame)
# The smallest plot area that stays readable when the page fits the figure to a short window (px at the built scale)
LANE_MIN = 34  # per lane unit of the network (x, h, c, y and L one unit or less apart)
BARS_MIN = 48  # the bars of dL/dW_hh, room for their axis title
MAP_MIN = 96  # the loss-step map
MAP_DOMAIN = [0.0, 0.28]
MARGIN_LEFT = 106  # the lane names and axis titles, and under them the ▶ / ❚❚ buttons (about 85 px wide)


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
    gradient_edges = []
    for kind, l, t, x0, y0, x1, y1 in all_edges:
        g = edge_gradient(p, kind, l, t)
        b = None if g is None else bin_of(g, top)
        if b is not None:
            gradient_edges.append((b, t - 1 if kind in ("rec", "cell") else t, (x0, y0, x1, y1)))
    every = np.ones(p.T, bool)

    def act(values, vmax, col=color):
        return {"colors": node_colors(values, vmax, col, every), "texts": texts(values, every)}

    def grad(values):
        return {"colors": grad_colors(values, top, every), "texts": texts(values, every)}

    node_lanes = []
    for l in range(p.L):
        pairs = [(w.h, w.next_h, w.hidden_grad_norms)]
        if p.arch == "lstm":
            pairs.append((w.c, w.next_c, w.cell_grad_norms))
        for before, after, g in pairs:
            top_value = vmax(before[l], after[l])
            node_lanes.append({"act": act(rms(before[l]), top_value), "next": act(rms(after[l]), top_value),
                               "grad": grad(g[l])})
    top_value = vmax(w.outputs, w.next_outputs)
    node_lanes.append({"act": act(rms(w.outputs), top_value), "next": act(rms(w.next_outputs), top_value),
                       "grad": None})
    lmax = float(np.nanmax(np.where(np.isfinite(w.step_losses), w.step_losses, 0)))
    node_lanes.append({"act": act(w.step_losses, lmax, "#444444"), "next": act(w.next_step_losses, lmax, "#444444"),
                       "grad": None})
    return {"edges": gradient_edges, "lanes": node_lanes}


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
        xs, ys = segments(segs)
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
    # the total and the clipped total enter the legend when they are drawn (no spoiler before the sum)
    traces.append({"y": [total, total] if st["sum"] else [None, None], "showlegend": st["sum"]})
    clipped = st["update"] and w.clipped
    traces.append({"y": [total * w.clip_scale] * 2 if clipped else [None, None], "showlegend": clipped})
    return traces


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


def min_height(margin: dict, domains: dict, lane_units: float) -> int:
    """The smallest height (px) the figure may be fitted to (assets/stepview.js, presentation mode): its margins
    and a plot area in which the network (``domains["net"]``, ``lane_units`` lane units high), the bars and the
    map (if drawn) each keep their least readable height (LANE_MIN per lane unit, BARS_MIN, MAP_MIN)."""
    least = {"net": LANE_MIN * lane_units, "bars": BARS_MIN, "map": MAP_MIN}
    plot = max(least[k] / (d[1] - d[0]) for k, d in domains.items())
    return int(np.ceil(margin["t"] + margin["b"] + plot))


def step_figure(p: StepPayload, height: int = 900) -> dict:
    """The stepped figure of one BPTT iteration (see the module docstring)."""
    ly = lanes(p)
    all_edges = edges(p, ly)
    top, names = decade_bins(p)
    has_map = p.map_norms is not None and len(p.map_rows) > 0
    styles = dynamic_styles(p, ly, names)
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
    data = [merge(s, v) for s, v in zip(styles, frames[0]["data"], strict=True)]
    data += static_traces(p, ly, all_edges, has_map)
    lane_names = {"x": "x", "y": "y", "L": "loss"}
    ticks = sorted(ly.items(), key=lambda kv: kv[1])
    ticktext = [lane_names[k] if k in lane_names else f"{k[0]}{'' if p.L == 1 else int(k[1:]) + 1}" for k, _ in ticks]
    net, bars = ([0.56, 1.0], [0.36, 0.50]) if has_map else ([0.42, 1.0], [0.0, 0.34])
    domains = {"net": net, "bars": bars, **({"map": MAP_DOMAIN} if has_map else {})}
    net_range = [-0.5, ly["L"] + 0.6]  # in lane units
    bars_title = "∂L/∂W_hh" + (" (top)" if p.L > 1 else "")
    anim = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    # the controls under the plot sit at fixed px from it (pad), whatever height the page fits the figure to; the
    # sliders span the plot's width and the ▶ / ❚❚ buttons sit left of them in the margin, so at no width do they meet
    sliders = [{"name": "phase", "active": 0, "x": 0, "len": 1, "y": 0, "yanchor": "top",
                "pad": {"t": 48}, "currentvalue": {"visible": False}, "font": {"size": 12},
                "steps": [{"method": "animate", "label": label, "args": [[str(i)], anim]}
                          for i, (_, _, label) in enumerate(plan)]}]
    if p.T > DRAWN:
        sliders.append({"name": "window", "active": 0, "x": 0, "len": 1, "y": 0, "yanchor": "top",
                        "pad": {"t": 112}, "currentvalue": {"prefix": "window from step ", "font": {"size": 12}},
                        "font": {"size": 10}, "tickcolor": "white",
                        "steps": [{"method": "relayout", "label": str(s),
                                   "args": [{"xaxis.range": [s - 0.6, s + DRAWN - 0.4]}]}
                                  for s in range(0, p.T - DRAWN + 1)]})
    lines = max(f["layout"]["title"]["text"].count("<br>") + 1 for f in frames)  # of the explanations (15 px)
    margin = {"l": MARGIN_LEFT, "r": 40, "t": 18 + 20 * lines + 30, "b": 170 if p.T > DRAWN else 104}
    layout = base_layout(
        height=height, font={"family": FONT, "size": 14, "color": "#1a1a1a"}, margin=margin,
        meta={"min_height": min(height, min_height(margin, domains, net_range[1] - net_range[0]))},
        title={"text": frames[0]["layout"]["title"]["text"], "x": 0.01, "xanchor": "left", "y": 1,
               "yref": "container", "yanchor": "top", "pad": {"t": 14}, "font": {"size": 15}},
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 12}},
        xaxis={"range": _window(p.T, 0), "anchor": "y3" if has_map else "y2",
               "gridcolor": GRID, "zeroline": False, "dtick": 1 if p.T <= DRAWN else 5},
        yaxis={"domain": net, "range": net_range, "tickvals": [v for _, v in ticks],
               "ticktext": ticktext, "showgrid": False, "zeroline": False, "fixedrange": True},
        yaxis2={"domain": bars, "anchor": "x", "range": bar_range, "title": {"text": bars_title, "font": {"size": 12}},
                "gridcolor": GRID, "zeroline": True, "zerolinecolor": "#999", "fixedrange": True, "nticks": 4},
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0.0, "y": 0, "xanchor": "right",
                      "yanchor": "top", "pad": {"t": 48, "r": 8}, "showactive": False, "buttons": [
                          {"label": "▶", "method": "animate",
                           "args": [None, {"frame": {"duration": 900, "redraw": True}, "transition": {"duration": 0},
                                           "fromcurrent": True, "mode": "immediate"}]},
                          {"label": "❚❚", "method": "animate", "args": [[None], anim]}]}],
        sliders=sliders, uirevision=f"steps-{p.arch}-{p.T}", hovermode="closest", bargap=0.25,
        modebar={"orientation": "v"},
        annotations=[{"text": "step t", "x": 0, "xref": "paper", "xanchor": "right", "y": 0, "yref": "paper",
                      "yanchor": "top", "yshift": -2, "xshift": -14, "showarrow": False}])  # the row of step numbers
    if has_map:
        layout["yaxis3"] = {"domain": MAP_DOMAIN, "anchor": "x",
                            "title": {"text": "loss step t", "font": {"size": 12}}, "gridcolor": GRID,
                            "zeroline": False}
        layout["annotations"] += [{"text": f"‖∂Lₜ/∂W_hh through step s‖{top_layer(p)}: which loss (row) reaches "
                                          "which step (column)",
                                  "x": 0, "y": 0.295, "xref": "paper", "yref": "paper", "xanchor": "left",
                                  "yanchor": "bottom", "showarrow": False, "font": {"size": 12}}]
    return {"data": data, "layout": layout, "frames": frames}
