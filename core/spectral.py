"""Spectral norms of long products of step Jacobians, exactly and fast (used by :mod:`core.jacobians`).

The running product P_t = A_{T-1} ... A_{t+1} is accumulated one factored step Jacobian at a time
(:mod:`core.steplin`), renormalised by powers of two with the exponent kept apart, so norms as
small as 1e-300 (or as large as 1e300) are exact. Its largest singular value comes from a
warm-started block power iteration with a certified error bound (:func:`_top_singular_value`);
numerically null directions are dropped as the product loses rank (:func:`_compress`).
"""
from __future__ import annotations

import numpy as np

from .steplin import _step_lin

_SUBSPACE = 8  # vectors in the block power iteration
_RTOL = 1e-8  # accepted relative error bound of the top singular value
_MAXIT = 20  # iterations before falling back to an exact eigensolve (a warm start usually needs 1-3)
_SVD_BATCH = 2 ** 22  # matrix entries per batched full SVD call (32 MB)
_TINY = 2.0 ** -500  # entries this far below a renormalised product's scale are set to 0
_FLUSH_EVERY = 4  # steps between those flushes (subnormals only slow the GEMMs down)
_COMPRESS_EVERY = 128  # steps between numerical-rank checks of the running product (one SVD each)
_RANK_RTOL = 2.0 ** -53  # singular values below this times the largest are rounding noise
_PROBES = 4  # random probes following the part of the product that compression dropped
_GUARD_RTOL = 1e-12  # ... which must stay this small relative to the kept part's norm


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
    _MAXIT iterations fall back to the exact eigenproblem of P P^T. Returns (sigma (B,), basis to warm-start with).
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
    for b in np.flatnonzero(~done):  # slow gap: the exact eigenproblem of P P^T, whose vectors restart the iteration
        m = np.max(np.abs(P[b]))
        m = m if m > 0 else 1.0
        Q = P[b] / m  # scaled: the squares neither overflow nor underflow
        lam, V = np.linalg.eigh(Q @ Q.T)  # ascending; the top one to relative rounding (half an SVD's time)
        sigma[b], U[b] = m * np.sqrt(max(lam[-1], 0.0)), V[:, ::-1][:, :U.shape[2]]
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


