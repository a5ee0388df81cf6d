"""Unroll a model over a sequence, score it, and backpropagate through time.

Full, truncated or checkpointed BPTT, layer by layer with :mod:`core.layers` (the forward and
backward pass of one layer over the sequence), the readout and the losses; :class:`BPTTResult`
holds the loss, the gradients and the per-step gradient norms.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .checks import check_optional_positive_int, check_sequence
from .layers import cache_bytes, layer_backward, layer_forward, safe_norm, whh_norms
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
        out = np.stack([whh_norms(*inputs) for inputs in self._whh])
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
        seg_bytes = max(seg_bytes, sum(cache_bytes(c) for c in caches))
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
                whh[l, s:e] = whh_norms(*st["whh_inputs"])
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
