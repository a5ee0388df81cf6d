"""The data of the "BPTT step by step" view: one iteration of BPTT for the first chosen architecture.

:func:`payload` runs :func:`core.walkthrough` (forward, losses, backward, per-step contributions to
dL/dW_hh, one clipped optimiser step, the next forward pass) and :func:`core.whh_contribution_map`
on the app's batch, bounded: the view walks at most ``MAX_T`` steps, and the (T x T) map computes at
most ``MAP_ROWS`` loss steps within a work budget (evenly spaced rows above that, always including
the last step). Nothing here imports dash or plotly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import core

from . import compute
from .cache import memoize
from .series import Series

MAX_T = 120  # steps the view walks (a window of DRAWN steps is drawn, a scrubber moves it)
DRAWN = 30
MAP_ROWS = 40  # loss steps of the (T x T) map at most
MAP_WORK = 2e9  # rows x T x B x layers x gates x H^2: about one second of NumPy
STEP_WORK = 4e8  # T x B x layers x gates x H^2 of the walkthrough (about five BPTT passes of that size)
GATES = {"rnn": 1, "rnn-relu": 1, "lstm": 4, "gru": 3}
UNITS = 4  # hidden units of the shown sequence listed in the hover


@dataclass(frozen=True)
class StepKey:
    """What one walkthrough depends on: the run and the update applied."""

    run: compute.RunKey  # or a compute.ModelRun (a given model on given data)
    optimizer: str
    lr: float
    clip: float | None


@dataclass(frozen=True, eq=False)
class StepPayload:
    """Everything the step-by-step figure draws (see :class:`core.Walkthrough`). L layers, T steps."""

    arch: str
    name: str
    T: int
    B: int
    H: int
    L: int
    loss_name: str
    loss_on: str
    truncate: int | None
    x: np.ndarray  # (T, I) inputs of the shown sequence
    walk: core.Walkthrough
    map_rows: np.ndarray  # (R,) loss steps of the map
    map_norms: np.ndarray | None  # (R, T) top layer ||dL_t/dW_hh through step s||, None when skipped
    notes: tuple  # sentences about what was reduced, computed from the sizes


def map_rows(T: int, B: int, H: int, L: int, gates: int, loss_on: str) -> tuple[np.ndarray, str | None]:
    """Loss steps of the map within ``MAP_ROWS`` and ``MAP_WORK`` (evenly spaced, ending at T-1), and a note."""
    if loss_on == "last":
        return np.array([T - 1]), None
    per_row = T * B * L * gates * H * H
    n = int(min(T, MAP_ROWS, MAP_WORK // max(per_row, 1)))
    if n >= T:
        return np.arange(T), None
    if n < 2:
        return np.zeros(0, int), ("The loss-step map is skipped: one backward pass per loss step is too much work "
                                  f"at T={T}, batch {B}, H={H}, {L} layer(s); lower the batch or the hidden size.")
    rows = np.unique(np.round(np.linspace(T - 1, 0, n)).astype(int))
    return rows, f"The loss-step map shows {rows.size} of the {T} loss steps (evenly spaced, exact for each)."


def check_work(run: compute.RunKey) -> None:
    """ValueError naming the fields when one walkthrough would be too much work for an interactive view."""
    d = run.data
    work = d.seq_len * d.batch * run.layers * GATES[run.arch] * run.hidden ** 2
    if work > STEP_WORK:
        raise ValueError(f"The step-by-step view runs about five BPTT passes, too much work at batch size {d.batch}, "
                         f"hidden size {run.hidden}, {run.layers} layer(s) and T = {d.seq_len}: lower the batch size "
                         "or the hidden size to see it.")


def check_length(seq_len: int) -> None:
    """ValueError naming the field when the sequence is longer than the view walks."""
    if seq_len > MAX_T:
        raise ValueError(f"Sequence length T = {seq_len} is longer than the step-by-step view walks "
                         f"(at most {MAX_T} steps): lower the sequence length to see it.")


# a walkthrough at the largest accepted sizes holds ~26 MB, at lesson sizes 0.1-0.5 MB
@memoize(maxsize=64, max_bytes=96 * 2**20)
def walk(key: StepKey) -> StepPayload:
    """The bounded walkthrough of ``key``."""
    run = key.run
    check_length(run.data.seq_len)
    check_work(run)
    task, model = compute.task_of(run), compute.model_of(run)
    y, loss_on, note = compute.targets(task, run.data.loss_on)
    T, B = task.x.shape[:2]
    cfg = model.config
    rows, map_note = map_rows(T, B, cfg.hidden_size, cfg.num_layers, cfg.gates, loss_on)
    w = core.walkthrough(model, task.x, y, task.loss, loss_on, run.truncate, optimizer=key.optimizer, lr=key.lr,
                         clip=key.clip, rows=rows if rows.size else None, with_map=bool(rows.size))
    notes = tuple(n for n in (note, map_note) if n)
    return StepPayload(
        arch=run.arch, name=compute.DISPLAY_NAMES[run.arch], T=T, B=B, H=cfg.hidden_size, L=cfg.num_layers,
        loss_name=task.loss, loss_on=loss_on, truncate=run.truncate, x=task.x[:, 0], walk=w,
        map_rows=rows, map_norms=None if w.contribution_map is None else w.contribution_map.norms[-1], notes=notes)


def view_payload(keys, optimizer: str = "adam", lr: float = 0.01, clip: float | None = None) -> StepPayload:
    """The view's payload: the first of ``keys`` (one :class:`visualizer.compute.RunKey` per ticked
    architecture) and the training settings of the update step (see :data:`visualizer.views.VIEWS`)."""
    if not keys:
        raise ValueError("Tick an architecture to step through one iteration of BPTT.")
    check_length(keys[0].data.seq_len)
    return walk(StepKey(run=keys[0], optimizer=optimizer, lr=float(lr), clip=None if clip is None else float(clip)))


def step_key(params, arch: str | None = None) -> StepKey:
    """The :class:`StepKey` of the app settings ``params`` (the first chosen architecture by default)."""
    arch = arch if arch is not None else (params.arch[0] if params.arch else "lstm")
    return StepKey(run=compute.run_key(params, arch), optimizer=params.optimizer, lr=float(params.lr),
                   clip=None if params.clip is None else float(params.clip))


def payload(params) -> StepPayload:
    """The view's payload for the app settings ``params``."""
    check_length(params.seq_len)
    return walk(step_key(params))


def note(keys) -> str | None:
    """Which architecture is shown, and what the bounds reduced (computed from the settings)."""
    if not keys:
        return None
    first = compute.DISPLAY_NAMES[keys[0].arch]
    parts = [f"Showing the {first}, the first ticked architecture." if len(keys) > 1 else None]
    T = keys[0].data.seq_len
    if T <= MAX_T:
        task = compute.task_of(keys[0])
        _, loss_on, scored_note = compute.targets(task, keys[0].data.loss_on)
        parts.append(map_rows(T, keys[0].data.batch, keys[0].hidden, keys[0].layers, GATES[keys[0].arch],
                              loss_on)[1])
        if scored_note:
            parts.append(f"{scored_note[0].upper()}{scored_note[1:]} The map has one row.")
        elif loss_on == "last":
            parts.append("Only the last step is scored, so the map has one row: choose loss on every step to see "
                         "how far back each step's loss reaches.")
        if T > DRAWN:
            parts.append(f"{DRAWN} of the {T} steps are drawn at a time: the lower slider moves the window.")
    text = " ".join(p for p in parts if p)
    return text or None


def series(p: StepPayload, keys) -> list[Series]:
    """Every number the view draws, for export: per-step losses, gradients, contributions and the map."""
    w, T = p.walk, np.arange(p.T)
    out = [Series("steps", p.arch, p.name, None, q, np.asarray(v, float), "t", T) for q, v in (
        ("step_loss", w.step_losses), ("step_loss_after_update", w.next_step_losses))]
    for l in range(p.L):
        for q, v in (("grad_norm", w.hidden_grad_norms[l]), ("local_grad_norm", w.local_grad_norms[l]),
                     ("carried_grad_norm", w.carried_grad_norms[l]),
                     ("whh_contribution_norm", w.contributions.norms[l]),
                     ("whh_contribution_share", w.contributions.shares[l]),
                     ("whh_running_total_norm", w.contributions.running[l]), ("hidden_rms", rms(w.h[l])),
                     ("hidden_rms_after_update", rms(w.next_h[l]))):
            out.append(Series("steps", p.arch, p.name, l + 1, q, np.asarray(v, float), "t", T))
        if w.cell_grad_norms is not None:
            out.append(Series("steps", p.arch, p.name, l + 1, "cell_grad_norm", w.cell_grad_norms[l], "t", T))
    for q, v in (("loss", w.loss), ("loss_after_update", w.next_loss), ("grad_global_norm", w.grad_norm),
                 ("clip_scale", w.clip_scale), ("whh_grad_norm", w.contributions.total[-1]),
                 ("whh_update_norm", w.whh_update_norms[-1])):
        out.append(Series("steps", p.arch, p.name, None, q, np.asarray(float(v))))
    if p.map_norms is not None:
        out.append(Series("steps", p.arch, p.name, p.L, "whh_grad_norm_by_loss_step", np.asarray(p.map_norms, float),
                          "s", T, "t", np.asarray(p.map_rows)))
    return out


# ----------------------------------------------------------------------------- sentences from the data
def fmt(v) -> str:
    """A number in three significant digits ("inf"/"NaN" for non-finite values)."""
    v = float(v)
    if not np.isfinite(v):
        return "NaN" if np.isnan(v) else ("inf" if v > 0 else "−inf")
    return f"{v:.3g}".replace("e-0", "e-").replace("e+0", "e+").replace("-", "−")


EQUATIONS = {"rnn": "hₜ = tanh(W_ih xₜ + W_hh hₜ₋₁ + b)", "rnn-relu": "hₜ = relu(W_ih xₜ + W_hh hₜ₋₁ + b)",
             "lstm": "cₜ = fₜ⊙cₜ₋₁ + iₜ⊙gₜ,  hₜ = oₜ⊙tanh(cₜ)", "gru": "hₜ = (1−zₜ)⊙nₜ + zₜ⊙hₜ₋₁"}


def rms(v) -> np.ndarray:
    """Root mean square over the last axis (the hidden units)."""
    with np.errstate(all="ignore"):
        return np.sqrt(np.mean(np.square(v), axis=-1))


def top_layer(p: StepPayload) -> str:
    """" of the top layer" for stacked layers (the figure's h, ∂L/∂W_hh and map are the top layer's), else ""."""
    return " of the top layer" if p.L > 1 else ""


def init_text(p: StepPayload) -> str:
    """Before the forward pass."""
    return (f"{p.name}, H = {p.H}, T = {p.T}, batch {p.B}: {EQUATIONS[p.arch]}. "
            "Step through: forward, losses, backward, the update, the next forward pass.")


def forward_text(p: StepPayload, t: int, after: bool = False) -> str:
    """The forward pass has computed step ``t`` (``after``: with the updated weights)."""
    h = p.walk.next_h if after else p.walk.h
    what = "Next forward pass (updated weights)" if after else "Forward"
    return (f"{what}, step {t}: {EQUATIONS[p.arch]} — RMS of h{subscript(t)} = {fmt(rms(h[-1, t]))} "
            f"(shown sequence; the batch has {p.B}).")


def losses_text(p: StepPayload) -> str:
    """All step losses are known."""
    w = p.walk
    if p.loss_on == "last":
        return (f"Loss on the last step only: L = L{subscript(p.T - 1)} = {fmt(w.loss)} ({p.loss_name}, "
                "mean over the batch).")
    k = int(np.nanargmax(w.step_losses)) if np.any(np.isfinite(w.step_losses)) else 0
    return (f"Loss on every step: L = Σₜ Lₜ = {fmt(w.loss)} ({p.loss_name}, mean over steps and batch); "
            f"the largest share is L{subscript(k)} = {fmt(w.step_losses[k])}.")


def backward_text(p: StepPayload, s: int) -> str:
    """The backward pass has reached step ``s`` (right to left)."""
    w = p.walk
    local, carried, total = w.local_grad_norms[-1, s], w.carried_grad_norms[-1, s], w.hidden_grad_norms[-1, s]
    text = (f"Backward, step {s}: ∂L/∂h{subscript(s)} = local (from the loss at this step, norm {fmt(local)}) "
            f"+ carried (from step {s + 1}, norm {fmt(carried)}); ‖∂L/∂h{subscript(s)}‖{top_layer(p)} = {fmt(total)}.")
    if s + 1 in set(p.walk.cut_steps.tolist()):
        text += (f" Truncation (k = {p.truncate}) cuts the edge h{subscript(s)} → h{subscript(s + 1)}: "
                 "nothing is carried.")
    elif s == p.T - 1:
        text = (f"Backward starts at the last step {s}: ‖∂L/∂h{subscript(s)}‖ = {fmt(total)}, all of it local "
                "(there is no later step).")
    return text + (f" Step {s} adds ‖C{subscript(s)}‖ = {fmt(w.contributions.norms[-1, s])} "
                   f"to ∂L/∂W_hh{top_layer(p)}.")


def sum_text(p: StepPayload) -> str:
    """The per-step contributions stacked up to dL/dW_hh."""
    c = p.walk.contributions
    total, shares = c.total[-1], c.shares[-1]
    text = (f"∂L/∂W_hh = Σₛ Cₛ{top_layer(p)}: ‖∂L/∂W_hh‖ = {fmt(total)}; the bars are each step's share "
            "⟨Cₛ, G⟩/‖G‖, they add up to it")
    if np.isfinite(total) and total > 0:
        order = np.argsort(-shares)
        cum = np.cumsum(shares[order]) / total
        n = int(np.argmax(cum >= 0.9) + 1) if np.any(cum >= 0.9) else p.T
        text += f"; the {n} largest shares (of {p.T} steps) make up 90% of it or more"
    return text + "."


def update_text(p: StepPayload) -> str:
    """The optimiser step, clipping as a rescale."""
    w = p.walk
    if not (np.isfinite(w.loss) and np.isfinite(w.grad_norm)):
        return f"The loss or gradient is not finite (‖g‖ = {fmt(w.grad_norm)}): no update is applied."
    if w.clip is None:
        clip = f"Global gradient norm ‖g‖ = {fmt(w.grad_norm)}, no clipping set."
    elif w.clipped:
        clip = (f"Clipping: ‖g‖ = {fmt(w.grad_norm)} > c = {fmt(w.clip)}, so every gradient is multiplied "
                f"by {fmt(w.clip_scale)}.")
    else:
        clip = f"‖g‖ = {fmt(w.grad_norm)} ≤ c = {fmt(w.clip)}: clipping leaves the gradient alone."
    opt = "SGD" if w.optimizer == "sgd" else "Adam (first step)"
    return f"{clip} {opt} with lr = {fmt(w.lr)}: ‖ΔW_hh‖{top_layer(p)} = {fmt(w.whh_update_norms[-1])}."


def next_text(p: StepPayload) -> str:
    """After the next forward pass: how the loss changed."""
    w = p.walk
    change = (w.next_loss - w.loss) / w.loss * 100 if np.isfinite(w.loss) and w.loss != 0 else float("nan")
    return (f"Same batch, updated weights: L went from {fmt(w.loss)} to {fmt(w.next_loss)} "
            f"({'+' if change > 0 else ''}{fmt(change)}%). Then the next iteration starts.")


def subscript(n: int) -> str:
    """``n`` as subscript digits."""
    return str(n).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))
