"""Reference Jacobians for the tests of core.jacobians, core.spectral, core.steplin and core.connectivity:
the cells stepped one at a time, and central finite differences of a later state in an earlier one
(float64)."""
import itertools

import numpy as np

import core
from core import cells

ARCHS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
CASES = list(itertools.product(ARCHS, [1, 2]))
IDS = [f"{a}-{nl}-L{l}" for (a, nl), l in CASES]
T, B, I, H, O = 7, 2, 3, 4, 2
EPS = 1e-6


def make_case(rng, arch, nonlinearity, layers, T=T, B=B, H=H, **kw):
    model = core.build(arch, input_size=I, hidden_size=H, output_size=O, num_layers=layers,
                       nonlinearity=nonlinearity, seed=int(rng.integers(1000)), **kw)
    if nonlinearity == "relu":  # keep relu units away from their kink and the state bounded
        for k, v in model.params.items():
            model.params[k] = v * 0.8
    return model, rng.standard_normal((T, B, I))


# ----------------------------------------------------------------------------- reference
def layer_inputs(model, x):
    """Inputs of every layer (x, then the hidden states of the layer below), step by step."""
    cfg = model.config
    inputs, inp = [], x
    for l in range(cfg.num_layers):
        inputs.append(inp)
        h = c = np.zeros((x.shape[1], cfg.hidden_size))
        out = []
        for t in range(x.shape[0]):
            h, c = step(model, l, inp[t], h, c)
            out.append(h)
        inp = np.stack(out)
    return inputs, inp


def step(model, l, x_t, h, c):
    """One step of layer l: (h, c) -> (h', c') (c unused except for the LSTM)."""
    cfg, p = model.config, model.params
    a_x = x_t @ p[f"weight_ih_l{l}"].T + p[f"bias_ih_l{l}"]
    W_hh, b_hh = p[f"weight_hh_l{l}"], p[f"bias_hh_l{l}"]
    if cfg.arch == "rnn":
        return cells.rnn_step_forward(a_x, h, W_hh, b_hh, cfg.nonlinearity)[0], c
    if cfg.arch == "lstm":
        h, c, _ = cells.lstm_step_forward(a_x, h, c, W_hh, b_hh)
        return h, c
    return cells.gru_step_forward(a_x, h, W_hh, b_hh)[0], c


def states(model, l, inp):
    """States s_t (T, B, n) of layer l fed with inp: h, or [h; c] for the LSTM."""
    Hs = model.config.hidden_size
    h = c = np.zeros((inp.shape[1], Hs))
    out = []
    for t in range(inp.shape[0]):
        h, c = step(model, l, inp[t], h, c)
        out.append(np.concatenate([h, c], 1) if model.config.arch == "lstm" else h)
    return np.stack(out)


def run_from(model, l, inp, t0, s, t1):
    """State at step t1 of layer l when its state at step t0 is replaced by s (inputs fixed)."""
    Hs = model.config.hidden_size
    h, c = s[:, :Hs], s[:, Hs:] if model.config.arch == "lstm" else None
    for t in range(t0 + 1, t1 + 1):
        h, c = step(model, l, inp[t], h, c)
    return np.concatenate([h, c], 1) if model.config.arch == "lstm" else h


def fd_state_jacobian(model, l, inp, s_t0, t0, t1):
    """(B, n, n) central-difference d s_{t1} / d s_{t0}, each batch element separately."""
    n = s_t0.shape[1]
    jac = np.empty((s_t0.shape[0], n, n))
    for j in range(n):
        d = np.zeros_like(s_t0)
        d[:, j] = EPS
        plus, minus = run_from(model, l, inp, t0, s_t0 + d, t1), run_from(model, l, inp, t0, s_t0 - d, t1)
        jac[:, :, j] = (plus - minus) / (2 * EPS)
    return jac


def outputs(model, x):
    _, top = layer_inputs(model, x)
    return top @ model.params["readout.weight"].T + model.params["readout.bias"]


def relu_identity(a, Hs=6, layers=1, T=40, seed=0):
    """relu RNN with W_hh = a I, positive input weights and inputs: every unit active."""
    model = core.build("rnn-relu", input_size=I, hidden_size=Hs, output_size=O, num_layers=layers,
                       init="identity", scale=a, seed=seed)
    for l in range(layers):
        model.params[f"weight_ih_l{l}"] = np.abs(model.params[f"weight_ih_l{l}"]) + 0.1
    x = np.random.default_rng(seed).uniform(0.5, 1.0, (T, 2, I))
    return model, x
