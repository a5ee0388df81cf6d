"""Unroll a model over a sequence, score it, and backpropagate through time.

Layer by layer: the input projection of every step is one GEMM before the loop, the time
loop only does the recurrent part (:mod:`core.cells`), and the weight gradients are one GEMM
after the backward loop. The gradient arriving at h_t from outside the recurrence (the
readout, or the layer above) is kept apart from the gradient carried back from step t+1.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from . import cells
from .checks import check_optional_positive_int, check_sequence
from .models import Model, check_model

LOSSES = ("mse", "cross_entropy")
LOSS_ON = ("all", "last")


@dataclass(frozen=True)
class BPTTResult:
    """Everything :func:`bptt` measured. L layers, T steps, B batch, H hidden units.

    Attributes
    ----------
    loss : float, mean loss over the scored steps (PyTorch's ``mse_loss`` / ``cross_entropy``).
    grads : dict, dL/dparam with the keys and shapes of ``model.state_dict()``.
    hidden_grad_norms : (L, T) Frobenius norm over batch and units of the total dL/dh^l_t.
    cell_grad_norms : (L, T) the same for the LSTM cell state c^l_t (None for RNN and GRU).
    local_grad_norms : (L, T) norm of the gradient arriving at h^l_t from outside the
        recurrence (the readout for the top layer, the layer above otherwise).
    carried_grad_norms : (L, T) norm of the gradient carried back into h^l_t from step t+1
        (``dh_next``; zero at the last step and where truncation detached the state).
    whh_grad_norms : (L, T) Frobenius norm of step t's contribution to dL/dW_hh^l, i.e. of
        ``da_h[t].T @ h[t-1]``: which steps the update of W_hh learns from. A training step does
        not need it and it costs about as much as a tenth of the whole backward pass, so it is
        computed on first access (from arrays the result holds until then); with
        ``checkpoint=True`` it is computed during the backward pass, segment by segment.
    hidden_grad_units : (L, T, H) per-unit gradient magnitude sqrt(sum_b (dL/dh^l_t)^2);
        its norm over units equals ``hidden_grad_norms``.
    outputs : (T, B, O) readout of the top layer (predictions or logits) at every step.
    nonfinite_step : first step t whose hidden state is NaN/inf in any layer, or None.
    nonfinite_grad_step : latest step t whose hidden gradient norm is NaN/inf (the first one
        reached going backward), or None.
    memory_bytes : bytes of activations held for the backward pass.
    """

    loss: float
    grads: dict
    hidden_grad_norms: np.ndarray
    cell_grad_norms: np.ndarray | None
    local_grad_norms: np.ndarray
    carried_grad_norms: np.ndarray
    hidden_grad_units: np.ndarray
    outputs: np.ndarray
    nonfinite_step: int | None
    nonfinite_grad_step: int | None
    memory_bytes: int
    _whh: object = field(default=None, repr=False, compare=False)  # (L, T) array, or per-layer inputs

    @functools.cached_property
    def whh_grad_norms(self) -> np.ndarray:  # documented above
        if isinstance(self._whh, np.ndarray):
            return self._whh
        out = np.stack([_whh_norms(*inputs) for inputs in self._whh])
        object.__setattr__(self, "_whh", out)  # free the per-step arrays
        return out


# ----------------------------------------------------------------------------- validation
def validate_inputs(model: Model, x, y, loss="mse", loss_on="all", truncate=None):
    """Check and convert ``x`` and ``y``; raise ValueError naming the argument."""
    check_model(model)
    cfg = model.config
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if loss_on not in LOSS_ON:
        raise ValueError(f"loss_on must be one of {LOSS_ON}, got {loss_on!r}")
    check_optional_positive_int("truncate", truncate)
    x = check_sequence(x, cfg.input_size)
    T, B = x.shape[:2]
    y = np.asarray(y)
    lead = (T, B) if loss_on == "all" else (B,)
    if loss == "mse":
        if y.dtype.kind not in "fiu" or y.dtype == np.bool_:
            raise ValueError(f"y must hold real numbers for loss='mse', got dtype {y.dtype}")
        if y.shape != (*lead, cfg.output_size):
            raise ValueError(f"y must have shape {(*lead, cfg.output_size)} for loss='mse', loss_on={loss_on!r}, "
                             f"got {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or inf")
        y = y.astype(cfg.dtype, copy=False)
    else:
        if y.dtype.kind not in "iu":
            raise ValueError(f"y must hold integer class ids for loss='cross_entropy', got dtype {y.dtype}")
        if y.shape != lead:
            raise ValueError(f"y must have shape {lead} for loss='cross_entropy', loss_on={loss_on!r}, got {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= cfg.output_size):
            raise ValueError(f"y class ids must be in [0, {cfg.output_size}), got range [{y.min()}, {y.max()}]")
    return x.astype(cfg.dtype, copy=False), y


# ----------------------------------------------------------------------------- layers
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


def _cache_bytes(cache):
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


def _whh_norms(da_h, hs, h_init):
    """(T,) ||da_h[t].T @ h[t-1]||_F (h[-1] = h_init): each step's share of dW_hh."""
    return _outer_sum_norms(da_h, np.concatenate([h_init[None], hs[:-1]], axis=0))


def _outer_sum_norms(a, b):
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
    (see :func:`_whh_norms`), and ``dh0``, ``dc0`` (B, H)
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


# ----------------------------------------------------------------------------- loss
def loss_forward_backward(logits, y, loss):
    """Mean loss and its gradient w.r.t. ``logits``.

    Parameters
    ----------
    logits : (N..., O) readout outputs of the scored steps. y : (N..., O) targets for
        ``"mse"`` or (N...,) class ids for ``"cross_entropy"``.

    Returns
    -------
    loss : float, dlogits : same shape as ``logits``.

    .. math:: \\mathrm{MSE} = \\frac{1}{N O}\\sum (\\hat y - y)^2, \\quad
              \\mathrm{CE} = -\\frac{1}{N}\\sum \\log \\mathrm{softmax}(z)_{y}
    """
    if loss == "mse":
        diff = logits - y
        return float(np.mean(diff * diff)), (2.0 / diff.size) * diff
    O = logits.shape[-1]
    z = logits.reshape(-1, O)
    yy = y.reshape(-1)
    N = z.shape[0]
    z_max = np.max(z, axis=1, keepdims=True)
    shifted = z - z_max
    log_sum = np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    logp = shifted - log_sum  # (N, O)
    value = float(-np.mean(logp[np.arange(N), yy]))
    dz = np.exp(logp)
    dz[np.arange(N), yy] -= 1.0
    dz /= N
    return value, dz.reshape(logits.shape)


def _first_nonfinite(values):
    """Index of the first False in a boolean 'finite' vector, or None."""
    bad = np.flatnonzero(~values)
    return int(bad[0]) if bad.size else None


# ----------------------------------------------------------------------------- BPTT
def bptt(model: Model, x, y, loss="mse", loss_on="all", truncate=None, checkpoint=False) -> BPTTResult:
    """Forward pass, loss and exact (optionally truncated) backpropagation through time.

    Parameters
    ----------
    model : :class:`core.RNN`, :class:`core.LSTM` or :class:`core.GRU`.
    x : (T, B, input_size) inputs.
    y : ``loss="mse"``: (T, B, O) targets, or (B, O) with ``loss_on="last"``;
        ``loss="cross_entropy"``: (T, B) class ids, or (B,) with ``loss_on="last"``.
    loss : ``"mse"`` or ``"cross_entropy"`` (mean over scored steps, batch and outputs).
    loss_on : ``"all"`` steps scored, or only the ``"last"``.
    truncate : None for full BPTT, or k: the state is detached before steps k, 2k, ...
        (PyTorch's idiom of running chunks of k steps and detaching between them).
    checkpoint : if True, keep only the states at every ceil(sqrt(T))-th step during the
        forward pass and recompute each segment's activations during the backward pass:
        memory O(sqrt(T)) segments instead of O(T), about one extra forward pass of time,
        identical results (to rounding of the summed weight gradients).

    Returns
    -------
    BPTTResult

    .. math:: \\frac{\\partial L}{\\partial h_t} = \\frac{\\partial L_t}{\\partial h_t}
              + \\frac{\\partial L}{\\partial h_{t+1}} \\frac{\\partial h_{t+1}}{\\partial h_t}
    """
    x, y = validate_inputs(model, x, y, loss, loss_on, truncate)
    if not isinstance(checkpoint, (bool, np.bool_)):
        raise ValueError(f"checkpoint must be True or False, got {checkpoint!r}")
    T = x.shape[0]
    seg = int(np.ceil(np.sqrt(T))) if checkpoint else T
    with np.errstate(all="ignore"):
        return _run(model, x, y, loss, loss_on, truncate, [(s, min(s + seg, T)) for s in range(0, T, seg)])


def _forward_segment(model, x_seg, states):
    """All layers over one segment from ``states`` [(h, c)] per layer -> (top hs, caches, end states)."""
    cfg, p = model.config, model.params
    caches, ends, inp = [], [], x_seg
    for l in range(cfg.num_layers):
        h0, c0 = states[l]
        inp, cache = layer_forward(cfg.arch, cfg.nonlinearity, inp, p[f"weight_ih_l{l}"], p[f"weight_hh_l{l}"],
                                   p[f"bias_ih_l{l}"], p[f"bias_hh_l{l}"], h0, c0)
        caches.append(cache)
        ends.append((inp[-1], cache.c_last))
    return inp, caches, ends


def _run(model, x, y, loss, loss_on, truncate, segments):
    """Forward over segments (keeping caches only for a single segment), loss, backward."""
    cfg, p = model.config, model.params
    L, (T, B, _), H = cfg.num_layers, x.shape, cfg.hidden_size
    W_o, b_o = p["readout.weight"], p["readout.bias"]
    dtype = x.dtype
    zeros = np.zeros((B, H), dtype)
    states = [(zeros, zeros if cfg.arch == "lstm" else None)] * L
    seg_states, outputs = [], np.empty((T, B, W_o.shape[0]), dtype)
    hs_finite = np.ones(T, bool)
    keep = len(segments) == 1
    held = 0
    for s, e in segments:
        seg_states.append(states)
        top, caches, states = _forward_segment(model, x[s:e], states)
        kept = (top, caches) if keep else None
        outputs[s:e] = top @ W_o.T + b_o  # (T_seg, B, O)
        hs_finite[s:e] = np.all([np.all(np.isfinite(c.hs), axis=(1, 2)) for c in caches], axis=0)
        held += sum(h.nbytes + (c.nbytes if c is not None else 0) for h, c in seg_states[-1]) if not keep else 0
    held += outputs.nbytes
    scored = outputs if loss_on == "all" else outputs[-1]
    value, dscored = loss_forward_backward(scored, y, loss)
    if loss_on == "all":
        dlogits = dscored
    else:
        dlogits = np.zeros_like(outputs)
        dlogits[-1] = dscored
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    hidden_units = np.empty((L, T, H), dtype)
    cell = np.empty((L, T), dtype) if cfg.arch == "lstm" else None
    local, carried, whh = (np.empty((L, T), dtype) for _ in range(3))
    whh_inputs = [None] * L
    dh_carry = [None] * L
    dc_carry = [None] * L
    seg_bytes = 0
    for (s, e), start in zip(reversed(segments), reversed(seg_states), strict=False):
        top, caches = kept if keep else _forward_segment(model, x[s:e], start)[:2]
        seg_bytes = max(seg_bytes, sum(_cache_bytes(c) for c in caches))
        n = e - s
        grads["readout.weight"] += dlogits[s:e].reshape(n * B, -1).T @ top.reshape(n * B, H)
        grads["readout.bias"] += dlogits[s:e].sum(axis=(0, 1))
        dh_local = dlogits[s:e] @ W_o  # (n, B, H)
        for l in range(L - 1, -1, -1):
            local[l, s:e] = safe_norm(dh_local, (1, 2))
            dx, (dW_ih, dW_hh, db_ih, db_hh), st = layer_backward(
                dh_local, caches[l], truncate, dh_carry[l], dc_carry[l], t0=s, need_dx=l > 0, consume=True)
            dh_carry[l], dc_carry[l] = st["dh0"], st["dc0"]
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            for name, g in zip(names, (dW_ih, dW_hh, db_ih, db_hh), strict=False):
                grads[f"{name}_l{l}"] += g
            hidden_units[l, s:e] = safe_norm(st["dh"], 1)
            if cell is not None:
                cell[l, s:e] = st["dc_norms"]
            carried[l, s:e] = st["carried_norms"]
            if keep:
                whh_inputs[l] = st["whh_inputs"]
            else:
                whh[l, s:e] = _whh_norms(*st["whh_inputs"])
            dh_local = dx
    hidden_grad_norms = safe_norm(hidden_units, 2)
    bad_grad = np.flatnonzero(~np.all(np.isfinite(hidden_grad_norms), axis=0))
    return BPTTResult(
        loss=value,
        grads=grads,
        hidden_grad_norms=hidden_grad_norms,
        cell_grad_norms=cell,
        local_grad_norms=local,
        carried_grad_norms=carried,
        hidden_grad_units=hidden_units,
        outputs=outputs,
        nonfinite_step=_first_nonfinite(hs_finite),
        nonfinite_grad_step=int(bad_grad[-1]) if bad_grad.size else None,
        memory_bytes=int(held + seg_bytes),
        _whh=whh_inputs if keep else whh,
    )
