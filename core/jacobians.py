"""State Jacobians across time: their norms, spectra and gate products.

The state of a layer is s = h (RNN, GRU) or s = [h; c] (LSTM, dimension n = 2H). Everything
is computed in float64, one layer at a time with the layer's inputs held fixed at the forward
activations of the layer below, from the closed-form, factored one-step Jacobians
A_t = d s_t / d s_{t-1} of :mod:`core.steplin` (their formulas are there).

Running products are renormalised by powers of two with the exponent kept apart, so norms as
small as 1e-300 (or as large as 1e300) are exact; values outside float64's range come out as 0
or inf, NaN states give NaN. Nothing here raises on such data.
"""
from __future__ import annotations

import numpy as np

from .checks import check_index, check_lags, check_layers, check_steps
from .models import Model, check_model
from .spectral import _product_norms, _step_norms, _step_singular_values
from .steplin import _check_x, _layers, _params64, _state_size, _step_lin


def jacobian_norms(model: Model, x, lags=None, layers=None) -> np.ndarray:
    """Spectral norm of the state Jacobian from every step to the last one.

    Parameters
    ----------
    model : :class:`core.RNN`, :class:`core.LSTM` or :class:`core.GRU`.
    x : (T, B, input_size) inputs (finite).
    lags : None for every step, or an int K >= 0: only the steps t >= T-1-K are computed
        (the products of at most K step Jacobians; the cost is proportional to K), the
        earlier entries are NaN.
    layers : None for every layer, or layer indices: only those are computed, the others are NaN
        (the forward pass still runs through every layer).

    Returns
    -------
    J : (L, T, B) float64, ``J[l, t, b]`` = ||d s^l_{T-1} / d s^l_t||_2 for batch element b,
        where s = h (RNN, GRU) or s = [h; c] (LSTM) and the layer's inputs are held fixed at
        their forward values. ``J[:, T-1] = 1``. 0 / inf / NaN are data (underflow, overflow,
        NaN states), never an exception.

    Notes
    -----
    The product is accumulated backward, one step Jacobian per step (one GEMM, or two half
    size ones for the LSTM), batched over B and renormalised by powers of two (entries 2^-500
    below its scale are dropped to keep subnormal numbers out of the GEMMs). Its largest
    singular value comes from a block power iteration (8 vectors) warm-started from the
    previous step's dominant left singular subspace, which settles as t decreases; it stops
    at a relative error bound of 1e-8 (observed errors 1e-15 to 1e-9) and falls back to the
    exact eigenproblem of P P^T when the top singular values are clustered (e.g. near-orthogonal
    W_hh in the first steps). Every 128 steps the product drops its numerically null left directions
    (singular values below 2^-53 of the largest, see :func:`core.spectral._compress`), guarded by random
    probes of what was dropped: contracting products lose rank, so long sequences get cheaper
    as they go (3x for an LSTM at T = 1000, H = 256). Cost ~ L T B n^3 at most (n = H, or 2H for LSTM):
    1.6-2x the bare running product of 256 x 256 matrices for an LSTM at T = 500, H = 128
    (benchmarks/bench_jacobians.py); up to ~10x for a near-orthogonal tanh RNN with H = 256. Memory ~ 4 B n^2 floats.

    .. math:: J_t = \\Big\\| \\prod_{s=T-1}^{t+1} \\frac{\\partial s_s}{\\partial s_{s-1}} \\Big\\|_2,
              \\quad P_t = P_{t+1} A_{t+1}, \\; P_{T-1} = I
    """
    x = _check_x(model, x)
    cfg = model.config
    T, B, _ = x.shape
    n = _state_size(model)
    stop = check_lags(lags, T)
    chosen = check_layers(layers, cfg.num_layers)
    J = np.full((cfg.num_layers, T, B), np.nan)
    with np.errstate(all="ignore"):
        for l, cache in enumerate(_layers(model, x, _params64(model))):
            if l not in chosen:
                continue
            J[l, T - 1] = 1.0
            _product_norms(
                lambda t, c=cache: _step_lin(cfg.arch, cfg.nonlinearity, c.steps[t], c.W_hh, True), T, B, n, J[l], stop)
            if l == max(chosen):
                break
    return J


def step_jacobian_singular_values(model: Model, x, batch_index=0, steps=None, layers=None) -> np.ndarray:
    """All singular values of every one-step state Jacobian, for one batch element.

    Parameters
    ----------
    model : :class:`core.RNN`, :class:`core.LSTM` or :class:`core.GRU`.
    x : (T, B, input_size) inputs.
    batch_index : int in [0, B), the sequence to analyse.
    steps : None for every step, or increasing step indices in [0, T) to analyse only those
        (the forward pass still runs over the whole sequence).
    layers : None for every layer, or layer indices to analyse only those (the others are NaN).

    Returns
    -------
    sv : (L, T, n) float64, descending (T = len(steps) when given), n = H (RNN, GRU) or 2H (LSTM).
        Step 0 is the Jacobian with respect to the (zero) initial state. Steps with NaN states give NaN rows.

    Notes
    -----
    One full SVD per step and layer (batched): cost ~ L T n^3, about 0.5 s per 100 steps at
    n = 256 and 4 s at n = 512.

    .. math:: \\sigma_1 \\ge \\dots \\ge \\sigma_n \\text{ of } A_t = \\frac{\\partial s_t}{\\partial s_{t-1}}
    """
    x = _check_x(model, x)
    b = check_index("batch_index", batch_index, x.shape[1])
    cfg = model.config
    T = x.shape[0]
    which = check_steps(steps, T)
    chosen = check_layers(layers, cfg.num_layers)
    sv = np.full((cfg.num_layers, len(which), _state_size(model)), np.nan)
    with np.errstate(all="ignore"):
        for l, cache in enumerate(_layers(model, x[:, b:b + 1], _params64(model))):
            if l in chosen:
                sv[l] = _step_singular_values(cfg.arch, cfg.nonlinearity, cache.steps, cache.W_hh, which=which)[:, 0]
            if l == max(chosen):
                break
    return sv


def weight_singular_values(model: Model, layers=None) -> np.ndarray:
    """Singular values of each layer's recurrent weight matrix.

    Parameters
    ----------
    model : :class:`core.RNN`, :class:`core.LSTM` or :class:`core.GRU`.
    layers : None for every layer, or layer indices: only those are decomposed, the others are NaN.

    Returns
    -------
    sv : (L, H) float64, descending: of ``weight_hh_l{l}``, (H, H) for the RNN and the whole
        stacked (G*H, H) matrix for LSTM (G = 4) and GRU (G = 3).

    .. math:: \\|\\partial h_t / \\partial h_{t-1}\\|_2 \\le \\gamma\\, \\sigma_1(W_{hh})
    """
    check_model(model)
    chosen = check_layers(layers, model.config.num_layers)
    p = _params64(model)
    H = model.config.hidden_size
    return np.stack([np.linalg.svd(p[f"weight_hh_l{l}"], compute_uv=False) if l in chosen else np.full(H, np.nan)
                     for l in range(model.config.num_layers)])


def gamma_bound(model: Model) -> float:
    """Bound gamma on |phi'| in Pascanu et al. (2013): vanishing is certain if sigma_1 < 1/gamma.

    Parameters
    ----------
    model : :class:`core.RNN`, :class:`core.LSTM` or :class:`core.GRU`.

    Returns
    -------
    gamma : float. 1.0 for tanh and relu RNNs (max |tanh'| = max |relu'| = 1). For LSTM and GRU
        also 1.0: the largest derivative on the recurrent path is that of the tanh candidate
        (g, n); the sigmoid gates' 1/4 would understate it. The Pascanu condition is sufficient
        for a plain RNN only: the LSTM cell and the GRU carry path add the gate itself (not
        W_hh) to the step Jacobian, which is why gating helps.

    .. math:: \\Big\\|\\frac{\\partial h_t}{\\partial h_{t-1}}\\Big\\|_2 \\le
              \\|W_{hh}\\|_2 \\, \\gamma, \\quad \\sigma_1(W_{hh}) < 1/\\gamma \\Rightarrow
              \\text{vanishing}
    """
    check_model(model)
    return 1.0


def gate_products(model: Model, x, lags=None, layers=None) -> np.ndarray:
    """Fraction of the state carried from step t to the last step: why gating helps.

    Parameters
    ----------
    model : :class:`core.RNN`, :class:`core.LSTM` or :class:`core.GRU`.
    x : (T, B, input_size) inputs.
    lags : None for every step, or an int K >= 0: only the steps t >= T-1-K are computed, the
        earlier entries are NaN (for the RNN the cost is proportional to K).
    layers : None for every layer, or layer indices: only those are computed, the others are NaN.

    Returns
    -------
    G : (L, T, B) float64, ``G[:, T-1] = 1``.

        * LSTM: arithmetic mean over units of the per-unit product of forget gates
          prod_{s=t+1}^{T-1} f_s (the fraction of c_t still in c_{T-1} through the cell path).
        * GRU: the same with the carry gate z (PyTorch: h_s = (1 - z_s) n_s + z_s h_{s-1}, so
          z is the fraction of h_{s-1} kept; the 1 - z of the other convention).
        * RNN: prod_{s=t+1}^{T-1} ||A_s||_2 over the one-step Jacobians A_s = diag(phi'_s) W_hh,
          the upper bound of :func:`jacobian_norms` that a plain RNN has in place of a gate.

    Notes
    -----
    LSTM and GRU: a cumulative product over the cached gates, O(L T B H). RNN: the largest
    singular value of every step Jacobian from the top eigenvalue of A A^T, O(L T B H^3)
    (~2.5 ms per 256 x 256 matrix).

    .. math:: G_t^{\\mathrm{LSTM}} = \\frac{1}{H}\\sum_{j=1}^{H} \\prod_{s=t+1}^{T-1} f_{s,j},
              \\quad G_t^{\\mathrm{RNN}} = \\prod_{s=t+1}^{T-1} \\|A_s\\|_2
    """
    x = _check_x(model, x)
    cfg = model.config
    T, B, _ = x.shape
    H = cfg.hidden_size
    stop = check_lags(lags, T)
    chosen = check_layers(layers, cfg.num_layers)
    G = np.full((cfg.num_layers, T, B), np.nan)
    with np.errstate(all="ignore"):
        for l, cache in enumerate(_layers(model, x, _params64(model))):
            if l not in chosen:
                continue
            steps = cache.steps
            G[l, T - 1] = 1.0
            if cfg.arch == "rnn":  # log ||A_s||_2 for s = T-1 .. stop+1, summed
                log_norm = np.log(_step_norms(cfg.nonlinearity, steps, cache.W_hh, first=stop + 1))
                G[l, stop:T - 1] = np.exp(np.cumsum(log_norm[::-1], axis=0)[::-1])
            elif T > 1:
                gate = np.stack([st.gates[:, H:2 * H] for st in steps[1:]])  # f (LSTM) or z (GRU)
                kept = np.cumprod(gate[::-1], axis=0)[::-1]  # (T-1, B, H): prod_{s=t+1}^{T-1}
                G[l, stop:T - 1] = np.mean(kept, axis=2)[stop:]
            if l == max(chosen):
                break
    return G
