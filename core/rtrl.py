"""Real-time recurrent learning: exact gradients carried forward in time, memory independent of T.

RTRL (Williams and Zipser 1989) keeps the sensitivity of the state to every recurrent parameter,
``S_t = d s_t / d theta`` (n x P per sequence), and updates it with the chain rule at every step,

.. math:: S_t = \\frac{\\partial s_t}{\\partial s_{t-1}} S_{t-1} + \\frac{\\partial s_t}{\\partial \\theta},
          \\qquad \\frac{dL}{d\\theta} = \\sum_t \\frac{\\partial L_t}{\\partial s_t} S_t,

so nothing from earlier steps is stored: memory O(n P) for state size n (H for RNN and GRU, 2H for
the LSTM's (h, c)) and P recurrent parameters, work O(n^2 P) per step (the product of the (n, n)
state Jacobian with S). Compare BPTT: memory O(T) and work O(P) per step.

The parameters are grouped like the pre-activations they enter: ``theta_x = [W_ih | b_ih]``
(G*H, I+1) multiplies ``[x_t; 1]`` and ``theta_h = [W_hh | b_hh]`` (G*H, H+1) multiplies
``[h_{t-1}; 1]``, so the immediate term is ``(d s_t / d a) outer [x_t; 1]``. With several layers,
layer l's state also depends on the lower layers' parameters through its input h^{l-1}_t, whose
sensitivity is already known at step t: ``S^{l,m}_t = J^l_t S^{l,m}_{t-1} + (d s^l_t / d h^{l-1}_t) S^{l-1,m}_t``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import cells
from .bptt import loss_forward_backward, validate_inputs
from .models import Model


@dataclass(frozen=True)
class RTRLResult:
    """What :func:`rtrl` computed.

    Attributes
    ----------
    loss : float, the same mean loss as :func:`core.bptt`.
    grads : dict, dL/dparam with the keys and shapes of ``model.state_dict()``.
    memory_bytes : bytes of the arrays carried from step to step (sensitivities, the state
        Jacobian, the immediate derivative, the state); independent of T.
    state_size : n, the length of the state the sensitivities are taken of (H, or 2H for the LSTM).
    recurrent_params : P, the number of parameters the sensitivities are taken with respect to.
    nonfinite_step : first step whose state is NaN/inf, or None.
    """

    loss: float
    grads: dict
    memory_bytes: int
    state_size: int
    recurrent_params: int
    nonfinite_step: int | None


def state_size(cfg) -> int:
    """n: the length of one layer's state (h, and c for the LSTM)."""
    return 2 * cfg.hidden_size if cfg.arch == "lstm" else cfg.hidden_size


def _layer_params(cfg) -> list[int]:
    """P_l: parameters of each recurrent layer, G*H*(I_l + H + 2) (I_l = H above the first)."""
    G, H = cfg.gates, cfg.hidden_size
    return [G * H * ((cfg.input_size if l == 0 else H) + H + 2) for l in range(cfg.num_layers)]


def recurrent_params(cfg) -> int:
    """P: parameters of all recurrent layers, sum over layers of G*H*(I_l + H + 2)."""
    return sum(_layer_params(cfg))


def memory_model(cfg, batch: int) -> int:
    """Bytes :func:`rtrl` holds, from the shapes alone: two buffers of the sensitivities of every
    layer's state to the parameters of it and of the layers below (B, n, P_l' each), every layer's
    (B, n) state, and the largest per-layer working set: the (B, n, n) state Jacobian, the (B, n, G*H)
    immediate derivative (two for the GRU, whose input and recurrent sides differ) and, above the
    first layer, the (B, n, H) derivative through the layer's input."""
    n, H, GH = state_size(cfg), cfg.hidden_size, cfg.gates * cfg.hidden_size
    P = _layer_params(cfg)
    nD = 2 if cfg.arch == "gru" else 1
    sens = sum(2 * sum(P[: l + 1]) for l in range(cfg.num_layers))
    work = n + nD * GH + (H if cfg.num_layers > 1 else 0)
    return int(batch * n * (sens + cfg.num_layers + work) * np.dtype(cfg.dtype).itemsize)


def flops_model(cfg, T: int, batch: int) -> float:
    """Multiply-adds of :func:`rtrl` over T steps: the products J_t S_{t-1} dominate, B n^2 P_l' for
    every layer l and every layer l' <= l; the sensitivities reaching layer l through its input add
    B n H P_l' for l' < l."""
    n, H, P = state_size(cfg), cfg.hidden_size, _layer_params(cfg)
    per = sum(n * n * sum(P[: l + 1]) + n * H * sum(P[:l]) + 3 * n * P[l] for l in range(cfg.num_layers))
    return float(T) * batch * per


def _diag_blocks(vals):
    """(B, n, G, H) with vals (B, G, H) on the diagonal of every gate block (n = H)."""
    H = vals.shape[2]
    return vals[:, None, :, :] * np.eye(H, dtype=vals.dtype)[None, :, None, :]


def _step(arch, nonlinearity, a_x, s_prev, W_hh, b_hh):
    """One step -> (state s_t (B, n), D_x, D_h (B, n, G*H) = d s_t / d a_x, d s_t / d a_h,
    J (B, n, n) = d s_t / d s_{t-1})."""
    B = a_x.shape[0]
    H = W_hh.shape[1]
    if arch == "rnn":
        h, _ = cells.rnn_step_forward(a_x, s_prev, W_hh, b_hh, nonlinearity)
        act = 1.0 - h * h if nonlinearity == "tanh" else (h > 0).astype(h.dtype)  # (B, H)
        D = _diag_blocks(act[:, None, :]).reshape(B, H, H)
        return h, D, D, act[:, :, None] * W_hh[None]
    if arch == "lstm":
        h_prev, c_prev = s_prev[:, :H], s_prev[:, H:]
        h, c, cache = cells.lstm_step_forward(a_x, h_prev, c_prev, W_hh, b_hh)
        gates, tc = cache.gates, cache.tanh_c
        i, f, g, o = (gates[:, k * H : (k + 1) * H] for k in range(4))
        dc = np.stack([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), np.zeros_like(i)], axis=1)
        do = o * (1 - tc * tc)  # (B, H): d h / d c
        dh = dc * do[:, None, :]
        dh[:, 3] = tc * o * (1 - o)
        D = np.concatenate([_diag_blocks(dh), _diag_blocks(dc)], axis=1).reshape(B, 2 * H, 4 * H)
        J = np.empty((B, 2 * H, 2 * H), a_x.dtype)
        J[:, :, :H] = D @ W_hh  # through a_h = W_hh h_{t-1}
        J[:, :, H:] = 0.0
        ar = np.arange(H)
        J[:, ar, H + ar] = do * f  # h_t <- c_{t-1}
        J[:, H + ar, H + ar] = f  # c_t <- c_{t-1}
        return np.concatenate([h, c], axis=1), D, D, J
    h, cache = cells.gru_step_forward(a_x, s_prev, W_hh, b_hh)
    gates, hn = cache.gates, cache.hn
    r, z, n = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :]
    dn = (1 - z) * (1 - n * n)  # (B, H): d h / d (n pre-activation)
    dx = np.stack([dn * hn * r * (1 - r), (s_prev - n) * z * (1 - z), dn], axis=1)  # (B, 3, H)
    dhh = dx.copy()
    dhh[:, 2] *= r  # the n block's recurrent part is gated by r
    D_x = _diag_blocks(dx).reshape(B, H, 3 * H)
    D_h = _diag_blocks(dhh).reshape(B, H, 3 * H)
    J = D_h @ W_hh
    ar = np.arange(H)
    J[:, ar, ar] += z  # h_t = ... + z h_{t-1}
    return h, D_x, D_h, J


def rtrl(model: Model, x, y, loss="mse", loss_on="all", truncate=None) -> RTRLResult:
    """Exact gradients by real-time recurrent learning (forward-mode sensitivities).

    Parameters
    ----------
    model : :class:`core.RNN` (tanh or relu), :class:`core.LSTM` or :class:`core.GRU`, any number of layers
        (layer l's state carries its sensitivity to the parameters of layers 0..l).
    x, y, loss, loss_on, truncate : as in :func:`core.bptt`; ``truncate=k`` drops the
        dependence of s_t on s_{t-1} at t = k, 2k, ... (the same surrogate truncated BPTT differentiates).

    Returns
    -------
    RTRLResult: the loss and gradients of :func:`core.bptt` (to rounding), with memory
    independent of T.

    .. math:: S_t = J_t S_{t-1} + D_t \\otimes [z_t; 1], \\quad
              \\nabla_\\theta L = \\sum_t \\frac{\\partial L_t}{\\partial s_t} S_t
    """
    x, y = validate_inputs(model, x, y, loss, loss_on, truncate)
    cfg, p = model.config, model.params
    T, B, I = x.shape
    L, H, dtype = cfg.num_layers, cfg.hidden_size, x.dtype
    n, GH = state_size(cfg), cfg.gates * cfg.hidden_size
    W = [tuple(p[f"{k}_l{l}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")) for l in range(L)]
    In = [I] + [H] * (L - 1)  # each layer's input size
    W_o, b_o = p["readout.weight"], p["readout.bias"]
    # S[l][m] = (d s^l / d [W_ih^m | b_ih^m], d s^l / d [W_hh^m | b_hh^m]) for m <= l, and a second buffer
    S = [[(np.zeros((B, n, GH * (In[m] + 1)), dtype), np.zeros((B, n, GH * (H + 1)), dtype)) for m in range(l + 1)]
         for l in range(L)]
    S_next = [[(np.empty_like(a), np.empty_like(b)) for a, b in row] for row in S]
    s = [np.zeros((B, n), dtype) for _ in range(L)]
    g = [[np.zeros(GH * (In[m] + 1), dtype), np.zeros(GH * (H + 1), dtype)] for m in range(L)]
    dW_o, db_o = np.zeros_like(W_o), np.zeros_like(b_o)
    ones = np.ones((B, 1), dtype)
    sens = sum(a.nbytes + b.nbytes for rows in (S, S_next) for row in rows for a, b in row)
    value, held, bad = 0.0, 0, None
    with np.errstate(all="ignore"):
        for t in range(T):
            detach = truncate is not None and t % truncate == 0 and t > 0  # s_{t-1} detached
            inp = x[t]
            for l in range(L):
                W_ih, W_hh, b_ih, b_hh = W[l]
                zx = np.concatenate([inp, ones], axis=1)  # (B, I_l + 1)
                zh = np.concatenate([s[l][:, :H], ones], axis=1)  # (B, H + 1): [h_{t-1}; 1]
                a_x = inp @ W_ih.T + b_ih  # (B, G*H); b_hh enters through a_h
                s[l], D_x, D_h, J = _step(cfg.arch, cfg.nonlinearity, a_x, s[l], W_hh, b_hh)
                M = D_x @ W_ih if l > 0 else None  # (B, n, H): d s^l_t / d h^{l-1}_t, the layer's input
                for m in range(l + 1):
                    for k in range(2):
                        new = S_next[l][m][k]
                        if detach:
                            new[...] = 0.0  # only the terms of step t remain
                        else:
                            np.matmul(J, S[l][m][k], out=new)  # (B, n, n) @ (B, n, P): the O(n^2 P) step
                        if m < l:  # through the input h^{l-1}_t, whose sensitivity is already at step t
                            new += M @ S[l - 1][m][k][:, :H, :]
                    if m == l:  # the immediate terms: D outer [z; 1]
                        S_next[l][l][0].reshape(B, n, GH, In[l] + 1)[...] += D_x[..., None] * zx[:, None, None, :]
                        S_next[l][l][1].reshape(B, n, GH, H + 1)[...] += D_h[..., None] * zh[:, None, None, :]
                S[l], S_next[l] = S_next[l], S[l]
                work = J.nbytes + D_h.nbytes + (D_x.nbytes if D_x is not D_h else 0) + (M.nbytes if l else 0)
                held = max(held, sens + sum(a.nbytes for a in s) + work)
                if bad is None and not np.all(np.isfinite(s[l])):
                    bad = t
                inp = s[l][:, :H]
            if loss_on == "last" and t < T - 1:
                continue
            h = inp
            out = h @ W_o.T + b_o  # (B, O)
            v, dout = loss_forward_backward(out, y[t] if loss_on == "all" else y, loss)
            w = 1.0 / T if loss_on == "all" else 1.0  # the mean over steps
            value += w * v
            dout = w * dout
            dW_o += dout.T @ h
            db_o += dout.sum(axis=0)
            ds = dout @ W_o  # (B, H): dL_t / d h_t of the top layer (c_t reaches the loss only through h_t)
            for m in range(L):
                for k in range(2):
                    g[m][k] += np.einsum("bh,bhp->p", ds, S[L - 1][m][k][:, :H, :])
    grads = {}
    for m in range(L):
        gx, gh = g[m][0].reshape(GH, In[m] + 1), g[m][1].reshape(GH, H + 1)
        grads.update({f"weight_ih_l{m}": gx[:, : In[m]].copy(), f"weight_hh_l{m}": gh[:, :H].copy(),
                      f"bias_ih_l{m}": gx[:, In[m]].copy(), f"bias_hh_l{m}": gh[:, H].copy()})
    grads.update({"readout.weight": dW_o, "readout.bias": db_o})
    return RTRLResult(loss=float(value), grads=grads, memory_bytes=int(held), state_size=n,
                      recurrent_params=recurrent_params(cfg), nonfinite_step=bad)
