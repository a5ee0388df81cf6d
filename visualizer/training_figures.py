"""Figures of the training panel: pure functions from the JSON payloads of
:mod:`visualizer.training` to plotly.js figure dicts (fast enough for ten updates a second).

* :func:`progress_figure`: loss (top) and pre-clip gradient norm (bottom) per step and per
  architecture, the task's baseline loss, the clipping threshold, clipped steps marked, a
  diverged run's last step marked, and the selected snapshot as a vertical line.
* :func:`flow_figure`: view 1 (||dL/dh_t|| against t) of one snapshot, built by
  :func:`visualizer.figures.grad_norm_figure` so it looks exactly like the main view.
* :func:`evolution_figure`: how that curve changed over training, one heatmap per architecture
  (x: time step t, y: training step, colour: log10 ||dL/dh_t|| of the top layer).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import figures, framing, plotstyle
from .compute import DISPLAY_NAMES
from .training import unjson

CLIP_COLOR = "#E69F00"
HEAT_SCALE = "Viridis"


@dataclass(frozen=True, eq=False)
class SnapFlow:
    """What :func:`visualizer.figures.grad_norm_figure` reads from a flow."""

    arch: str
    name: str
    hidden_grad_norms: np.ndarray  # (L, T)


def _finite_positive(values) -> list:
    """Values for a log axis as a list: non-finite or <= 0 become None (gaps)."""
    a = np.asarray(values, dtype=float)
    return [float(v) if np.isfinite(v) and v > 0 else None for v in a]


def _log_range(arrays):
    """[lo, hi] log10 range over arrays, or None."""
    return plotstyle.log_range([np.asarray(a, float) for a in arrays if len(a)])


def progress_figure(archs: dict, selected_step: int | None = None, height=430) -> dict:
    """Loss and gradient norm against the training step.

    Parameters
    ----------
    archs : ``{arch: history}`` as made by :func:`visualizer.training.history` (JSON lists).
    selected_step : the snapshot shown in the other figures (a vertical line), or None.
    """
    if not archs:
        return plotstyle.message_figure("Press ▶ Train to start training.", height)
    data, losses, norms, shapes, annotations = [], [], [], [], []
    clip, baseline, last = None, None, 1
    for arch, h in archs.items():
        color, name = plotstyle.COLORS[arch], h.get("name") or DISPLAY_NAMES[arch]
        loss, gn = unjson(h.get("losses", [])), unjson(h.get("grad_norms", []))
        steps = np.arange(1, loss.size + 1)
        last = max(last, int(h.get("steps") or loss.size))
        losses.append(loss)
        norms.append(gn)
        clip = h.get("clip") if h.get("clip") is not None else clip
        baseline = h.get("baseline") if baseline is None else baseline
        data.append(dict(type="scatter", x=steps.tolist(), y=_finite_positive(loss), name=name, legendgroup=arch,
                         mode="lines+markers", line=dict(color=color, width=2.5), xaxis="x", yaxis="y",
                         marker=dict(symbol=plotstyle.SYMBOLS[arch], color=color,
                                     size=plotstyle.marker_sizes(loss.size, arch, size=7.0).tolist()),
                         hovertemplate=f"{name} step %{{x}}: loss %{{y:.5g}}<extra></extra>"))
        data.append(dict(type="scatter", x=steps.tolist(), y=_finite_positive(gn), name=f"{name} ‖∇‖",
                         legendgroup=arch, showlegend=False, mode="lines", line=dict(color=color, width=2),
                         xaxis="x", yaxis="y2", hovertemplate=f"{name} step %{{x}}: ‖∇‖ = %{{y:.5g}}<extra></extra>"))
        clipped = [s for s in h.get("clipped", []) if 1 <= s <= gn.size]
        if clipped:
            data.append(dict(type="scatter", x=clipped, y=_finite_positive(gn[np.array(clipped) - 1]),
                             name=f"{name}: clipped", legendgroup=arch, showlegend=False, mode="markers",
                             marker=dict(symbol="circle-open", size=7, color=CLIP_COLOR, line=dict(width=1.5)),
                             xaxis="x", yaxis="y2",
                             hovertemplate=f"{name} step %{{x}}: clipped (‖∇‖ = %{{y:.4g}})<extra></extra>"))
        if h.get("diverged") and loss.size:
            annotations.append(dict(x=int(loss.size), y=1, xref="x", yref="paper", yanchor="bottom",
                                    text=f"{name} diverged at step {loss.size}", showarrow=False,
                                    font=dict(color=color, size=15)))
            shapes.append(dict(type="line", x0=int(loss.size), x1=int(loss.size), y0=0, y1=1, yref="paper",
                               line=dict(color=color, width=2, dash="dot")))
    n_clipped = sum(len(h.get("clipped", [])) for h in archs.values())
    span = [0.5, last + 0.5]  # reference lines named in the legend, never a label over the curves
    if baseline is not None and not isinstance(baseline, str):
        data.append(dict(type="scatter", x=span, y=[baseline, baseline], mode="lines", meta="reference",
                         name="baseline (input-ignoring predictor)", xaxis="x", yaxis="y", hoverinfo="skip",
                         line=dict(color=plotstyle.REFERENCE_COLOR, width=1.5, dash="dash")))
    if clip is not None:
        clipped_text = f"{n_clipped} step{'s' if n_clipped != 1 else ''} clipped (○)"
        data.append(dict(type="scatter", x=span, y=[clip, clip], mode="lines", meta="reference", xaxis="x",
                         yaxis="y2", name=f"clip at {clip:g}: {clipped_text}", hoverinfo="skip",
                         line=dict(color=CLIP_COLOR, width=2, dash="dash")))
    if selected_step:
        shapes.append(dict(type="line", x0=selected_step, x1=selected_step, y0=0, y1=1, yref="paper",
                           line=dict(color="#444", width=1.5)))
    extra = [baseline] if baseline is not None and not isinstance(baseline, str) else []
    r1 = _log_range([*losses, np.array(extra)])
    r2 = _log_range(norms + ([np.array([clip])] if clip else []))
    layout = plotstyle.base_layout(
        height=height, hovermode="x unified", shapes=shapes, annotations=annotations,
        margin=dict(l=80, r=30, t=50, b=55),
        xaxis=plotstyle.axis("training step", None, range=[0.5, last + 0.5], anchor="y2"),
        # fixed ranges labelled in whole decades (minor labels "2", "5" would overlap); an axis with
        # nothing to draw yet (no gradient norm before the first step) still gets one, or plotly.js
        # draws its lines at NaN
        yaxis=plotstyle.log_axis("loss", r1 or [-1, 1], None, domain=[0.55, 1.0]),
        yaxis2=plotstyle.log_axis("‖∇‖ before clipping", r2 or [-1, 1], None, domain=[0.0, 0.45]),
    )
    for key in ("xaxis", "yaxis", "yaxis2"):  # no axis lines: on this two-row figure (x anchored on y2)
        layout[key]["showline"] = False  # plotly.js drew them at NaN while a run started
    return framing.finish({"data": data, "layout": layout}, "train-progress", sorted(archs), last)


def flows_at(snaps: list[dict]) -> list[SnapFlow]:
    """:class:`SnapFlow` objects of snapshots (one per architecture) in architecture order."""
    order = list(plotstyle.COLORS)
    snaps = sorted(snaps, key=lambda s: order.index(s["arch"]))
    return [SnapFlow(s["arch"], DISPLAY_NAMES[s["arch"]], np.atleast_2d(unjson(s["hidden"]))) for s in snaps]


FLOW_TITLE_LINE = 24  # px of the flow figure's second x-title line


def flow_figure(snaps: list[dict], truncate=None, height=400) -> dict:
    """View 1 of the snapshots ``snaps`` (dicts from :func:`visualizer.training.snapshot`)."""
    if not snaps:
        return plotstyle.message_figure("The gradient at every step appears here while training runs.", height,
                                      width_chars=30)
    fig = figures.grad_norm_figure(flows_at(snaps), truncate=truncate, height=height)
    steps = sorted({int(s["step"]) for s in snaps})
    title = f"after training step {steps[-1]}" if len(steps) == 1 else \
        "after training step " + ", ".join(f"{DISPLAY_NAMES[s['arch']]} {s['step']}" for s in snaps)
    # on a line of its own: a half-width graph (presentation mode's larger font above all) would clip one long line
    layout = fig["layout"]
    layout["xaxis"]["title"]["text"] = f"time step t<br>{title}"
    layout["margin"] = {**layout["margin"], "b": layout["margin"]["b"] + FLOW_TITLE_LINE}
    return framing.finish(fig, "train-flow", [s["arch"] for s in snaps])


def evolution_figure(snaps_by_arch: dict, selected_step: int | None = None, height=330) -> dict:
    """How ||dL/dh_t|| (top layer) changed over training: one heatmap per architecture.

    Parameters
    ----------
    snaps_by_arch : ``{arch: [snapshot, ...]}`` sorted by step.
    selected_step : drawn as a horizontal line (the snapshot on show).
    """
    items = [(a, s) for a, s in snaps_by_arch.items() if s]
    if not items:
        return plotstyle.message_figure("Recorded snapshots appear here as training runs.", height, width_chars=30)
    order = list(plotstyle.COLORS)
    items.sort(key=lambda it: order.index(it[0]))
    n = len(items)
    gap = 0.04
    width = (1 - gap * (n - 1)) / n
    logs, data, layout_axes, annotations, shapes = [], [], {}, [], []
    for i, (arch, snaps) in enumerate(items):
        z = np.array([np.atleast_2d(unjson(s["hidden"]))[-1] for s in snaps])  # (S, T)
        with np.errstate(all="ignore"):
            lz = np.where(np.isfinite(z) & (z > 0), np.log10(np.where(z > 0, z, 1.0)), np.nan)
        logs.append(lz)
        steps = [int(s["step"]) for s in snaps]
        suffix = "" if i == 0 else str(i + 1)
        data.append(dict(type="heatmap", z=[[None if np.isnan(v) else float(v) for v in row] for row in lz],
                         x=list(range(z.shape[1])), y=steps, coloraxis="coloraxis", xaxis=f"x{suffix}",
                         yaxis=f"y{suffix}", customdata=[[str(v) for v in row] for row in z.tolist()],
                         name=DISPLAY_NAMES[arch],
                         hovertemplate=(f"{DISPLAY_NAMES[arch]} training step %{{y}}, t=%{{x}}: "
                                        f"%{{customdata}}<extra></extra>")))
        x0 = i * (width + gap)  # one x title (middle panel, or the left of two): side by side they collide
        layout_axes[f"xaxis{suffix}"] = dict(domain=[x0, x0 + width], anchor=f"y{suffix}",
                                             title=dict(text="time step t" if i == (n - 1) // 2 else ""))
        layout_axes[f"yaxis{suffix}"] = dict(anchor=f"x{suffix}", title=dict(text="training step" if i == 0 else ""),
                                             showticklabels=i == 0, **({"matches": "y"} if i else {}))
        annotations.append(plotstyle.panel_title(DISPLAY_NAMES[arch], plotstyle.COLORS[arch], x0 + width / 2, 1.0,
                                               "center"))
        if selected_step:
            shapes.append(dict(type="line", xref=f"x{suffix} domain", x0=0, x1=1, y0=selected_step,
                               y1=selected_step, yref=f"y{suffix}", line=dict(color="white", width=2, dash="dot")))
    finite = [a[np.isfinite(a)] for a in logs]
    finite = [f for f in finite if f.size]
    lo = min(float(f.min()) for f in finite) if finite else -1.0
    hi = max(float(f.max()) for f in finite) if finite else 0.0
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    layout = plotstyle.base_layout(height=height, annotations=annotations, shapes=shapes,
                                 margin=dict(l=80, r=30, t=40, b=55),
                                 coloraxis=dict(colorscale=HEAT_SCALE, cmin=lo, cmax=hi,
                                                colorbar=dict(title=dict(text="log<sub>10</sub> ‖∂L/∂h<sub>t</sub>‖"),
                                                              thickness=16)),
                                 **layout_axes)
    return framing.finish({"data": data, "layout": layout}, "train-evolution", [a for a, _ in items], title_room=26)
