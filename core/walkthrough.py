"""One iteration of BPTT, phase by phase, as the numbers a lecture walks through.

Forward (every step's state), the loss of every step, the backward pass (the gradient arriving at
h_t from the loss kept apart from the gradient carried back from step t+1), each step's
contribution to dL/dW_hh and how they add up, one optimiser step (clipping as an explicit rescale)
and the next forward pass with the updated weights on the same batch. Everything comes from
:func:`core.bptt`, :mod:`core.contributions` and :mod:`core.optim`; nothing is recomputed differently.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import cells
from .bptt import bptt, loss_forward_backward, validate_inputs
from .layers import safe_norm
from .checks import check_index, is_real
from .contributions import ContributionMap, StepContributions, step_contributions, step_losses, whh_contribution_map
from .models import Model
from .optim import OPTIMIZERS, adam_step, clip_grad_norm, global_norm, sgd_step


@dataclass(frozen=True, eq=False)
class Walkthrough:
    """One BPTT iteration. L layers, T steps, H hidden units, O outputs; ``sample`` is the sequence
    whose states are shown (losses and gradients are over the whole batch).

    Attributes
    ----------
    h, c : (L, T, H) hidden (and LSTM cell; None otherwise) states of sequence ``sample``.
    outputs : (T, O) its readout.  step_losses : (T,) each step's share L_t of the batch loss.
    loss : the batch loss (= ``step_losses.sum()``).
    hidden_grad_norms, local_grad_norms, carried_grad_norms : (L, T) from :func:`core.bptt`.
    cell_grad_norms : (L, T) or None.
    cell_carried_norms : (L, T) LSTM: norm of the gradient carried along the cell path into c^l_t from step
        t+1, ``f_{t+1} * dL/dc_{t+1}`` (zero at the last step and across a truncation cut); None otherwise.
    contributions : :class:`core.contributions.StepContributions`.
    contribution_map : :class:`core.contributions.ContributionMap` (or None when not asked for).
    cut_steps : (K,) steps s whose incoming edge h_{s-1} -> h_s the backward pass cuts (truncation).
    grad_norm : global pre-clip gradient norm.  clip : threshold or None.
    clip_scale : factor the gradients were multiplied by (1.0 when not clipped).  clipped : bool.
    optimizer, lr : the update applied.  whh_update_norms : (L,) ``||W_hh' - W_hh||_F``.
    params_after : the updated parameters.
    next_h, next_c, next_outputs, next_step_losses, next_loss : the forward pass with the updated
        weights on the same batch.
    """

    sample: int
    h: np.ndarray
    c: np.ndarray | None
    outputs: np.ndarray
    step_losses: np.ndarray
    loss: float
    hidden_grad_norms: np.ndarray
    local_grad_norms: np.ndarray
    carried_grad_norms: np.ndarray
    cell_grad_norms: np.ndarray | None
    cell_carried_norms: np.ndarray | None
    contributions: StepContributions
    contribution_map: ContributionMap | None
    cut_steps: np.ndarray
    grad_norm: float
    clip: float | None
    clip_scale: float
    clipped: bool
    optimizer: str
    lr: float
    whh_update_norms: np.ndarray
    params_after: dict
    next_h: np.ndarray
    next_c: np.ndarray | None
    next_outputs: np.ndarray
    next_step_losses: np.ndarray
    next_loss: float


def sequence_states(model: Model, x):
    """Step-by-step forward of every layer with :mod:`core.cells`.

    Parameters
    ----------
    x : (T, B, I).

    Returns
    -------
    h : (L, T, B, H), c : (L, T, B, H) for the LSTM else None, outputs : (T, B, O).
    """
    cfg, p = model.config, model.params
    T, B, _ = x.shape
    H, L = cfg.hidden_size, cfg.num_layers
    hs = np.empty((L, T, B, H), x.dtype)
    cs = np.empty((L, T, B, H), x.dtype) if cfg.arch == "lstm" else None
    inp = x
    with np.errstate(all="ignore"):
        for l in range(L):
            W_ih, W_hh, b_ih, b_hh = (p[f"{n}_l{l}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            h = np.zeros((B, H), x.dtype)
            c = np.zeros((B, H), x.dtype)
            for t in range(T):
                a_x = inp[t] @ W_ih.T + b_ih
                if cfg.arch == "rnn":
                    h, _ = cells.rnn_step_forward(a_x, h, W_hh, b_hh, cfg.nonlinearity)
                elif cfg.arch == "lstm":
                    h, c, _ = cells.lstm_step_forward(a_x, h, c, W_hh, b_hh)
                    cs[l, t] = c
                else:
                    h, _ = cells.gru_step_forward(a_x, h, W_hh, b_hh)
                hs[l, t] = h
            inp = hs[l]
        outputs = inp @ p["readout.weight"].T + p["readout.bias"]
    return hs, cs, outputs


def cell_carried_norms(model: Model, x, y, loss="mse", loss_on="all", truncate=None):
    """(L, T) LSTM: ||dL/dc_t carried back along the cell path from step t+1|| = ||f_{t+1} * dL/dc_{t+1}||.

    A step-by-step backward pass with :func:`core.cells.lstm_step_backward` (its ``dc_prev``), truncation
    as in :func:`core.bptt`. None for the RNN and GRU, which have no cell state.

    Parameters
    ----------
    model, x, y, loss, loss_on, truncate : as in :func:`core.bptt`.

    Returns
    -------
    (L, T) array or None; also the (L, T) norms of the total dL/dc_t (to check against :func:`core.bptt`).
    """
    cfg, p = model.config, model.params
    if cfg.arch != "lstm":
        return None, None
    x, y = validate_inputs(model, x, y, loss, loss_on, truncate)
    T, B, _ = x.shape
    H, L = cfg.hidden_size, cfg.num_layers
    with np.errstate(all="ignore"):
        caches, inp = [], x
        for l in range(L):
            W_ih, W_hh, b_ih, b_hh = (p[f"{n}_l{l}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            h, c, steps, out = np.zeros((B, H), x.dtype), np.zeros((B, H), x.dtype), [], np.empty((T, B, H), x.dtype)
            for t in range(T):
                h, c, cache = cells.lstm_step_forward(inp[t] @ W_ih.T + b_ih, h, c, W_hh, b_hh)
                steps.append(cache)
                out[t] = h
            caches.append(steps)
            inp = out
        logits = inp @ p["readout.weight"].T + p["readout.bias"]
        dscored = loss_forward_backward(logits if loss_on == "all" else logits[-1], y, loss)[1]
        dlog = dscored if loss_on == "all" else np.concatenate([np.zeros_like(logits[:-1]), dscored[None]])
        dh_local = dlog @ p["readout.weight"]  # (T, B, H)
        carried, total = np.zeros((L, T), x.dtype), np.zeros((L, T), x.dtype)
        for l in range(L - 1, -1, -1):
            dh_next, dc_next = np.zeros((B, H), x.dtype), np.zeros((B, H), x.dtype)
            dx = np.empty((T, B, p[f"weight_ih_l{l}"].shape[1]), x.dtype)
            for t in range(T - 1, -1, -1):
                carried[l, t] = safe_norm(dc_next.ravel(), 0)
                da, _, dh_prev, dc_prev, dc_t = cells.lstm_step_backward(dh_local[t] + dh_next, dc_next, caches[l][t])
                total[l, t] = safe_norm(dc_t.ravel(), 0)
                dx[t] = da @ p[f"weight_ih_l{l}"]
                if truncate is not None and t % truncate == 0 and t > 0:
                    dh_prev, dc_prev = np.zeros_like(dh_prev), np.zeros_like(dc_prev)
                dh_next, dc_next = dh_prev, dc_prev
            dh_local = dx
    return carried, total


def cut_steps(T: int, truncate) -> np.ndarray:
    """Steps s whose edge h_{s-1} -> h_s the truncated backward pass cuts: s = k, 2k, ... < T."""
    if truncate is None:
        return np.zeros(0, int)
    return np.arange(truncate, T, truncate)


def _update(params, grads, optimizer, lr):
    """One optimiser step from a fresh state (SGD without momentum buffer history, or Adam)."""
    if optimizer == "sgd":
        return sgd_step(params, grads, None, lr=lr)[0]
    return adam_step(params, grads, None, lr=lr)[0]


def walkthrough(model: Model, x, y, loss="mse", loss_on="all", truncate=None, *, optimizer="sgd", lr=0.01,
                clip=None, sample=0, rows=None, with_map=True) -> Walkthrough:
    """Every number of one BPTT iteration on the batch (x, y), phase by phase.

    Parameters
    ----------
    model, x, y, loss, loss_on, truncate : as in :func:`core.bptt`.
    optimizer : ``"sgd"`` or ``"adam"`` (the first step of a fresh optimiser), lr : > 0.
    clip : global-norm threshold (:func:`core.clip_grad_norm`) or None.
    sample : the sequence of the batch whose states are returned.
    rows, with_map : loss steps of the (T x T) contribution map (see
        :func:`core.contributions.whh_contribution_map`), or no map.

    Returns
    -------
    Walkthrough

    .. math:: W \\leftarrow W - \\eta\\, \\min\\!\\left(1, \\frac{c}{\\lVert g \\rVert}\\right) g
              \\ \\text{(SGD; Adam rescales per entry)}
    """
    x, y = validate_inputs(model, x, y, loss, loss_on, truncate)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if not is_real(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    T, B, _ = x.shape
    sample = check_index("sample", sample, B)
    res = bptt(model, x, y, loss, loss_on, truncate)
    hs, cs, outputs = sequence_states(model, x)
    contrib = step_contributions(model, x, y, loss, loss_on, truncate)
    cell_carried = cell_carried_norms(model, x, y, loss, loss_on, truncate)[0]
    cmap = whh_contribution_map(model, x, y, loss, loss_on, truncate, rows=rows) if with_map else None
    with np.errstate(all="ignore"):
        if clip is None:
            grads, norm, clipped = res.grads, global_norm(res.grads), False
        else:
            grads, norm, clipped = clip_grad_norm(res.grads, clip)
        scale = float(clip / (norm + 1e-6)) if clipped else 1.0
        finite = np.isfinite(res.loss) and np.isfinite(norm)
        after = _update(model.params, grads, optimizer, lr) if finite else model.state_dict()  # NaN: no update
        nxt = model.copy()
        nxt.params = after
        L = model.config.num_layers
        dW = np.array([np.linalg.norm(after[f"weight_hh_l{l}"] - model.params[f"weight_hh_l{l}"]) for l in range(L)])
        nh, nc, nout = sequence_states(nxt, x)
    losses = step_losses(outputs, y, loss, loss_on)
    next_losses = step_losses(nout, y, loss, loss_on)
    return Walkthrough(
        sample=int(sample), h=hs[:, :, sample], c=None if cs is None else cs[:, :, sample],
        outputs=outputs[:, sample], step_losses=losses, loss=float(res.loss),
        hidden_grad_norms=res.hidden_grad_norms, local_grad_norms=res.local_grad_norms,
        carried_grad_norms=res.carried_grad_norms, cell_grad_norms=res.cell_grad_norms,
        cell_carried_norms=cell_carried,
        contributions=contrib, contribution_map=cmap, cut_steps=cut_steps(T, truncate),
        grad_norm=float(norm), clip=clip, clip_scale=scale, clipped=bool(clipped), optimizer=optimizer, lr=float(lr),
        whh_update_norms=dW, params_after=after,
        next_h=nh[:, :, sample], next_c=None if nc is None else nc[:, :, sample], next_outputs=nout[:, sample],
        next_step_losses=next_losses, next_loss=float(next_losses.sum()))
