"""A slow, step-by-step reference forward pass used by the finite-difference tests.

It can add a perturbation to any hidden/cell state after it is computed, and it implements
truncation as the surrogate function whose exact gradient truncated BPTT computes: the state
entering each chunk is replaced by its value from an unperturbed base run (a constant).
"""
import numpy as np

from core import cells, loss_forward_backward


def sigmoid(a):
    """The logistic function, written as the cells compute it (no overflow warning for large |a|)."""
    return 0.5 * (np.tanh(0.5 * a) + 1.0)


def run(model, x, y, loss, loss_on, truncate=None, perturb=None, boundary=None):
    """Loss of ``model`` on (x, y). perturb: (kind 'h'|'c', layer, t, delta (B, H)).

    boundary: dict (layer, t) -> (h, c) states to feed at chunk starts (from a base run);
    returns (loss, states) where states[(l, t)] = (h, c) entering step t of layer l.
    """
    cfg, p = model.config, model.params
    T, B, _ = x.shape
    H = cfg.hidden_size
    inp = x
    states = {}
    for l in range(cfg.num_layers):
        W_ih, W_hh = p[f"weight_ih_l{l}"], p[f"weight_hh_l{l}"]
        b_ih, b_hh = p[f"bias_ih_l{l}"], p[f"bias_hh_l{l}"]
        h = np.zeros((B, H))
        c = np.zeros((B, H))
        out = np.empty((T, B, H))
        for t in range(T):
            if truncate and t % truncate == 0 and t > 0 and boundary is not None:
                h, c = boundary[(l, t)]
            states[(l, t)] = (h.copy(), c.copy())
            a_x = inp[t] @ W_ih.T + b_ih
            if cfg.arch == "rnn":
                h, _ = cells.rnn_step_forward(a_x, h, W_hh, b_hh, cfg.nonlinearity)
            elif cfg.arch == "lstm":
                h, c, _ = cells.lstm_step_forward(a_x, h, c, W_hh, b_hh)
            else:
                h, _ = cells.gru_step_forward(a_x, h, W_hh, b_hh)
            if perturb is not None and perturb[1] == l and perturb[2] == t:
                if perturb[0] == "h":
                    h = h + perturb[3]
                else:
                    # c_t feeds h_t too: recompute h_t = o * tanh(c_t) with the perturbed c
                    c = c + perturb[3]
                    o = sigmoid(a_x[:, 3 * H :] + states[(l, t)][0] @ W_hh[3 * H :].T + b_hh[3 * H :])
                    h = o * np.tanh(c)
            out[t] = h
        inp = out
    logits = inp @ p["readout.weight"].T + p["readout.bias"]
    scored = logits if loss_on == "all" else logits[-1]
    value, _ = loss_forward_backward(scored, y, loss)
    return value, states
