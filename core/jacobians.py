"""State Jacobians across time: their norms, spectra, gate products and connectivity.

The state of a layer is s = h (RNN, GRU) or s = [h; c] (LSTM, dimension n = 2H). Everything
is computed in float64 from the forward caches of :func:`core.bptt.layer_forward` (the
parameters are cast), one layer at a time with the layer's inputs held fixed at the forward
activations of the layer below. A one-step Jacobian A_t = d s_t / d s_{t-1} is written in
closed form from the step cache (PyTorch's equations, see :mod:`core.cells`) and kept
factored, so that multiplying a matrix by it is one GEMM (LSTM: two half-size GEMMs):

* RNN:  A = diag(phi') W_hh
* LSTM: with C = diag(g i(1-i)) W_hi + diag(c_{t-1} f(1-f)) W_hf + diag(i(1-g^2)) W_hg = dc_t/dh_{t-1},
  k = o (1 - tanh(c_t)^2):  A = [[diag(tanh(c_t) o(1-o)) W_ho + diag(k) C, diag(k f)], [C, diag(f)]]
* GRU:  A = diag(z) + diag(c_r) W_hr + diag(c_z) W_hz + diag(c_n r) W_hn with
  c_n = (1-z)(1-n^2), c_r = c_n (W_hn h + b_hn) r(1-r), c_z = (h_{t-1} - n) z(1-z)

Running products are renormalised by powers of two with the exponent kept apart, so norms as
small as 1e-300 (or as large as 1e300) are exact; values outside float64's range come out as 0
or inf, NaN states give NaN. Nothing here raises on such data.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .bptt import layer_forward
from .checks import check_index, check_lags, check_layers, check_sequence, check_steps
from .models import Model, check_model

_SUBSPACE = 8  # vectors in the block power iteration
_RTOL = 1e-8  # accepted relative error bound of the top singular value
_MAXIT = 20  # iterations before falling back to a full SVD (a warm start usually needs 1-3)
_SVD_BATCH = 2 ** 22  # matrix entries per batched full SVD call (32 MB)
_TINY = 2.0 ** -500  # entries this far below a renormalised product's scale are set to 0
_FLUSH_EVERY = 4  # steps between those flushes (subnormals only slow the GEMMs down)
_COMPRESS_EVERY = 128  # steps between numerical-rank checks of the running product (one SVD each)
_RANK_RTOL = 2.0 ** -53  # singular values below this times the largest are rounding noise
_PROBES = 4  # random probes following the part of the product that compression dropped
_GUARD_RTOL = 1e-12  # ... which must stay this small relative to the kept part's norm


# ----------------------------------------------------------------------------- validation
def _check_x(model, x):
    """Validate model and x (T, B, input_size), finite reals; return x as float64."""
    check_model(model)
    return check_sequence(x, model.config.input_size).astype(np.float64)


# ----------------------------------------------------------------------------- forward
def _params64(model):
    """Model parameters cast to float64."""
    return {k: np.asarray(v, np.float64) for k, v in model.params.items()}


def _layers(model, x, p):
    """Yield each layer's :class:`core.bptt.LayerCache`, feeding each layer the one below's states."""
    cfg, inp = model.config, x
    for l in range(cfg.num_layers):
        inp, cache = layer_forward(cfg.arch, cfg.nonlinearity, inp, p[f"weight_ih_l{l}"], p[f"weight_hh_l{l}"],
                                   p[f"bias_ih_l{l}"], p[f"bias_hh_l{l}"])
        yield cache


def _state_size(model):
    """n: H, or 2H for the LSTM's [h; c]."""
    H = model.config.hidden_size
    return 2 * H if model.config.arch == "lstm" else H


# ----------------------------------------------------------------------------- step Jacobians
def _shared_mul(M, W):
    """M (B, K, n) @ W (n, m) as one (B K, n) x (n, m) GEMM (a broadcast matmul runs B small ones)."""
    B, K, n = M.shape
    return (M.reshape(B * K, n) @ W).reshape(B, K, W.shape[1])


class RNNStepLin(NamedTuple):
    """d h_t / d m = diag(d) W for an RNN step."""

    d: np.ndarray  # (B, H) phi'(a_t)
    W: np.ndarray  # (H, m)

    def right_mul(self, M):
        """M (B, K, H) @ diag(d) W -> (B, K, m)."""
        return _shared_mul(M * self.d[:, None, :], self.W)

    def dense(self):
        """The (B, H, m) matrix."""
        return self.d[:, :, None] * self.W


class LSTMStepLin(NamedTuple):
    """d [h_t; c_t] / d m of an LSTM step, factored: C = dc_t / dm,
    dh_t / dm = diag(co) W_o + diag(k) C, and (recurrent only) d/dc_{t-1} = [diag(k f); diag(f)]."""

    co: np.ndarray  # (B, H) tanh(c_t) o (1 - o)
    k: np.ndarray  # (B, H) o (1 - tanh(c_t)^2)
    f: np.ndarray | None  # (B, H) forget gate, None for the input Jacobian (no c_{t-1} column)
    W_o: np.ndarray  # (H, m) output-gate rows of W
    C: np.ndarray  # (B, H, m)

    def right_mul(self, M):
        """M (B, K, 2H) @ the Jacobian -> (B, K, m) without forming the 2H x 2H matrix."""
        H = self.co.shape[1]
        M_h = M[..., :H]
        Q = M_h * self.k[:, None, :]  # cotangent reaching c_t: through h_t and directly
        Q += M[..., H:]
        left = _shared_mul(M_h * self.co[:, None, :], self.W_o)
        left += Q @ self.C
        if self.f is None:
            return left
        return np.concatenate([left, Q * self.f[:, None, :]], axis=-1)

    def dense(self):
        """The (B, 2H, m) matrix (m = 2H for the recurrent Jacobian)."""
        co, k, f, W_o, C = self
        B, H, _m = C.shape
        top = co[:, :, None] * W_o + k[:, :, None] * C
        if f is None:
            return np.concatenate([top, C], axis=1)
        A = np.zeros((B, 2 * H, 2 * H))
        idx = np.arange(H)
        A[:, :H, :H] = top
        A[:, H:, :H] = C
        A[:, idx, H + idx] = k * f
        A[:, H + idx, H + idx] = f
        return A


class DenseStepLin(NamedTuple):
    """A step Jacobian held as its full (B, n, m) matrix (GRU)."""

    A: np.ndarray

    def right_mul(self, M):
        """M (B, K, n) @ A -> (B, K, m)."""
        return M @ self.A

    def dense(self):
        """The (B, n, m) matrix."""
        return self.A


def _step_lin(arch, nonlinearity, step, W, recurrent):
    """Factored d s_t / d m from a step cache: m = s_{t-1} (W = W_hh) or the input (W = W_ih)."""
    if arch == "rnn":
        h = step.h
        d = 1.0 - h * h if nonlinearity == "tanh" else np.where(np.isnan(h), np.nan, h > 0)  # relu'(NaN) = NaN
        return RNNStepLin(d, W)
    if arch == "lstm":
        H = step.h_prev.shape[1]
        gates, tc = step.gates, step.tanh_c
        i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
        C = (g * i * (1.0 - i))[:, :, None] * W[:H]  # (B, H, m) = dc_t / dm
        C += (step.c_prev * f * (1.0 - f))[:, :, None] * W[H:2 * H]
        C += (i * (1.0 - g * g))[:, :, None] * W[2 * H:3 * H]
        return LSTMStepLin(tc * o * (1.0 - o), o * (1.0 - tc * tc), f if recurrent else None, W[3 * H:], C)
    h_prev, gates, hn = step.h_prev, step.gates, step.hn
    H = h_prev.shape[1]
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    cn = (1.0 - z) * (1.0 - n * n)
    A = (cn * hn * r * (1.0 - r))[:, :, None] * W[:H]  # (B, H, m)
    A += ((h_prev - n) * z * (1.0 - z))[:, :, None] * W[H:2 * H]
    A += (cn * r if recurrent else cn)[:, :, None] * W[2 * H:]
    if recurrent:
        idx = np.arange(H)
        A[:, idx, idx] += z
    return DenseStepLin(A)


# ----------------------------------------------------------------------------- spectral norm
def _start_basis(B, n):
    """Deterministic random orthonormal (B, n, k) start for the block power iteration."""
    k = min(n, _SUBSPACE)
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((n, k)))[0]
    return np.repeat(U[None], B, axis=0)


def _top_singular_value(P, U):
    """sigma_max of each finite P[b] (B, n, m) by block power iteration on P P^T from U (B, n, k).

    Rayleigh-Ritz on span(U) gives Ritz values s_1 >= s_2 (lower bounds) and the top triplet
    (u, s_1, x) with P^T u = s_1 x; with r = ||P x - s_1 u||, s_1 is within r of a singular
    value and, with a gap, within r^2 / (s_1 - s_2). Accept when either is <= _RTOL s_1; after
    _MAXIT iterations fall back to a full SVD. Returns (sigma (B,), basis to warm-start with).
    """
    Pt = P.transpose(0, 2, 1)
    for _ in range(_MAXIT):
        W = Pt @ U  # (B, m, k)
        c = np.max(np.abs(W), axis=(1, 2))
        c[c == 0] = 1.0
        W /= c[:, None, None]
        lam, Y = np.linalg.eigh(W.transpose(0, 2, 1) @ W)  # Ritz values^2, ascending (k x k)
        sigma = c * np.sqrt(np.maximum(lam[:, -1], 0.0))
        Z = P @ (W @ Y[:, :, ::-1])  # (B, n, k): P P^T U Y, the next basis; column 0 = s1 c P x1
        u1 = (U @ Y[:, :, -1:])[..., 0]
        s1 = sigma / c
        res = np.linalg.norm(Z[:, :, 0] / np.where(s1 > 0, s1, 1.0)[:, None] - sigma[:, None] * u1, axis=1)
        U = _flush(np.linalg.qr(Z)[0])
        gap = sigma - (c * np.sqrt(np.maximum(lam[:, -2], 0.0)) if lam.shape[1] > 1 else 0.0)
        done = (res <= _RTOL * sigma) | (res * res <= _RTOL * sigma * gap)
        if np.all(done):
            return sigma, U
    sigma = sigma.copy()
    for b in np.flatnonzero(~done):  # slow gap: exact SVD, whose vectors restart the iteration
        u, sv, _ = np.linalg.svd(P[b])
        sigma[b], U[b] = sv[0], u[:, :U.shape[2]]
    return sigma, U


def _compress(P, U):
    """Drop the numerically null left directions of the running product P (B, K, m).

    With P = Q S V^T, only the rows S V^T matter for every later ||P A_t ... A_s|| (the products
    multiply P from the right and Q is orthonormal). Directions whose singular value is below
    _RANK_RTOL times the largest are dropped: P becomes (B, r, m), r = the largest numerical
    rank in the batch, so later steps cost r / K as much (products of contracting step
    Jacobians lose rank quickly). The dropped part D can still grow faster than the rest later
    (e.g. an identity-initialised RNN, whose step Jacobians are diagonal), so the caller follows
    it with _PROBES Gaussian probes Z = G D (E ||Z R||_F^2 = ||D R||_F^2) and starts again
    without compression if it ever matters.

    Returns (P, U, Z), or None when fewer than K / 4 rows would go.
    """
    K = P.shape[1]
    Q, sv, Vt = np.linalg.svd(P, full_matrices=False)  # (B, K, R), (B, R), (B, R, m)
    top = np.where(sv[:, :1] > 0, sv[:, :1], np.inf)
    r = max(1, int(np.max(np.sum(sv > _RANK_RTOL * top, axis=1))))
    if r > 0.75 * K:
        return None
    G = np.random.default_rng(r).standard_normal((P.shape[0], _PROBES, sv.shape[1] - r)) / np.sqrt(_PROBES)
    Z = (G * sv[:, None, r:]) @ Vt[:, r:]  # (B, p, m): probes of the dropped part
    U = np.linalg.qr(Q[:, :, :r].transpose(0, 2, 1) @ U)[0][:, :, : min(r, U.shape[2])]  # new coordinates
    return _flush(sv[:, :r, None] * Vt[:, :r]), U, _flush(Z)


def _nonfinite(P):
    """(B,) True where P[b] (B, n, m) holds inf or NaN: one summing pass, and an exact check only
    where that sum is not finite (a sum of finite entries can overflow)."""
    out = ~np.isfinite(P.sum(axis=(1, 2)))
    if np.any(out):
        out[out] = ~np.all(np.isfinite(P[out]), axis=(1, 2))
    return out


def _flush(a):
    """Zero entries below _TINY in place: subnormal numbers make a GEMM ~10x slower."""
    a[np.abs(a) < _TINY] = 0.0
    return a


def _norm_rows(G):
    """Overflow/underflow-safe 2-norm of each row of G (R, c)."""
    m = np.max(np.abs(G), axis=1)
    safe = np.where(m > 0, m, 1.0)
    return m * np.sqrt(np.sum((G / safe[:, None]) ** 2, axis=1))


def _row_col_norms(P, s):
    """(rows, cols): the 2-norm of every row and column of each P[b] (B, n, m), given s (B,), an
    estimate of each ||P[b]||_2 (>= every row and column norm up to rounding). Squares directly
    while every s lies in [2^-400, 2^400], where the rows and columns near s cannot overflow or
    underflow (those far below s do not matter to the caller), else scaled (:func:`_norm_rows`)."""
    B = P.shape[0]
    if np.all((s >= 2.0 ** -400) & (s <= 2.0 ** 400)):
        sq = P * P
        return np.sqrt(sq.sum(axis=2)), np.sqrt(sq.sum(axis=1))
    return (_norm_rows(P.reshape(-1, P.shape[2])).reshape(B, -1),
            _norm_rows(P.transpose(0, 2, 1).reshape(-1, P.shape[1])).reshape(B, -1))


def _step_norms(nonlinearity, steps, W_hh, first=0):
    """(T - first, B) ||A_t||_2 of an RNN's step Jacobians A_t = diag(phi'_t) W_hh: the largest
    eigenvalue of A A^T (batched eigvalsh, ~3x faster than an SVD; each A is scaled by its
    largest entry first so the squares neither underflow nor overflow). NaN where A_t is not finite."""
    B, n = steps[0].h_prev.shape[0], W_hh.shape[1]
    which = list(range(first, len(steps)))
    chunk = max(1, _SVD_BATCH // (B * n * n))
    out = []
    for i0 in range(0, len(which), chunk):
        A = np.stack([_step_lin("rnn", nonlinearity, steps[t], W_hh, True).dense() for t in which[i0:i0 + chunk]])
        m = np.max(np.abs(A), axis=(2, 3), keepdims=True)  # (c, B, 1, 1); NaN if any NaN
        ok = np.isfinite(m[..., 0, 0])
        m = np.where(ok[..., None, None] & (m > 0), m, 1.0)
        A = np.where(ok[..., None, None], A / m, 0.0)
        lam = np.linalg.eigvalsh(A @ A.swapaxes(-1, -2))[..., -1]
        out.append(np.where(ok, np.sqrt(np.maximum(lam, 0.0)) * m[..., 0, 0], np.nan))
    return np.concatenate(out) if out else np.empty((0, B))


def _step_singular_values(arch, nonlinearity, steps, W_hh, first=0, which=None):
    """(len(which), B, n) singular values of A_t for t in ``which`` (default: t >= first) by
    batched full SVDs; NaN if not finite."""
    B, n = steps[0].h_prev.shape[0], (2 if arch == "lstm" else 1) * W_hh.shape[1]
    which = list(range(first, len(steps))) if which is None else list(which)
    chunk = max(1, _SVD_BATCH // (B * n * n))  # steps per SVD call
    out = []
    for i0 in range(0, len(which), chunk):
        A = np.stack([_step_lin(arch, nonlinearity, steps[t], W_hh, True).dense()
                      for t in which[i0:i0 + chunk]])  # (c, B, n, n)
        ok = np.all(np.isfinite(A), axis=(2, 3))
        A[~ok] = 0.0
        vals = np.linalg.svd(A, compute_uv=False)
        vals[~ok] = np.nan
        out.append(vals)
    return np.concatenate(out) if out else np.empty((0, B, n))


# ----------------------------------------------------------------------------- public API
def _checked_top_singular_value(P, U, bad):
    """:func:`_top_singular_value`, then a check that no direction was missed.

    A warm start that is an invariant subspace (e.g. for the diagonal Jacobians of an
    identity-initialised RNN) never sees another direction overtake it. Every row and column
    norm is a lower bound of sigma_max; one above the estimate means the iteration missed a
    direction: it starts again with that row's and column's directions. ``bad`` (B,) marks
    entries to skip (zeroed non-finite products)."""
    s, U = _top_singular_value(P, U)
    rows, cols = _row_col_norms(P, s)
    missed = (np.maximum(rows.max(axis=1), cols.max(axis=1)) > s * (1 + 1e-12)) & ~bad
    if np.any(missed):
        b = np.flatnonzero(missed)
        U[b, :, -1] = 0.0
        U[b, rows[b].argmax(axis=1), -1] = 1.0
        if U.shape[2] > 1:
            c = P[b, :, cols[b].argmax(axis=1)]  # (b, K) the largest column
            U[b, :, -2] = c / np.maximum(_norm_rows(c), _TINY)[:, None]
        U[b] = np.linalg.qr(U[b])[0]
        s, U = _top_singular_value(P, U)
    return s, U


def _product_norms(lin_at, T, B, n, J, stop=0):
    """J[t] = ||A_{T-1} ... A_{t+1}||_2 for t = T-2 .. stop (see :func:`jacobian_norms`); ``lin_at(t)``
    gives step t's factored Jacobian. Compression (:func:`_compress`) is undone by a restart
    from the first compressed step, without compression, if the dropped part ever grows to
    _GUARD_RTOL of the kept one."""
    P = np.repeat(np.eye(n)[None], B, axis=0)  # true product = P * 2**E
    E = np.zeros(B, np.int64)
    bad = np.zeros(B, bool)
    U = _start_basis(B, n)
    Z, saved, compress, resumed, t = None, None, True, False, T - 2
    while t >= stop:
        if not resumed:
            lin = lin_at(t + 1)
            P = lin.right_mul(P)
            bad |= _nonfinite(P)
            P[bad] = 0.0
            if Z is not None:
                Z = lin.right_mul(Z)
                Z[bad] = 0.0
        resumed = False
        if compress and (T - 2 - t) % _COMPRESS_EVERY == _COMPRESS_EVERY - 1 and P.shape[1] > _SUBSPACE:
            state = (t, P.copy(), E.copy(), bad.copy(), U.copy())
            done = _compress(P, U)
            if done is not None:
                saved = saved or state
                P, U, z = done
                Z = z if Z is None else np.concatenate([Z, z], axis=1)
        s, U = _checked_top_singular_value(P, U, bad)
        if Z is not None and np.any(np.sqrt(np.sum(Z * Z, axis=(1, 2))) > _GUARD_RTOL * s):
            t, P, E, bad, U = saved  # the dropped directions matter here: redo without dropping
            Z, saved, compress, resumed = None, None, False, True
            continue
        J[t] = np.where(bad, np.nan, np.ldexp(s, E))
        e = np.frexp(s)[1]
        P = np.ldexp(P, -e[:, None, None], out=P)
        if (T - 2 - t) % _FLUSH_EVERY == 0:
            _flush(P)
        if Z is not None:
            Z = _flush(np.ldexp(Z, -e[:, None, None]))
        E += e
        t -= 1


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
    at a relative error bound of 1e-8 (observed errors 1e-15 to 1e-9) and falls back to a
    full SVD when the top singular values are clustered (e.g. near-orthogonal W_hh in the
    first steps). Every 128 steps the product drops its numerically null left directions
    (singular values below 2^-53 of the largest, see :func:`_compress`), guarded by random
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
