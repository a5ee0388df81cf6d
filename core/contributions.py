"""Which loss reaches which step: dL_t/dW_hh split by the step s whose use of W_hh it flows through.

The recurrent weights are shared by every step, so ``dL/dW_hh = sum_t sum_{s<=t} G[t, s]`` where
``G[t, s] = da_h[s].T @ h[s-1]`` is computed from the loss at step t alone (L_t, its share of the
mean loss) and backpropagated to step s. Equivalently ``G[t, s]`` is the gradient of L_t with
respect to a private copy of W_hh used only at step s ("untied" weights), which is how the tests
check it against finite differences.

Every loss step t needs its own backward pass: the passes run together, the loss steps stacked
along the batch axis (R loss steps x B sequences), in chunks that keep memory bounded. The
forward and backward passes are :func:`core.layers.layer_forward` / :func:`core.layers.layer_backward`,
the code path of :func:`core.bptt` itself (truncation included).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bptt import loss_forward_backward, validate_inputs
from .layers import layer_backward, layer_forward, outer_sum_norms
from .checks import check_steps
from .models import Model

MAX_ROWS = 64  # loss steps per call unless the caller passes ``rows``
CHUNK_BYTES = 64 * 2**20  # activations held per chunk of stacked backward passes
CHUNK_ROWS = 8  # loss steps per chunk: a chunk runs only up to its last loss step


@dataclass(frozen=True, eq=False)
class ContributionMap:
    """The (loss step t) x (step s) map of ``||G[t, s]||_F`` for every layer.

    Attributes
    ----------
    rows : (R,) int, the loss steps t computed (all T steps unless subsampled), increasing.
    norms : (L, R, T) ``||dL_t/dW_hh^l through step s||_F``; zero for s > t (causality) and
        where truncation cut the path.
    matrices : (L, R, T, G*H, H) the G[t, s] themselves when asked for (``keep_matrices``), else None.
    """

    rows: np.ndarray
    norms: np.ndarray
    matrices: np.ndarray | None


def step_losses(outputs, y, loss, loss_on):
    """(T,) each step's share L_t of the mean loss (they sum to it; zero on unscored steps).

    Parameters
    ----------
    outputs : (T, B, O) readout. y, loss, loss_on : as in :func:`core.bptt`.
    """
    T = outputs.shape[0]
    out = np.zeros(T, outputs.dtype)
    with np.errstate(all="ignore"):
        if loss_on == "last":
            out[-1] = loss_forward_backward(outputs[-1], y, loss)[0]
        else:
            for t in range(T):  # steps have equal weight in the mean
                out[t] = loss_forward_backward(outputs[t], y[t], loss)[0] / T
    return out


def _check_rows(rows, T, loss_on):
    """Validated increasing loss steps; ValueError naming ``rows``."""
    if rows is None:
        rows = [T - 1] if loss_on == "last" else range(T)
        if len(rows) > MAX_ROWS:
            raise ValueError(f"rows must be given when the sequence has more than {MAX_ROWS} steps "
                             f"(one backward pass per loss step); got T={T}")
    return np.asarray(check_steps(list(rows) if isinstance(rows, range) else rows, T, "rows"), dtype=int)


def _forward(model, x):
    """All layers over x -> (outputs (T, B, O), per-layer caches, top hs)."""
    cfg, p = model.config, model.params
    caches, inp = [], x
    for l in range(cfg.num_layers):
        inp, cache = layer_forward(cfg.arch, cfg.nonlinearity, inp, p[f"weight_ih_l{l}"], p[f"weight_hh_l{l}"],
                                   p[f"bias_ih_l{l}"], p[f"bias_hh_l{l}"])
        caches.append(cache)
    return inp @ p["readout.weight"].T + p["readout.bias"], caches


def _backward(model, caches, dlogits, truncate):
    """Per layer (da_h (T, N, G*H), h_prev (T, N, H)) for the readout gradient ``dlogits`` (T, N, O)."""
    W_o = model.params["readout.weight"]
    dh_local = dlogits @ W_o  # (T, N, H)
    out = [None] * len(caches)
    for l in range(len(caches) - 1, -1, -1):
        dx, _, st = layer_backward(dh_local, caches[l], truncate, need_dx=l > 0)
        da_h, hs, h_init = st["whh_inputs"]
        out[l] = (da_h, np.concatenate([h_init[None], hs[:-1]], axis=0))
        dh_local = dx
    return out


def whh_contribution_map(model: Model, x, y, loss="mse", loss_on="all", truncate=None, rows=None,
                         keep_matrices=False) -> ContributionMap:
    """Exact ``||dL_t/dW_hh through step s||`` for every loss step t (or ``rows``) and step s <= t.

    Parameters
    ----------
    model, x, y, loss, loss_on, truncate : as in :func:`core.bptt`.
    rows : loss steps t to compute (default: every scored step; required above ``MAX_ROWS``
        steps, since each costs one backward pass: a caller subsamples).
    keep_matrices : also return the (L, R, T, G*H, H) matrices (small problems and tests only).

    Returns
    -------
    ContributionMap

    .. math:: G_{t,s} = \\frac{\\partial L_t}{\\partial a_s} h_{s-1}^\\top,\\quad
              \\frac{\\partial L}{\\partial W_{hh}} = \\sum_t \\sum_{s \\le t} G_{t,s}
    """
    x, y = validate_inputs(model, x, y, loss, loss_on, truncate)
    T, B, _ = x.shape
    rows = _check_rows(rows, T, loss_on)
    cfg = model.config
    L, H, GH = cfg.num_layers, cfg.hidden_size, cfg.gates * cfg.hidden_size
    with np.errstate(all="ignore"):
        outputs, _ = _forward(model, x)
        scored = outputs if loss_on == "all" else outputs[-1]
        dscored = loss_forward_backward(scored, y, loss)[1]
    dlog = dscored if loss_on == "all" else np.concatenate([np.zeros_like(outputs[:-1]), dscored[None]])
    per_row = T * B * (2 * GH + 4 * H + x.shape[2]) * L * x.itemsize  # activations of one stacked backward pass
    chunk = max(1, min(CHUNK_ROWS, int(CHUNK_BYTES // max(per_row, 1))))
    R = rows.size
    norms = np.zeros((L, R, T), x.dtype)
    mats = np.zeros((L, R, T, GH, H), x.dtype) if keep_matrices else None
    for c0 in range(0, R, chunk):
        rr = rows[c0 : c0 + chunk]
        n, Tc = rr.size, rr[-1] + 1  # steps after the chunk's last loss step receive no gradient
        xs = np.broadcast_to(x[:Tc, None], (Tc, n, B, x.shape[2])).reshape(Tc, n * B, -1)
        dl = np.zeros((Tc, n, B, dlog.shape[2]), x.dtype)
        dl[rr, np.arange(n)] = dlog[rr]  # block k holds only the gradient of loss step rr[k]
        with np.errstate(all="ignore"):
            _, caches = _forward(model, xs)
            pieces = _backward(model, caches, dl.reshape(Tc, n * B, -1), truncate)
        for l, (da_h, h_prev) in enumerate(pieces):
            norms[l, c0 : c0 + n, :Tc] = outer_sum_norms(da_h.reshape(Tc * n, B, GH), h_prev.reshape(Tc * n, B, H)
                                                          ).reshape(Tc, n).T  # pairs (s, k) -> (k, s)
            if mats is not None:
                with np.errstate(all="ignore"):
                    mats[l, c0 : c0 + n, :Tc] = np.einsum("snbi,snbj->nsij", da_h.reshape(Tc, n, B, GH),
                                                          h_prev.reshape(Tc, n, B, H))
        del caches, pieces
    return ContributionMap(rows=rows, norms=norms, matrices=mats)


@dataclass(frozen=True, eq=False)
class StepContributions:
    """Each step's contribution C_s = da_h[s].T @ h[s-1] to dL/dW_hh and how they add up. L layers, T steps.

    Attributes
    ----------
    norms : (L, T) ``||C_s||_F`` (:func:`core.bptt`'s ``whh_grad_norms``).
    shares : (L, T) ``<C_s, G> / ||G||_F`` with ``G = sum_s C_s = dL/dW_hh``: signed, they sum exactly
        to ``||G||_F`` (zero everywhere when G = 0).
    running : (L, T) ``||sum_{s' >= s} C_s'||_F``, the total the backward pass has accumulated when,
        going right to left, it has added step s; ``running[:, 0]`` is ``total``.
    total : (L,) ``||dL/dW_hh||_F``.
    grad : (L, G*H, H) dL/dW_hh.
    """

    norms: np.ndarray
    shares: np.ndarray
    running: np.ndarray
    total: np.ndarray
    grad: np.ndarray


def step_contributions(model: Model, x, y, loss="mse", loss_on="all", truncate=None) -> StepContributions:
    """Per-step contributions to dL/dW_hh of the whole loss and how they stack up to the total.

    Parameters
    ----------
    model, x, y, loss, loss_on, truncate : as in :func:`core.bptt`.

    Returns
    -------
    StepContributions (memory: one (G*H, H) accumulator per layer besides the backward pass).

    .. math:: \\sum_s \\frac{\\langle C_s, G\\rangle}{\\lVert G\\rVert} = \\lVert G \\rVert,\\quad
              G = \\sum_s C_s = \\frac{\\partial L}{\\partial W_{hh}}
    """
    x, y = validate_inputs(model, x, y, loss, loss_on, truncate)
    T = x.shape[0]
    with np.errstate(all="ignore"):
        outputs, caches = _forward(model, x)
        scored = outputs if loss_on == "all" else outputs[-1]
        dscored = loss_forward_backward(scored, y, loss)[1]
        dlog = dscored if loss_on == "all" else np.concatenate([np.zeros_like(outputs[:-1]), dscored[None]])
        pieces = _backward(model, caches, dlog, truncate)
        L = len(pieces)
        norms, shares, running = (np.zeros((L, T), x.dtype) for _ in range(3))
        grads, total = [], np.zeros(L, x.dtype)
        for l, (da_h, h_prev) in enumerate(pieces):
            G = np.einsum("sbi,sbj->ij", da_h, h_prev)  # (G*H, H)
            total[l] = np.linalg.norm(G)
            Gn = G / total[l] if total[l] > 0 else np.zeros_like(G)
            acc = np.zeros_like(G)
            for s in range(T - 1, -1, -1):
                C = da_h[s].T @ h_prev[s]
                acc += C
                running[l, s] = np.linalg.norm(acc)
                shares[l, s] = np.sum(C * Gn)
            norms[l] = outer_sum_norms(da_h, h_prev)
            grads.append(G)
    return StepContributions(norms=norms, shares=shares, running=running, total=total, grad=np.stack(grads))
