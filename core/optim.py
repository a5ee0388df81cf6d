"""Optimisers as pure step functions and global-norm gradient clipping.

The optimisers reproduce ``torch.optim.SGD`` and ``torch.optim.Adam`` (default, single-tensor
CPU path) update for update; :func:`clip_grad_norm` has ``torch.nn.utils.clip_grad_norm_``
semantics but returns new arrays and reports the pre-clip norm, so raw norms stay visible.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .checks import is_real

OPTIMIZERS = ("sgd", "adam")


# ----------------------------------------------------------------------------- optimisers
@dataclass(frozen=True, eq=False)
class OptimizerState:
    """Optimiser state after ``step`` updates: ``buffers[kind][param_name]`` arrays.

    SGD keeps ``"momentum_buffer"`` (only when momentum != 0), Adam ``"exp_avg"`` and
    ``"exp_avg_sq"``, named as in ``torch.optim``'s state dict.
    """

    step: int = 0
    buffers: dict = field(default_factory=dict)


def sgd_step(params: dict, grads: dict, state: OptimizerState | None = None, *, lr: float,
             momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
             weight_decay: float = 0.0) -> tuple[dict, OptimizerState]:
    """One ``torch.optim.SGD`` update; returns new arrays, never modifies its inputs.

    Parameters
    ----------
    params, grads : dicts name -> array (same keys and shapes).
    state : the previous :class:`OptimizerState` (None before the first step).

    Returns
    -------
    new_params, new_state

    .. math:: g = \\nabla + \\lambda p,\\quad b_1 = g,\\ b_t = \\mu b_{t-1} + (1-\\tau) g,\\quad
              p \\leftarrow p - \\eta\\,(g + \\mu b_t \\text{ if nesterov else } b_t)
    """
    state = OptimizerState() if state is None else state
    old = state.buffers.get("momentum_buffer", {})
    bufs, new = {}, {}
    for k, p in params.items():
        g = grads[k] if weight_decay == 0 else grads[k] + weight_decay * p
        if momentum != 0:
            b = g.copy() if k not in old else old[k] * momentum + (1 - dampening) * g
            bufs[k] = b
            g = g + momentum * b if nesterov else b
        new[k] = p + (-lr) * g
    return new, OptimizerState(state.step + 1, {"momentum_buffer": bufs} if momentum != 0 else {})


def adam_step(params: dict, grads: dict, state: OptimizerState | None = None, *, lr: float = 1e-3,
              betas: tuple = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0.0) -> tuple[dict, OptimizerState]:
    """One ``torch.optim.Adam`` update (amsgrad off); returns new arrays.

    Parameters
    ----------
    params, grads : dicts name -> array.  state : previous state (None before the first step).

    Returns
    -------
    new_params, new_state

    .. math:: m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g,\\quad v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g^2,
              \\quad p \\leftarrow p - \\frac{\\eta}{1-\\beta_1^t}
              \\frac{m_t}{\\sqrt{v_t}/\\sqrt{1-\\beta_2^t} + \\epsilon}
    """
    state = OptimizerState() if state is None else state
    beta1, beta2 = betas
    t = state.step + 1
    m_old = state.buffers.get("exp_avg", {})
    v_old = state.buffers.get("exp_avg_sq", {})
    step_size = lr / (1 - beta1 ** t)
    bc2_sqrt = (1 - beta2 ** t) ** 0.5
    ms, vs, new = {}, {}, {}
    for k, p in params.items():
        g = grads[k] if weight_decay == 0 else grads[k] + weight_decay * p
        m = m_old.get(k, np.zeros_like(p))
        m = m + (1 - beta1) * (g - m)  # torch's lerp(m, g, 1 - beta1) for weights < 0.5
        v = v_old.get(k, np.zeros_like(p)) * beta2 + (1 - beta2) * (g * g)
        ms[k], vs[k] = m, v
        new[k] = p - step_size * m / (np.sqrt(v) / bc2_sqrt + eps)
    return new, OptimizerState(t, {"exp_avg": ms, "exp_avg_sq": vs})


def global_norm(grads: dict) -> float:
    """L2 norm over all arrays together: sqrt(sum of squared per-array L2 norms)."""
    with np.errstate(all="ignore"):
        return float(np.linalg.norm([np.linalg.norm(np.ravel(g)) for g in grads.values()]))


def clip_grad_norm(grads: dict, max_norm: float) -> tuple[dict, float, bool]:
    """Clip gradients by their global L2 norm (``torch.nn.utils.clip_grad_norm_`` semantics).

    Parameters
    ----------
    grads : dict name -> array (not modified).  max_norm : positive threshold.

    Returns
    -------
    clipped_grads : new arrays, scaled by ``max_norm / (total + 1e-6)`` if that is < 1,
        else unscaled copies (also when ``total`` is NaN/inf: nothing sensible to scale by).
    total : the pre-clip global norm.  clipped : whether the scale was applied.

    .. math:: \\lVert g \\rVert = \\sqrt{\\textstyle\\sum_k \\lVert g_k \\rVert_2^2},\\quad
              g \\leftarrow g \\cdot \\min\\!\\left(1, \\frac{c}{\\lVert g \\rVert + 10^{-6}}\\right)
    """
    if not is_real(max_norm) or max_norm <= 0:
        raise ValueError(f"max_norm must be a finite number > 0, got {max_norm!r}")
    total = global_norm(grads)
    scale = max_norm / (total + 1e-6) if np.isfinite(total) else 1.0
    if scale < 1.0:
        return {k: g * scale for k, g in grads.items()}, total, True
    return {k: g.copy() for k, g in grads.items()}, total, False
