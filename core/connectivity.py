"""Distill-style connectivity: how strongly the output at each step depends on the input at each earlier step."""
from __future__ import annotations

import numpy as np

from .checks import check_index, check_lags, check_steps
from .models import Model
from .spectral import _flush, _norm_rows
from .steplin import _check_x, _layers, _params64, _state_size, _step_lin


def connectivity(model: Model, x, batch_index=0, outputs=None, lags=None) -> np.ndarray:
    """Distill-style connectivity: how strongly the output at step t depends on the input at s.

    Parameters
    ----------
    model : :class:`core.RNN`, :class:`core.LSTM` or :class:`core.GRU`.
    x : (T, B, input_size) inputs.
    batch_index : int in [0, B), the sequence to analyse.
    outputs : None for every output step, or increasing output steps in [0, T) (rows of C): the
        cost is proportional to how many there are (a view that bins T outputs into k rows can
        ask for one output per bin).
    lags : None for every input step, or an int K >= 0: only the input steps s >= T-1-K are
        computed (the sweep back over s stops there; the cost is proportional to K + 1), the
        earlier columns are NaN.

    Returns
    -------
    C : (T, T) float64 (or (len(outputs), T)), ``C[t, s] = ||d y_t / d x_s||_F`` for s <= t (y_t = readout output,
        (O,); x_s the input, (I,)), through all layers and time; NaN for s > t (no dependence,
        shown as empty in a heatmap). Norms are kept per output step with a separate power of
        two exponent, so 1e-300 survives; true underflow gives 0.

    Notes
    -----
    Reverse mode for all output steps at once: going back over s, the cotangents of every
    output t >= s on each layer's state are one ((T-s) O, n) matrix, multiplied by the step
    Jacobian (and into the layer below by the input Jacobian). Cost ~ L T^2 O n^2 / 2 (times
    len(outputs) / T when only some output steps are asked for) and memory L T O n floats: 15-50 ms
    at T = 100, H = 32, two layers, O = 2; 5 s (RNN) to 11 s (LSTM) at T = 1000, H = 256, one layer,
    O = 1 (benchmarks/bench_jacobians.py).

    .. math:: C_{ts} = \\Big\\|W_o \\frac{\\partial h^{L}_t}{\\partial x_s}\\Big\\|_F
    """
    x = _check_x(model, x)
    b = check_index("batch_index", batch_index, x.shape[1])
    cfg, p = model.config, _params64(model)
    arch, nl, L = cfg.arch, cfg.nonlinearity, cfg.num_layers
    T = x.shape[0]
    W_o = p["readout.weight"]
    O, H = W_o.shape
    n = _state_size(model)
    out_t = np.array(check_steps(outputs, T, "outputs"))
    first = check_lags(lags, T)
    K = len(out_t)
    C = np.full((K, T), np.nan)
    with np.errstate(all="ignore"):
        layers = list(_layers(model, x[:, b:b + 1], p))
        lam = [np.zeros((1, K * O, n)) for _ in range(L)]  # row j*O + o: cotangent of y_{out_t[j]}[o]
        E = np.zeros(K, np.int64)  # exponent of row block j, shared by all layers
        for s in range(T - 1, first - 1, -1):
            j0 = int(np.searchsorted(out_t, s))  # rows j >= j0 are outputs at steps >= s
            if j0 == K:
                continue
            new = out_t[j0] == s  # output s starts here
            r0, r1 = j0 * O, (j0 + new) * O
            for l in range(L - 1, -1, -1):
                cache = layers[l]
                if s < T - 1 and r1 < K * O:
                    lin = _step_lin(arch, nl, cache.steps[s + 1], cache.W_hh, True)
                    lam[l][:, r1:] = lin.right_mul(lam[l][:, r1:])
                lam[l][:, r0:r1] = 0.0
                if l == L - 1:
                    lam[l][0, r0:r1, :H] = W_o if new else 0.0
                else:
                    up = layers[l + 1]
                    lam[l][:, r0:, :H] += _step_lin(arch, nl, up.steps[s], up.W_ih, False).right_mul(lam[l + 1][:, r0:])
            dx = _step_lin(arch, nl, layers[0].steps[s], layers[0].W_ih, False).right_mul(lam[0][:, r0:])
            C[j0:, s] = np.ldexp(_norm_rows(dx.reshape(K - j0, -1)), E[j0:])
            # renormalise each output step's cotangents (all layers) by a power of two
            big = np.max([np.max(np.abs(m[0, r0:]).reshape(K - j0, -1), axis=1) for m in lam], axis=0)
            e = np.where(np.isfinite(big), np.frexp(big)[1], 0)
            scale = np.repeat(-e, O)[None, :, None]
            for m in lam:
                m[:, r0:] = _flush(np.ldexp(m[:, r0:], scale))
            E[j0:] += e
    return C
