"""BPTT under a memory budget: binomial checkpointing (Griewank's "revolve") and the memory models.

With a budget of ``c`` stored states, the backward pass over T steps is run from checkpoints: to
reverse a range of n steps whose first state is stored, advance y steps (no activations kept),
store that state, reverse the last n - y steps with one slot fewer, drop it, and reverse the first
y steps. With no free slot, each step is reached by advancing again from the range's start. The
number of advanced (recomputed) steps F(n, m) with m free slots satisfies the dynamic programme
of Gruslys et al. 2016 (BPTT-HSM),

.. math:: F(n, m) = \\min_{1 \\le y < n} \\; y + F(n - y, m - 1) + F(y, m), \\quad
          F(1, m) = 0, \\quad F(n, 0) = n (n - 1) / 2,

whose solution is binomial (Griewank and Walther 2000): with r the least integer such that
C(m + 1 + r, r) >= n, F(n, m) = r n - C(m + 1 + r, r - 1). Every step's activations are recomputed
once just before its backward step (one step's cache is all that is ever held), so the gradients
are exactly those of :func:`core.bptt`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from math import comb

import numpy as np

from . import cells
from .checks import check_positive_int, is_int
from .bptt import loss_forward_backward, validate_inputs
from .layers import cache_bytes, layer_backward, layer_forward
from .models import Model
from .rtrl import flops_model as rtrl_flops


@dataclass(frozen=True)
class CheckpointResult:
    """What :func:`checkpointed_bptt` computed.

    Attributes
    ----------
    loss : float and grads : dict, as :func:`core.bptt` returns them.
    budget_states : the number of stored states allowed (the sequence start included).
    peak_states : the most states held at once (never above ``budget_states``).
    forward_steps : step evaluations in total (T of them are the steps' one evaluation with
        activations kept, just before their backward step).
    recomputed_steps : ``forward_steps - T``: steps evaluated more than once; the schedule's
        F(T, budget - 1).
    memory_bytes : bytes held for the backward pass: the stored states plus one step's activations.
    """

    loss: float
    grads: dict
    budget_states: int
    peak_states: int
    forward_steps: int
    recomputed_steps: int
    memory_bytes: int


# ----------------------------------------------------------------------------- memory models
def state_bytes(cfg, batch: int) -> int:
    """Bytes of one stored state of every layer: h, and c for the LSTM, each (B, H)."""
    per_layer = (2 if cfg.arch == "lstm" else 1) * batch * cfg.hidden_size
    return int(cfg.num_layers * per_layer * np.dtype(cfg.dtype).itemsize)


STEP_ARRAYS = {"rnn": 1, "lstm": 10, "gru": 5}  # (B, H) arrays one step keeps for its backward step


def step_bytes(cfg, batch: int) -> int:
    """Bytes of the activations one step of every layer keeps for its backward step:
    RNN h; LSTM h, c_prev, 4 gates, tanh c and 3 products; GRU h, 3 gates and W_hn h + b_hn."""
    return int(cfg.num_layers * STEP_ARRAYS[cfg.arch] * batch * cfg.hidden_size * np.dtype(cfg.dtype).itemsize)


def bptt_memory_model(cfg, T: int, batch: int, checkpoint: bool = False) -> int:
    """Bytes :func:`core.bptt` holds: every step's activations and the (T, B, O) outputs; with
    ``checkpoint=True`` a state per segment of ceil(sqrt(T)) steps plus one segment's activations."""
    out = T * batch * cfg.output_size * np.dtype(cfg.dtype).itemsize
    if not checkpoint:
        return int(T * step_bytes(cfg, batch) + out)
    seg = int(np.ceil(np.sqrt(T)))
    n_seg = -(-T // seg)
    return int(n_seg * state_bytes(cfg, batch) + seg * step_bytes(cfg, batch) + out)


def memory_model(cfg, T: int, batch: int, budget_states: int) -> int:
    """Bytes :func:`checkpointed_bptt` holds: min(budget, T) states plus one step's activations."""
    return int(min(budget_states, T) * state_bytes(cfg, batch) + step_bytes(cfg, batch))


def states_for_bytes(cfg, batch: int, budget_bytes: int) -> int:
    """The most stored states a budget in bytes allows (after one step's activations)."""
    return int((budget_bytes - step_bytes(cfg, batch)) // state_bytes(cfg, batch))


# ----------------------------------------------------------------------------- schedule
def recomputed_steps(n: int, free_slots: int) -> int:
    """F(n, m): steps advanced (recomputed) to reverse n steps with m free slots (closed form)."""
    return int(_cost_table(max(int(n), 1), int(free_slots))[max(int(n), 0)])


@functools.lru_cache(maxsize=256)
def _cost_table(n_max: int, m: int) -> np.ndarray:
    """(n_max + 1,) F(n, m) for n = 0..n_max, read-only."""
    n = np.arange(n_max + 1, dtype=np.int64)
    if m == 0:
        F = n * (n - 1) // 2
    else:
        reach = [1]  # C(m + 1 + r, r): the most steps r repetitions reverse with m free slots
        while reach[-1] < n_max:
            r = len(reach)
            reach.append(reach[-1] * (m + 1 + r) // r)
        r = np.searchsorted(np.array(reach, dtype=np.int64), n)  # least r with C(m + 1 + r, r) >= n
        below = np.array([comb(m + 1 + k, k - 1) if k > 0 else 0 for k in range(len(reach))], dtype=np.int64)
        F = r * n - below[r]
    F = np.where(n <= 1, 0, np.where(n - 1 <= m, n - 1, F))
    F.flags.writeable = False
    return F


def split(n: int, free_slots: int) -> int:
    """The first checkpoint y (1 <= y < n) of an optimal schedule for n steps and m >= 1 free slots."""
    if free_slots >= n - 1:
        return 1
    y = np.arange(1, n)
    costs = y + _cost_table(n, free_slots - 1)[n - y] + _cost_table(n, free_slots)[y]
    return int(y[np.argmin(costs)])


def _step(arch, nonlinearity, inp, h, c, W_ih, W_hh, b_ih, b_hh):
    """One layer, one step from (h, c) -> (h, c, the step's cache)."""
    a_x = inp @ W_ih.T + b_ih  # (B, G*H)
    if arch == "rnn":
        h, cache = cells.rnn_step_forward(a_x, h, W_hh, b_hh, nonlinearity)
    elif arch == "lstm":
        h, c, cache = cells.lstm_step_forward(a_x, h, c, W_hh, b_hh)
    else:
        h, cache = cells.gru_step_forward(a_x, h, W_hh, b_hh)
    return h, c, cache


def _layer_params(p, l):
    """(W_ih, W_hh, b_ih, b_hh) of layer l."""
    return p[f"weight_ih_l{l}"], p[f"weight_hh_l{l}"], p[f"bias_ih_l{l}"], p[f"bias_hh_l{l}"]


def _advance(model, x, t0, t1, states):
    """States after steps t0..t1-1 from ``states`` [(h, c)] per layer; no activations kept."""
    cfg, p = model.config, model.params
    for t in range(t0, t1):
        inp, new = x[t], []
        for l, (h, c) in enumerate(states):
            h, c, _ = _step(cfg.arch, cfg.nonlinearity, inp, h, c, *_layer_params(p, l))
            new.append((h, c))
            inp = h
        states = new
    return states


_KEPT = {"rnn": ("h",), "lstm": ("c_prev", "gates", "tanh_c", "aux", "h"), "gru": ("gates", "hn")}  # beyond h_prev


def _activation_bytes(arch, caches):
    """Bytes one step keeps for its backward step in every layer: its cache beyond the input state
    and W_hh, plus the new h where the cache does not hold it (GRU)."""
    total = 0
    for _inp, cache, h in caches:
        total += sum(getattr(cache, f).nbytes for f in _KEPT[arch]) + (h.nbytes if arch == "gru" else 0)
    return total


def _step_backward(arch, dh, dc, cache):
    """(da_x, da_h, dh_prev, dc_prev) of one step given the total dh and the dc from step t+1."""
    if arch == "rnn":
        da_x, da_h, dh_prev = cells.rnn_step_backward(dh, cache)
        return da_x, da_h, dh_prev, None
    if arch == "lstm":
        da_x, da_h, dh_prev, dc_prev, _ = cells.lstm_step_backward(dh, dc, cache)
        return da_x, da_h, dh_prev, dc_prev
    da_x, da_h, dh_prev = cells.gru_step_backward(dh, cache)
    return da_x, da_h, dh_prev, None


def checkpointed_bptt(model: Model, x, y, loss="mse", loss_on="all", truncate=None, *, budget_states=None,
                      budget_bytes=None) -> CheckpointResult:
    """Exact BPTT holding at most ``budget_states`` stored states (binomial checkpointing).

    Parameters
    ----------
    model, x, y, loss, loss_on, truncate : as in :func:`core.bptt` (any number of layers;
        truncation detaches the state before steps k, 2k, ... as there).
    budget_states : states that may be stored at once, the sequence start included (>= 1).
    budget_bytes : or a budget in bytes for the states plus one step's activations.

    Returns
    -------
    CheckpointResult: the loss and gradients of :func:`core.bptt` (to rounding), with the
    recomputed steps F(T, budget - 1) (see the module docstring).
    """
    x, y = validate_inputs(model, x, y, loss, loss_on, truncate)
    cfg, p = model.config, model.params
    T, B, _ = x.shape
    if (budget_states is None) == (budget_bytes is None):
        raise ValueError("give exactly one of budget_states and budget_bytes")
    if budget_bytes is not None:
        if not is_int(budget_bytes):
            raise ValueError(f"budget_bytes must be an integer, got {budget_bytes!r}")
        budget_states = states_for_bytes(cfg, B, int(budget_bytes))
        if budget_states < 1:
            need = state_bytes(cfg, B) + step_bytes(cfg, B)
            raise ValueError(f"budget_bytes must be at least {need} (one state and one step's activations) "
                             f"for this model and batch, got {budget_bytes}")
    else:
        check_positive_int("budget_states", budget_states)
    budget_states = int(budget_states)
    L, H, dtype = cfg.num_layers, cfg.hidden_size, x.dtype
    W_o, b_o = p["readout.weight"], p["readout.bias"]
    zeros = np.zeros((B, H), dtype)
    start = [(zeros, zeros if cfg.arch == "lstm" else None)] * L
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dh_next = [zeros] * L  # gradient carried back into each layer's h from step t+1
    dc_next = [zeros if cfg.arch == "lstm" else None] * L
    value, advanced, peak, leaf_bytes = 0.0, 0, 1, 0
    # stack of (first step, end step, stored state at the first step, free slots); the right part on top
    stack = [(0, T, start, budget_states - 1)]
    with np.errstate(all="ignore"):
        while stack:
            peak = max(peak, len({id(st) for _, _, st, _ in stack}))
            s, e, st, m = stack.pop()
            n = e - s
            if n > 1 and m > 0:
                yy = split(n, m)
                mid = _advance(model, x, s, s + yy, st)
                advanced += yy
                stack.append((s, s + yy, st, m))
                stack.append((s + yy, e, mid, m - 1))
                continue
            for t in range(e - 1, s - 1, -1):  # no free slot: advance from s to each step, last first
                at = _advance(model, x, s, t, st)
                advanced += t - s
                inp, caches = x[t], []
                for l, (h, c) in enumerate(at):  # the step again, its activations kept
                    h, c, cache = _step(cfg.arch, cfg.nonlinearity, inp, h, c, *_layer_params(p, l))
                    caches.append((inp, cache, h))
                    inp = h
                leaf_bytes = max(leaf_bytes, _activation_bytes(cfg.arch, caches))
                out = inp @ W_o.T + b_o  # (B, O)
                if loss_on == "all" or t == T - 1:
                    w = 1.0 / T if loss_on == "all" else 1.0  # the mean over scored steps
                    v, dout = loss_forward_backward(out, y[t] if loss_on == "all" else y, loss)
                    value += w * v
                    dout = w * dout
                else:
                    dout = np.zeros_like(out)
                grads["readout.weight"] += dout.T @ inp
                grads["readout.bias"] += dout.sum(axis=0)
                dh_local = dout @ W_o  # (B, H) from the readout, then from the layer above
                detach = truncate is not None and t % truncate == 0 and t > 0
                for l in range(L - 1, -1, -1):
                    inp_l, cache, _ = caches[l]
                    dh = dh_local + dh_next[l]
                    da_x, da_h, dh_next[l], dc_next[l] = _step_backward(cfg.arch, dh, dc_next[l], cache)
                    if detach:
                        dh_next[l] = np.zeros_like(dh_next[l])
                        dc_next[l] = None if dc_next[l] is None else np.zeros_like(dc_next[l])
                    W_ih = p[f"weight_ih_l{l}"]
                    grads[f"weight_ih_l{l}"] += da_x.T @ inp_l
                    grads[f"weight_hh_l{l}"] += da_h.T @ cache.h_prev
                    grads[f"bias_ih_l{l}"] += da_x.sum(axis=0)
                    grads[f"bias_hh_l{l}"] += da_h.sum(axis=0)
                    dh_local = da_x @ W_ih
    return CheckpointResult(loss=float(value), grads=grads, budget_states=budget_states, peak_states=peak,
                            forward_steps=T + advanced, recomputed_steps=advanced,
                            memory_bytes=int(peak * state_bytes(cfg, B) + leaf_bytes))


# ----------------------------------------------------------------------------- truncated BPTT by windows
@dataclass(frozen=True)
class WindowResult:
    """What :func:`windowed_bptt` computed: ``loss``, ``grads`` (those of ``core.bptt(...,
    truncate=window)``), ``memory_bytes`` (one window's activations and outputs) and ``window``."""

    loss: float
    grads: dict
    memory_bytes: int
    window: int


def window_memory_model(cfg, T: int, batch: int, window: int) -> int:
    """Bytes :func:`windowed_bptt` holds: one window's activations and its (k, B, O) outputs."""
    k = min(window, T)
    return int(k * (step_bytes(cfg, batch) + batch * cfg.output_size * np.dtype(cfg.dtype).itemsize))


def windowed_bptt(model: Model, x, y, loss="mse", loss_on="all", *, window: int) -> WindowResult:
    """Truncated BPTT as it is run in practice: forward and backward one window of k steps at a
    time, carrying only the state from one window to the next (detached), so memory is O(k)
    instead of O(T). The gradients are those of ``core.bptt(model, x, y, truncate=k)``; with the
    loss on the last step only, the windows before the last need no backward pass at all.
    """
    check_positive_int("window", window)
    x, y = validate_inputs(model, x, y, loss, loss_on)
    cfg, p = model.config, model.params
    T, B, _ = x.shape
    L, H, dtype = cfg.num_layers, cfg.hidden_size, x.dtype
    W_o, b_o = p["readout.weight"], p["readout.bias"]
    zeros = np.zeros((B, H), dtype)
    states = [(zeros, zeros if cfg.arch == "lstm" else None)] * L
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    value, held = 0.0, 0
    with np.errstate(all="ignore"):
        for s in range(0, T, window):
            e = min(s + window, T)
            inp, caches, new = x[s:e], [], []
            for l, (h0, c0) in enumerate(states):
                inp, cache = layer_forward(cfg.arch, cfg.nonlinearity, inp, *_layer_params(p, l), h0, c0)
                caches.append(cache)
                new.append((inp[-1].copy(), None if cache.c_last is None else cache.c_last.copy()))
            states = new
            out = inp @ W_o.T + b_o  # (k, B, O)
            held = max(held, sum(cache_bytes(c) for c in caches) + out.nbytes)
            if loss_on == "last" and e < T:
                continue  # no loss in this window and no gradient from later ones: nothing to do
            if loss_on == "all":
                v, dout = loss_forward_backward(out, y[s:e], loss)
                value += v * (e - s) / T  # the mean over all T steps
                dout *= (e - s) / T
            else:
                dout = np.zeros_like(out)
                v, dout[-1] = loss_forward_backward(out[-1], y, loss)
                value += v
            n = e - s
            grads["readout.weight"] += dout.reshape(n * B, -1).T @ inp.reshape(n * B, H)
            grads["readout.bias"] += dout.sum(axis=(0, 1))
            dh_local = dout @ W_o  # (k, B, H)
            for l in range(L - 1, -1, -1):
                dh_local, g, _ = layer_backward(dh_local, caches[l], need_dx=l > 0, consume=True)
                for name, gi in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), g, strict=True):
                    grads[f"{name}_l{l}"] += gi
    return WindowResult(loss=float(value), grads=grads, memory_bytes=int(held), window=int(window))


# ----------------------------------------------------------------------------- work models
def step_work(cfg, batch: int) -> float:
    """Multiply-adds of one forward step of every layer: B G H (I + H) per layer (plus the readout)."""
    G, H = cfg.gates, cfg.hidden_size
    per = sum(G * H * ((cfg.input_size if l == 0 else H) + H) for l in range(cfg.num_layers))
    return float(batch * (per + H * cfg.output_size))


def work_model(cfg, T: int, batch: int, method: str, budget_states: int | None = None) -> float:
    """Multiply-adds of one gradient by ``method``: a backward step costs about two forward steps,
    so BPTT does 3 T step-equivalents; ``"sqrt"`` (``checkpoint=True``) adds T recomputed steps,
    ``"budget"`` adds F(T, budget - 1); ``"window"`` is BPTT's; ``"rtrl"`` is :func:`core.rtrl.flops_model`."""
    if method == "rtrl":
        return rtrl_flops(cfg, T, batch)
    extra = {"bptt": 0, "window": 0, "sqrt": T}.get(method)
    if method == "budget":
        extra = recomputed_steps(T, budget_states - 1)
    if extra is None:
        raise ValueError(f"method must be one of bptt, window, sqrt, budget, rtrl; got {method!r}")
    return (3 * T + extra) * step_work(cfg, batch)
