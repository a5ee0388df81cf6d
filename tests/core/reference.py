"""A slow, step-by-step reference forward pass used by the finite-difference tests.

It can perturb any hidden/cell state after it is computed, use another W_hh at any one step (the
untied copies of the contribution map), and it implements truncation as the surrogate function
whose exact gradient truncated BPTT computes: the state entering each chunk is replaced by its value
from an unperturbed base run (a constant).
"""
import numpy as np

from core import cells, loss_forward_backward, step_losses


def sigmoid(a):
    """The logistic function, written as the cells compute it (no overflow warning for large |a|)."""
    return 0.5 * (np.tanh(0.5 * a) + 1.0)


def unroll(model, x, truncate=None, boundary=None, whh_at=None, perturb=None):
    """(logits (T, B, O), states) of ``model`` on x, one step at a time.

    boundary: dict (layer, t) -> (h, c) states to feed at chunk starts t = k * truncate > 0 (from a
    base run). whh_at: dict (layer, t) -> the W_hh that step t of that layer uses instead of the
    model's. perturb: (kind, layer, t, delta (B, H)) applied after step t: kind ``"h"`` adds delta to
    h_t; ``"c"`` adds it to c_t and recomputes h_t = o * tanh(c_t) (c_t feeds h_t too); ``"c-only"``
    adds it to c_t after h_t is computed (only the cell path to later steps sees it).
    states[(l, t)] = (h, c) entering step t of layer l.
    """
    cfg, p = model.config, model.params
    T, B, _ = x.shape
    H = cfg.hidden_size
    whh_at = whh_at or {}
    inp = x
    states = {}
    for l in range(cfg.num_layers):
        W_ih, b_ih, b_hh = p[f"weight_ih_l{l}"], p[f"bias_ih_l{l}"], p[f"bias_hh_l{l}"]
        h = np.zeros((B, H))
        c = np.zeros((B, H))
        out = np.empty((T, B, H))
        for t in range(T):
            if truncate and t % truncate == 0 and t > 0 and boundary is not None:
                h, c = boundary[(l, t)]
            states[(l, t)] = (h.copy(), c.copy())
            W_hh = whh_at.get((l, t), p[f"weight_hh_l{l}"])
            a_x = inp[t] @ W_ih.T + b_ih
            if cfg.arch == "rnn":
                h, _ = cells.rnn_step_forward(a_x, h, W_hh, b_hh, cfg.nonlinearity)
            elif cfg.arch == "lstm":
                h, c, _ = cells.lstm_step_forward(a_x, h, c, W_hh, b_hh)
            else:
                h, _ = cells.gru_step_forward(a_x, h, W_hh, b_hh)
            if perturb is not None and perturb[1] == l and perturb[2] == t:
                kind, delta = perturb[0], perturb[3]
                if kind == "h":
                    h = h + delta
                elif kind == "c":
                    c = c + delta
                    o = sigmoid(a_x[:, 3 * H :] + states[(l, t)][0] @ W_hh[3 * H :].T + b_hh[3 * H :])
                    h = o * np.tanh(c)
                else:
                    c = c + delta
            out[t] = h
        inp = out
    return inp @ p["readout.weight"].T + p["readout.bias"], states


def run(model, x, y, loss, loss_on, truncate=None, perturb=None, boundary=None):
    """(loss, states) of ``model`` on (x, y); the keywords as in :func:`unroll`."""
    logits, states = unroll(model, x, truncate, boundary, perturb=perturb)
    value, _ = loss_forward_backward(logits if loss_on == "all" else logits[-1], y, loss)
    return value, states


def untied_step_losses(model, x, y, loss, loss_on, truncate=None, whh_at=None, boundary=None, perturb=None):
    """((T,) each step's share of the loss, states); the keywords as in :func:`unroll`."""
    logits, states = unroll(model, x, truncate, boundary, whh_at, perturb)
    return step_losses(logits, y, loss, loss_on), states
