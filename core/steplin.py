"""One-step state Jacobians, closed form and factored, and the forward pass they are read from.

The state of a layer is s = h (RNN, GRU) or s = [h; c] (LSTM, dimension n = 2H). Everything
is computed in float64 from the forward caches of :func:`core.layers.layer_forward` (the
parameters are cast), one layer at a time with the layer's inputs held fixed at the forward
activations of the layer below. A one-step Jacobian A_t = d s_t / d s_{t-1} is written in
closed form from the step cache (PyTorch's equations, see :mod:`core.cells`) and kept
factored, so that multiplying a matrix by it is one GEMM (LSTM: two half-size GEMMs):

* RNN:  A = diag(phi') W_hh
* LSTM: with C = diag(g i(1-i)) W_hi + diag(c_{t-1} f(1-f)) W_hf + diag(i(1-g^2)) W_hg = dc_t/dh_{t-1},
  k = o (1 - tanh(c_t)^2):  A = [[diag(tanh(c_t) o(1-o)) W_ho + diag(k) C, diag(k f)], [C, diag(f)]]
* GRU:  A = diag(z) + diag(c_r) W_hr + diag(c_z) W_hz + diag(c_n r) W_hn with
  c_n = (1-z)(1-n^2), c_r = c_n (W_hn h + b_hn) r(1-r), c_z = (h_{t-1} - n) z(1-z)

Used by :mod:`core.jacobians`, :mod:`core.connectivity` and :mod:`core.analysis`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .layers import layer_forward
from .checks import check_sequence
from .models import check_model

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
    """Yield each layer's :class:`core.layers.LayerCache`, feeding each layer the one below's states."""
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


