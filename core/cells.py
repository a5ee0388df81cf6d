"""One time step of RNN / LSTM / GRU: forward and backward as pure function pairs.

``W_hhT`` (optional, every step forward) is a C-contiguous copy of ``W_hh.T``: BLAS multiplies by
it up to twice as fast as by the transposed view (float32). The input projection
``a_x = x @ W_ih.T + b_ih`` is computed for all time steps in one GEMM
by the caller (see :mod:`core.bptt`), so a step only does the recurrent part. Likewise the
step backward returns the gradients of the pre-activations (``da_x`` for the input side,
``da_h`` for the recurrent side); the caller turns them into weight gradients with one GEMM
after the loop.  Equations and gate orders are exactly PyTorch's:

* RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh)
* LSTM: gates i, f, g, o;  c' = f * c + i * g;  h' = o * tanh(c')
* GRU:  gates r, z, n;  n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h' = (1 - z) * n + z * h
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np


class RNNStepCache(NamedTuple):
    """What :func:`rnn_step_backward` needs from :func:`rnn_step_forward` (all (B, H) but W_hh)."""

    h_prev: np.ndarray
    h: np.ndarray
    W_hh: np.ndarray  # (H, H)
    nonlinearity: str


class LSTMStepCache(NamedTuple):
    """What :func:`lstm_step_backward` needs from :func:`lstm_step_forward`."""

    h_prev: np.ndarray  # (B, H)
    c_prev: np.ndarray  # (B, H)
    gates: np.ndarray  # (B, 4H) i, f, g, o after their nonlinearities
    tanh_c: np.ndarray  # (B, H) tanh(c_t)
    W_hh: np.ndarray  # (4H, H)
    aux: np.ndarray  # (B, 3H) [i g, f c_prev, i (1 + g)]
    h: np.ndarray  # (B, H)


class GRUStepCache(NamedTuple):
    """What :func:`gru_step_backward` needs from :func:`gru_step_forward`."""

    h_prev: np.ndarray  # (B, H)
    gates: np.ndarray  # (B, 3H) r, z, n after their nonlinearities
    hn: np.ndarray  # (B, H) W_hn h_prev + b_hn
    W_hh: np.ndarray  # (3H, H)


# ----------------------------------------------------------------------------- RNN
def rnn_step_forward(a_x, h_prev, W_hh, b_hh=None, nonlinearity="tanh", W_hhT=None, out=None):
    """Vanilla RNN step.

    Parameters
    ----------
    a_x : (B, H) input projection ``x_t @ W_ih.T + b_ih``.
    h_prev : (B, H) previous hidden state.
    W_hh : (H, H), b_hh : (H,), or None when the caller already folded it into ``a_x``.
    out : optional preallocated (B, H) buffer for the new state.

    Returns
    -------
    h : (B, H) new state, cache : :class:`RNNStepCache` for :func:`rnn_step_backward`.

    .. math:: h_t = \\phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})
    """
    h = np.matmul(h_prev, W_hh.T if W_hhT is None else W_hhT, out=out)  # pre-activation, then state
    h += a_x
    if b_hh is not None:
        h += b_hh
    if nonlinearity == "tanh":
        np.tanh(h, out=h)
    else:
        np.maximum(h, 0.0, out=h)
    return h, RNNStepCache(h_prev, h, W_hh, nonlinearity)


def rnn_step_backward(dh, cache, out=None):
    """Backward of :func:`rnn_step_forward`.

    Parameters
    ----------
    dh : (B, H) total gradient of the loss with respect to the new state h_t.
    out : optional preallocated ``(da (B, H), dh_prev (B, H))`` buffers.

    Returns
    -------
    da_x : (B, H) gradient of the input projection (also that of ``b_ih``),
    da_h : (B, H) gradient of the recurrent pre-activation (same as da_x for an RNN),
    dh_prev : (B, H) gradient carried back through time to h_{t-1}.
    Weight gradients are summed over steps by the caller: dW_hh = sum_t da_h[t].T @ h[t-1].
    """
    _h_prev, h, W_hh, nonlinearity = cache
    da, dh_prev = (None, None) if out is None else out
    if nonlinearity == "tanh":
        da = np.multiply(h, h, out=da)  # (B, H)
        np.subtract(1.0, da, out=da)
        da *= dh
    else:
        da = np.multiply(dh, h > 0, out=da)
    return da, da, np.matmul(da, W_hh, out=dh_prev)


# ----------------------------------------------------------------------------- LSTM
@functools.lru_cache(maxsize=64)
def _lstm_gate_affine(dtype, H):
    """(scale, shift) of shape (4H,): sigmoid(a) = tanh(a / 2) / 2 + 1 / 2 on i, f, o; g = tanh(a)."""
    scale = np.full(4 * H, 0.5, dtype)
    scale[2 * H : 3 * H] = 1.0
    shift = scale.copy()
    shift[2 * H : 3 * H] = 0.0
    scale.flags.writeable = shift.flags.writeable = False
    return scale, shift


def lstm_step_forward(a_x, h_prev, c_prev, W_hh, b_hh=None, W_hhT=None, out=None, halved=False):
    """LSTM step with PyTorch's gate order (i, f, g, o).

    Parameters
    ----------
    a_x : (B, 4H) input projection. h_prev, c_prev : (B, H). W_hh : (4H, H).
    b_hh : (4H,), or None when the caller already folded it into ``a_x``.
    W_hhT : optional C-contiguous ``W_hh.T`` (a faster GEMM operand).
    halved : True when the i, f, o blocks of ``a_x``, ``W_hhT`` and ``b_hh`` are already
        multiplied by 1/2 (exact in binary floating point; saves one pass per step).
    out : optional preallocated buffers ``(gates (B, 4H), c, tanh_c, h (B, H), aux (B, 3H),
        work (B, 4H))`` to write into (``gates`` may be ``a_x`` itself: it is overwritten).

    Returns
    -------
    h, c : (B, H) new hidden and cell state; cache : :class:`LSTMStepCache` for
    :func:`lstm_step_backward`, whose ``aux = [i g, f c_prev, i (1 + g)]`` holds the products the
    backward pass needs (kept so it does fewer strided operations).

    .. math:: c_t = f_t \\odot c_{t-1} + i_t \\odot g_t, \\quad h_t = o_t \\odot \\tanh(c_t)
    """
    H = h_prev.shape[1]
    W = W_hh.T if W_hhT is None else W_hhT
    scale, shift = _lstm_gate_affine(h_prev.dtype, H)
    if out is None:
        gates = h_prev @ W  # (B, 4H), becomes the gates in place
        gates += a_x
        c, tc, h = np.empty_like(h_prev), np.empty_like(h_prev), np.empty_like(h_prev)
        aux = np.empty((h_prev.shape[0], 3 * H), h_prev.dtype)
    else:
        gates, c, tc, h, aux, work = out
        np.matmul(h_prev, W, out=work)
        np.add(a_x, work, out=gates)
    if b_hh is not None:
        gates += b_hh
    # one tanh over all four blocks (sigmoid(a) = (tanh(a / 2) + 1) / 2: no overflow warnings)
    if not halved:
        gates *= scale
    np.tanh(gates, out=gates)
    gates *= scale
    gates += shift
    i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    ig, fc, ig1 = aux[:, :H], aux[:, H : 2 * H], aux[:, 2 * H :]
    np.multiply(i, g, out=ig)
    np.multiply(f, c_prev, out=fc)
    np.add(ig, fc, out=c)
    np.add(g, 1.0, out=ig1)
    ig1 *= i
    np.tanh(c, out=tc)
    np.multiply(o, tc, out=h)
    return h, c, LSTMStepCache(h_prev, c_prev, gates, tc, W_hh, aux, h)


def lstm_step_backward(dh, dc, cache, out=None):
    """Backward of :func:`lstm_step_forward`.

    Parameters
    ----------
    dh : (B, H) total gradient w.r.t. h_t.  dc : (B, H) gradient w.r.t. c_t arriving from
        step t+1 (not yet including the path through h_t).
    out : optional preallocated buffers ``(da (B, 4H), dc_t, dh_prev, dc_prev (B, H))``;
        ``dc_prev`` may be ``dc`` itself and ``da`` may be the cached ``gates`` (overwritten:
        the cache cannot be used again).

    Returns
    -------
    da_x, da_h : (B, 4H) gate pre-activation gradient (equal for the LSTM),
    dh_prev, dc_prev : (B, H) gradients carried back to step t-1,
    dc_t : (B, H) the total gradient w.r.t. c_t (reported by the visualiser).

    With ``s' = s (1 - s)`` and ``tanh' = 1 - g^2``: da_i = dc_t g i (1 - i), da_f = dc_t c_prev
    f (1 - f), da_g = dc_t i (1 - g) (1 + g), da_o = dh h (1 - o), dc_t = dh (o - h tanh c) + dc.
    """
    h_prev, _c_prev, gates, tc, W_hh, aux, h = cache
    H = h_prev.shape[1]
    f, o = gates[:, H : 2 * H], gates[:, 3 * H :]
    if out is None:
        da, dc_total, dh_prev, dc_prev = np.empty_like(gates), np.empty_like(dh), None, None
    else:
        da, dc_total, dh_prev, dc_prev = out
    np.multiply(h, tc, out=dc_total)  # o tanh(c)^2
    np.subtract(o, dc_total, out=dc_total)  # o (1 - tanh(c)^2)
    dc_total *= dh
    dc_total += dc
    dc_prev = np.multiply(dc_total, f, out=dc_prev)  # before da, which may overwrite the gates
    np.subtract(1.0, gates, out=da)  # (B, 4H): 1 - i, 1 - f, 1 - g, 1 - o
    da[:, : 3 * H] *= aux
    da.reshape(-1, 4, H)[:, :3] *= dc_total[:, None, :]
    da_o = da[:, 3 * H :]
    da_o *= h
    da_o *= dh
    dh_prev = np.matmul(da, W_hh, out=dh_prev)
    return da, da, dh_prev, dc_prev, dc_total


# ----------------------------------------------------------------------------- GRU
def gru_step_forward(a_x, h_prev, W_hh, b_hh, W_hhT=None, out=None):
    """GRU step with PyTorch's gate order (r, z, n).

    Parameters
    ----------
    a_x : (B, 3H) input projection. h_prev : (B, H). W_hh : (3H, H), b_hh : (3H,).
    out : optional preallocated buffers ``(gates (B, 3H), hn (B, H), h (B, H), work (B, 3H))``
        (``gates`` may be ``a_x`` itself: it is overwritten in place).

    Returns
    -------
    h : (B, H), cache : :class:`GRUStepCache` for :func:`gru_step_backward`.

    .. math:: n_t = \\tanh(W_{in} x_t + b_{in} + r_t \\odot (W_{hn} h_{t-1} + b_{hn})),
              \\quad h_t = (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}
    """
    H = h_prev.shape[1]
    if out is None:
        gates, hn, h, work = np.empty_like(a_x), np.empty_like(h_prev), np.empty_like(h_prev), None
    else:
        gates, hn, h, work = out
    a_h = np.matmul(h_prev, W_hh.T if W_hhT is None else W_hhT, out=work)  # (B, 3H)
    a_h += b_hh
    rz = gates[:, : 2 * H]
    np.add(a_x[:, : 2 * H], a_h[:, : 2 * H], out=rz)
    rz *= 0.5  # sigmoid(a) = (tanh(a / 2) + 1) / 2
    np.tanh(rz, out=rz)
    rz += 1.0
    rz *= 0.5
    r, z = gates[:, :H], gates[:, H : 2 * H]
    np.copyto(hn, a_h[:, 2 * H :])  # (B, H) W_hn h + b_hn
    rhn = a_h[:, 2 * H :]
    rhn *= r
    n = gates[:, 2 * H :]
    np.add(a_x[:, 2 * H :], rhn, out=n)
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=h)
    h *= z
    h += n
    return h, GRUStepCache(h_prev, gates, hn, W_hh)


def gru_step_backward(dh, cache, out=None):
    """Backward of :func:`gru_step_forward`. ``out``: optional preallocated
    ``(da_x (B, 3H), da_h (B, 3H), dh_prev (B, H))`` buffers.

    Returns
    -------
    da_x : (B, 3H) gradient of the input projection (and of ``b_ih``),
    da_h : (B, 3H) gradient of ``h_prev @ W_hh.T + b_hh`` (differs from da_x in the n block),
    dh_prev : (B, H) gradient carried back to h_{t-1}.
    """
    h_prev, gates, hn, W_hh = cache
    H = h_prev.shape[1]
    r, z, n = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :]
    da_x, da_h, dh_prev = (None, None, None) if out is None else out
    da_x = np.subtract(1.0, gates, out=da_x)  # (B, 3H) becomes the gradient of the input projection
    dn_pre = da_x[:, 2 * H :]
    np.multiply(n, n, out=dn_pre)
    np.subtract(1.0, dn_pre, out=dn_pre)
    dn_pre *= da_x[:, H : 2 * H]  # (1 - z)
    dn_pre *= dh  # dh (1 - z) (1 - n^2)
    rz = da_x[:, : 2 * H]
    rz *= gates[:, : 2 * H]  # s (1 - s) for r and z
    rz[:, :H] *= hn
    rz[:, :H] *= dn_pre
    dz = rz[:, H:]
    dz *= h_prev - n
    dz *= dh
    if da_h is None:
        da_h = da_x.copy()
    else:
        np.copyto(da_h, da_x)
    da_h[:, 2 * H :] *= r
    dh_prev = np.matmul(da_h, W_hh, out=dh_prev)
    dh_prev += dh * z
    return da_x, da_h, dh_prev
