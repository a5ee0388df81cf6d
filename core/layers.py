"""One recurrent layer unrolled over a sequence: :func:`layer_forward` / :func:`layer_backward`.

The input projection of every step is one GEMM before the time loop, the loop only does the
recurrent part (:mod:`core.cells`), and the weight gradients are one GEMM after the backward loop.
The gradient arriving at h_t from outside the recurrence (the readout, or the layer above) is kept
apart from the gradient carried back from step t+1. Also the norms the backward pass reports, safe
from underflow of their squares (:func:`safe_norm`, :func:`whh_norms`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import cells


class LayerCache(NamedTuple):
    """What :func:`layer_backward` (and :mod:`core.jacobians`) read from :func:`layer_forward`."""

    arch: str
    x: np.ndarray  # (T, B, I) layer input
    W_ih: np.ndarray  # (G*H, I)
    W_hh: np.ndarray  # (G*H, H)
    hs: np.ndarray  # (T, B, H) hidden states
    h_init: np.ndarray  # (B, H) initial hidden state
    c_init: np.ndarray | None  # (B, H) initial cell state (LSTM), else None
    steps: list  # T step caches: cells.RNNStepCache / LSTMStepCache / GRUStepCache
    c_last: np.ndarray | None  # (B, H) last cell state (LSTM), else None
    gates: np.ndarray | None  # (T, B, 4H) LSTM gates (written over the input projection), else None


def _project(x, W_ih, b):
    """(T, B, G*H) input projection ``x @ W_ih.T + b`` as ONE GEMM: the bias rides along as an extra
    input column of ones, so the large result is written once instead of twice."""
    T, B, I = x.shape
    x1 = np.empty((T * B, I + 1), x.dtype)
    x1[:, :I] = x.reshape(T * B, I)
    x1[:, I] = 1.0
    W1 = np.empty((I + 1, W_ih.shape[0]), x.dtype)
    W1[:I] = W_ih.T
    W1[I] = b
    return (x1 @ W1).reshape(T, B, -1)


def layer_forward(arch, nonlinearity, x, W_ih, W_hh, b_ih, b_hh, h0=None, c0=None):
    """Run one layer over a sequence.

    Parameters
    ----------
    x : (T, B, I) layer input. W_ih (G*H, I), W_hh (G*H, H), b_ih, b_hh (G*H,).
    h0, c0 : (B, H) initial states (zeros if None).

    Returns
    -------
    hs : (T, B, H) hidden states, cache : :class:`LayerCache` for :func:`layer_backward`.
    """
    T, B, _ = x.shape
    H = W_hh.shape[1]
    dtype = x.dtype
    # RNN and LSTM add both biases to the same pre-activation: fold b_hh into the projection
    b = b_ih if arch == "gru" else b_ih + b_hh
    h = np.zeros((B, H), dtype) if h0 is None else h0
    h_init = h
    c = np.zeros((B, H), dtype) if (c0 is None and arch == "lstm") else c0
    c_init = c
    hs = np.empty((T, B, H), dtype)
    steps = [None] * T
    if arch == "lstm":
        # every step writes into preallocated arrays; the gates overwrite the projection in place
        cs, tcs = np.empty((T, B, H), dtype), np.empty((T, B, H), dtype)
        aux, work = np.empty((T, B, 3 * H), dtype), np.empty((B, 4 * H), dtype)
        # halve the i, f, o blocks once here instead of every step (sigmoid(a) = tanh(a / 2) / 2 + 1 / 2)
        half = cells._lstm_gate_affine(dtype, H)[0]
        a_x = _project(x, W_ih * half[:, None], b * half)
        W_hhT = np.ascontiguousarray(W_hh.T * half)
        for t in range(T):
            h, c, steps[t] = cells.lstm_step_forward(a_x[t], h, c, W_hh, None, W_hhT, halved=True,
                                                     out=(a_x[t], cs[t], tcs[t], hs[t], aux[t], work))
        return hs, LayerCache(arch, x, W_ih, W_hh, hs, h_init, c_init, steps, c, a_x)
    a_x = _project(x, W_ih, b)  # (T, B, G*H)
    W_hhT = np.ascontiguousarray(W_hh.T)  # (H, G*H): a faster GEMM operand than the view
    if arch == "rnn":
        for t in range(T):
            h, steps[t] = cells.rnn_step_forward(a_x[t], h, W_hh, None, nonlinearity, W_hhT, out=hs[t])
    else:
        hns, work = np.empty((T, B, H), dtype), np.empty((B, 3 * H), dtype)
        for t in range(T):
            h, steps[t] = cells.gru_step_forward(a_x[t], h, W_hh, b_hh, W_hhT, out=(a_x[t], hns[t], hs[t], work))
    return hs, LayerCache(arch, x, W_ih, W_hh, hs, h_init, c_init, steps, c, None)


def cache_bytes(cache):
    """Bytes of the arrays a layer cache holds for the backward pass (input excluded)."""
    total = cache.hs.nbytes
    for st in cache.steps:
        if cache.arch == "lstm":
            total += st.c_prev.nbytes + st.gates.nbytes + st.tanh_c.nbytes + st.aux.nbytes
        elif cache.arch == "gru":  # (an RNN step's cache holds only h_prev and h, both in hs)
            total += st.gates.nbytes + st.hn.nbytes
    return int(total)


def safe_norm(a, axis):
    """Euclidean norm over ``axis`` without underflow/overflow of the squares (NaN/inf kept)."""
    with np.errstate(all="ignore"):
        r = np.sqrt(np.sum(a * a, axis=axis))
        fi = np.finfo(a.dtype)
        # squares of entries below sqrt(tiny) underflow: redo those slices rescaled
        bad = ~(r >= np.sqrt(fi.tiny) / fi.eps) | np.isinf(r)
        if np.any(bad):
            m = np.max(np.abs(a), axis=axis, keepdims=True)
            scale = np.where((m > 0) & np.isfinite(m), m, 1)
            rs = np.sqrt(np.sum((a / scale) ** 2, axis=axis, keepdims=True)) * scale
            rs = np.squeeze(np.where(np.isfinite(m), rs, m), axis=axis)  # inf stays inf, NaN NaN
            r = np.where(bad, rs, r)
    return r


def whh_norms(da_h, hs, h_init):
    """(T,) ||da_h[t].T @ h[t-1]||_F (h[-1] = h_init): each step's share of dW_hh."""
    return outer_sum_norms(da_h, np.concatenate([h_init[None], hs[:-1]], axis=0))


def outer_sum_norms(a, b):
    """(T,) norms ||a[t].T @ b[t]||_F via (B, B) Gram matrices, rescaled where squares underflow."""
    def grams(a, b):
        ga = np.matmul(a, a.transpose(0, 2, 1))  # (T, B, B)
        gb = np.matmul(b, b.transpose(0, 2, 1))
        return np.sqrt(np.maximum(np.sum(ga * gb, axis=(1, 2)), 0.0))

    with np.errstate(all="ignore"):
        r = grams(a, b)
        fi = np.finfo(a.dtype)
        bad = np.flatnonzero(~(r >= (np.sqrt(fi.tiny) / fi.eps) ** 2) | np.isinf(r))
        if bad.size:
            sa = np.max(np.abs(a[bad]), axis=(1, 2), keepdims=True)
            sb = np.max(np.abs(b[bad]), axis=(1, 2), keepdims=True)
            sa_ = np.where((sa > 0) & np.isfinite(sa), sa, 1)
            sb_ = np.where((sb > 0) & np.isfinite(sb), sb, 1)
            rs = grams(a[bad] / sa_, b[bad] / sb_) * sa_[:, 0, 0] * sb_[:, 0, 0]
            rs = np.where(np.isfinite(sa[:, 0, 0] * sb[:, 0, 0]), rs, sa[:, 0, 0] * sb[:, 0, 0])
            r[bad] = rs
    return r


def layer_backward(dh_local, cache, truncate=None, dh_last=None, dc_last=None, t0=0, need_dx=True, consume=False):
    """Backpropagate one layer through time.

    Parameters
    ----------
    dh_local : (T, B, H) gradient arriving at each h_t from outside the recurrence.
    truncate : detach the state before steps k, 2k, ... (None: full BPTT).
    dh_last, dc_last : (B, H) gradient arriving at the last state from later steps (segments).
    t0 : global index of this segment's first step (for the truncation windows).
    need_dx : False skips the input gradient (the first layer's is not needed).
    consume : True lets the LSTM write its gate gradients over the cached gates (16 MB less
        to allocate at T=256, B=32, H=128 in float32); the cache cannot be used again.

    Returns
    -------
    dx : (T, B, I), grads (dW_ih, dW_hh, db_ih, db_hh), stats dict with per-step arrays
    ``dh`` (T, B, H) total dL/dh_t, ``dc_norms`` (T,) or None, ``carried_norms`` (T,),
    ``whh_inputs`` = (da_h, hs, h_init): step t's share of dW_hh is ``da_h[t].T @ h[t-1]``
    (see :func:`whh_norms`), and ``dh0``, ``dc0`` (B, H)
    gradients reaching the initial states.
    """
    arch, x, W_ih, W_hh, hs, h_init, _c_init, steps, _, gates = cache
    T, B, H = hs.shape
    GH = W_hh.shape[0]
    dtype = hs.dtype
    da_x = gates if (consume and gates is not None) else np.empty((T, B, GH), dtype)
    da_h = da_x if arch != "gru" else np.empty((T, B, GH), dtype)
    carried = np.empty((T, B, H), dtype)  # dh_next arriving at h_t from step t+1
    dc_all = np.empty((T, B, H), dtype) if arch == "lstm" else None
    dh_next = np.zeros((B, H), dtype) if dh_last is None else dh_last
    dc_next = np.zeros((B, H), dtype) if (arch == "lstm" and dc_last is None) else dc_last
    # the total dh_t and the carried dh_{t-1} are written straight into their (T, B, H) arrays
    dh_all = np.empty((T, B, H), dtype)
    carried[T - 1] = dh_next
    dh0 = np.empty((B, H), dtype)
    if arch == "lstm":
        dc_next = dc_next.copy()
    for t in range(T - 1, -1, -1):
        dh = np.add(dh_local[t], carried[t], out=dh_all[t])
        dh_prev = carried[t - 1] if t else dh0
        if arch == "rnn":
            cells.rnn_step_backward(dh, steps[t], out=(da_x[t], dh_prev))
        elif arch == "lstm":
            cells.lstm_step_backward(dh, dc_next, steps[t], out=(da_x[t], dc_all[t], dh_prev, dc_next))
        else:
            cells.gru_step_backward(dh, steps[t], out=(da_x[t], da_h[t], dh_prev))
        if truncate is not None and (t0 + t) % truncate == 0 and t0 + t > 0:
            dh_prev[...] = 0.0
            if arch == "lstm":
                dc_next[...] = 0.0
    dh_next = dh0
    Ix = x.shape[2]
    dW_ih = da_x.reshape(T * B, GH).T @ x.reshape(T * B, Ix)
    # dW_hh = sum_t da_h[t].T @ h[t-1], with h[-1] = h_init: two GEMMs, no (T, B, H) copy of h
    dW_hh = da_h[1:].reshape((T - 1) * B, GH).T @ hs[:-1].reshape((T - 1) * B, H)
    dW_hh += da_h[0].T @ h_init
    db_ih = da_x.sum(axis=(0, 1))
    db_hh = da_h.sum(axis=(0, 1))
    dx = da_x @ W_ih if need_dx else None  # (T, B, I)
    stats = {"dh": dh_all,
             "dc_norms": None if dc_all is None else safe_norm(dc_all, (1, 2)),
             "carried_norms": safe_norm(carried, (1, 2)), "whh_inputs": (da_h, hs, h_init),
             "dh0": dh_next, "dc0": dc_next}
    return dx, (dW_ih, dW_hh, db_ih, db_hh), stats
