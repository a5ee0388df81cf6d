"""Glue between the app's :class:`~visualizer.urlstate.Params` and the core engine.

Each view's numbers come from one tested core function; this module only builds the models and
data those functions take, keeps the results of recent runs (bounded LRU caches keyed by exactly
the settings a result depends on, so changing e.g. the LSTM forget bias recomputes nothing for the
RNN), and reduces results for display (median over the batch, log10, binning of very large maps).
Nothing here imports dash or plotly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import core

from .cache import memoize

DISPLAY_NAMES = {"rnn": "RNN", "rnn-relu": "RNN-relu", "lstm": "LSTM", "gru": "GRU"}


def read_only(a) -> np.ndarray:
    """``a`` as an array that cannot be written (cached results are shared by every caller)."""
    a = np.asarray(a)
    a.flags.writeable = False
    return a


# ----------------------------------------------------------------------------- keys
@dataclass(frozen=True)
class DataKey:
    """Settings that fix the batch of data."""

    task: str
    seq_len: int
    batch: int
    seed: int
    loss_on: str


@dataclass(frozen=True)
class RunKey:
    """Settings one architecture's results depend on (and nothing else)."""

    arch: str
    hidden: int
    layers: int
    init: str
    scale: float
    forget_bias: float | None
    seed: int
    data: DataKey
    truncate: int | None


@memoize(maxsize=16)
def get_task(key: DataKey):
    """The task batch for ``key``; ValueError naming the task and length for impossible settings."""
    try:
        task = core.make_task(key.task, key.seq_len, key.batch, seed=key.seed)
    except ValueError as e:
        raise ValueError(f"The {key.task} task cannot use sequence length {key.seq_len}: {e}") from e
    read_only(task.x), read_only(task.y)
    return task


def targets(task, loss_on: str):
    """(y, loss_on actually used, note or None): score the last step or all steps of ``task``."""
    if loss_on == task.loss_on:
        return task.y, loss_on, None
    if loss_on == "last":
        return task.y[-1], "last", None
    return task.y, task.loss_on, f"task {task.name!r} has a target only at the last step; scoring the last step."


def hidden_for(params, arch: str) -> int:
    """Hidden size of ``arch`` under ``params`` (a :class:`visualizer.urlstate.Params`):
    ``params.hidden``, or with ``match_params`` the size whose parameter count is closest to a tanh
    RNN of size ``params.hidden``."""
    if not params.match_params:
        return params.hidden
    task = get_task(data_key(params))
    sizes = dict(input_size=task.input_size, output_size=task.output_size, num_layers=params.layers)
    target = core.build("rnn", hidden_size=params.hidden, **sizes).num_parameters()
    return int(core.hidden_size_for_params(arch, target, task.input_size, task.output_size, params.layers))


def data_key(params) -> DataKey:
    """The :class:`DataKey` of ``params``."""
    return DataKey(params.task, params.seq_len, params.batch, params.seed, params.loss_on)


def run_key(params, arch: str) -> RunKey:
    """The :class:`RunKey` of ``arch`` under ``params`` (forget bias only for the LSTM)."""
    truncate = params.truncate if params.truncate is not None and params.truncate < params.seq_len else None
    return RunKey(arch=arch, hidden=hidden_for(params, arch), layers=params.layers, init=params.init,
                  scale=float(params.scale) if params.init != "pytorch" else 1.0,
                  forget_bias=params.forget_bias if arch == "lstm" else None,
                  seed=params.seed, data=data_key(params), truncate=truncate)


@memoize(maxsize=16)
def get_model(key: RunKey):
    """The initialised model of ``key``."""
    task = get_task(key.data)
    model = core.build(key.arch, input_size=task.input_size, hidden_size=key.hidden,
                       output_size=task.output_size, num_layers=key.layers, seed=key.seed,
                       init=key.init, scale=key.scale, forget_bias=key.forget_bias)
    for w in model.params.values():
        read_only(w)
    return model


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class GradFlow:
    """One architecture's BPTT summary (views 1 and 3). L layers, T steps, H units."""

    arch: str
    name: str
    hidden: int
    num_params: int
    loss: float
    hidden_grad_norms: np.ndarray  # (L, T)
    hidden_grad_units: np.ndarray  # (L, T, H)
    nonfinite_step: int | None
    nonfinite_grad_step: int | None
    sigma_max: float  # largest singular value of the top layer's W_hh
    loss_note: str | None


@memoize(maxsize=24)
def grad_flow(key: RunKey) -> GradFlow:
    """Run :func:`core.bptt` for ``key`` and keep what the views need."""
    task, model = get_task(key.data), get_model(key)
    y, loss_on, note = targets(task, key.data.loss_on)
    res = core.bptt(model, task.x, y, loss=task.loss, loss_on=loss_on, truncate=key.truncate)
    return GradFlow(arch=key.arch, name=DISPLAY_NAMES[key.arch], hidden=key.hidden,
                    num_params=model.num_parameters(), loss=float(res.loss),
                    hidden_grad_norms=read_only(res.hidden_grad_norms),
                    hidden_grad_units=read_only(res.hidden_grad_units),
                    nonfinite_step=res.nonfinite_step, nonfinite_grad_step=res.nonfinite_grad_step,
                    sigma_max=float(weight_spectra(key)[-1][0]), loss_note=note)


@memoize(maxsize=24)
def weight_spectra(key: RunKey) -> np.ndarray:
    """(L, n) singular values of W_hh per layer, descending (:func:`core.weight_singular_values`)."""
    return read_only(core.weight_singular_values(get_model(key)))


@memoize(maxsize=24)
def gamma_threshold(key: RunKey) -> float:
    """Pascanu et al.'s threshold 1/gamma for this architecture (:func:`core.gamma_bound`)."""
    return 1.0 / float(core.gamma_bound(get_model(key)))


JACOBIAN_WORK = 4e9  # T * n^3 * sequences per architecture for the Jacobian-product views


def jacobian_batch(key: RunKey) -> int:
    """How many sequences the Jacobian-product views analyse: all B while T n^3 B stays under
    JACOBIAN_WORK (n = H, or 2H for the LSTM's [h; c]), else fewer, at least 1."""
    n = key.hidden * (2 if key.arch == "lstm" else 1)
    per_sequence = key.data.seq_len * float(n) ** 3 * key.layers
    return int(min(key.data.batch, max(1, JACOBIAN_WORK // per_sequence)))


@memoize(maxsize=12)
def jacobian_norms(key: RunKey) -> np.ndarray:
    """(L, T, B') ||ds_{T-1}/ds_t|| for the first B' = :func:`jacobian_batch` sequences
    (:func:`core.jacobian_norms`)."""
    task = get_task(key.data)
    with np.errstate(all="ignore"):
        return read_only(core.jacobian_norms(get_model(key), task.x[:, : jacobian_batch(key)]))


SPECTRA_STEPS = 200  # one-step Jacobians analysed at most (evenly spaced, always the last step) ...
SPECTRA_MIN_STEPS = 25  # ... and at least (when T allows), whatever their size
SPECTRA_WORK = 100 * 256.0 ** 3  # steps * n^3 * layers budget per architecture (one full SVD per step)


def spectra_steps(T: int, n: int = 0, layers: int = 1) -> np.ndarray:
    """The step indices whose one-step Jacobian spectra are computed: all, or an evenly spaced
    subset (always the first and last step) of at most SPECTRA_STEPS, fewer for large state
    sizes n (full SVDs cost n^3: SPECTRA_WORK / (n^3 layers), but at least SPECTRA_MIN_STEPS)."""
    count = SPECTRA_STEPS
    if n:
        count = int(min(SPECTRA_STEPS, max(SPECTRA_MIN_STEPS, SPECTRA_WORK // (float(n) ** 3 * layers))))
    if count >= T:
        return np.arange(T)
    return np.unique(np.linspace(0, T - 1, count).round().astype(int))


def key_spectra_steps(key: RunKey) -> np.ndarray:
    """:func:`spectra_steps` for ``key``'s sequence length, state size and layers."""
    return spectra_steps(key.data.seq_len, key.hidden * (2 if key.arch == "lstm" else 1), key.layers)


@memoize(maxsize=12)
def step_spectra(key: RunKey) -> np.ndarray:
    """(L, len(key_spectra_steps(key)), n) singular values of the one-step Jacobians at
    :func:`key_spectra_steps`, sequence 0 (:func:`core.step_jacobian_singular_values`)."""
    task = get_task(key.data)
    steps = key_spectra_steps(key)
    with np.errstate(all="ignore"):
        return read_only(core.step_jacobian_singular_values(get_model(key), task.x, batch_index=0, steps=steps))


@memoize(maxsize=12)
def gate_products(key: RunKey) -> np.ndarray:
    """(L, T, B) product of forget / carry gates; for the RNN, of step Jacobian norms over the
    first :func:`jacobian_batch` sequences (:func:`core.gate_products`)."""
    task = get_task(key.data)
    B = jacobian_batch(key) if key.arch.startswith("rnn") else key.data.batch
    with np.errstate(all="ignore"):
        return read_only(core.gate_products(get_model(key), task.x[:, :B]))


def connectivity_rows(T: int) -> np.ndarray:
    """Output steps (rows) the connectivity view computes: all when T <= CONNECTIVITY_SIDE, else
    the last step of each of CONNECTIVITY_SIDE-or-fewer bins of k consecutive steps (so T - 1 is
    always in; the cost of :func:`core.connectivity` is proportional to the number of rows)."""
    k = max(1, -(-T // CONNECTIVITY_SIDE))
    return np.minimum(np.arange(k - 1, T + k - 1, k), T - 1)


@memoize(maxsize=12)
def connectivity(key: RunKey) -> np.ndarray:
    """(len(connectivity_rows(T)), T) ||dy_t/dx_s|| for sequence 0 at the output steps
    :func:`connectivity_rows` (:func:`core.connectivity`)."""
    task = get_task(key.data)
    rows = connectivity_rows(task.x.shape[0])
    with np.errstate(all="ignore"):
        return read_only(core.connectivity(get_model(key), task.x, batch_index=0, outputs=rows))


# ----------------------------------------------------------------------------- display reductions
def batch_summary(values: np.ndarray) -> dict:
    """Median, min and max over the last (batch) axis of an (..., B) array, NaN-aware per entry.

    Entries where any batch element is NaN or inf keep that value in the median (so overflow
    stays visible instead of being averaged away).
    """
    values = np.asarray(values, dtype=float)
    with np.errstate(all="ignore"):
        finite = np.all(np.isfinite(values), axis=-1)
        med = np.median(values, axis=-1)
        worst = np.where(np.any(np.isnan(values), axis=-1), np.nan, np.inf)
        med = np.where(finite, med, worst)
        return {"median": med, "min": np.min(values, axis=-1), "max": np.max(values, axis=-1)}


def safe_log10(values: np.ndarray) -> np.ndarray:
    """log10 of |values| with zeros, NaN and inf mapped to NaN (drawn as gaps in a heatmap)."""
    values = np.abs(np.asarray(values, dtype=float))
    out = np.full(values.shape, np.nan)
    ok = np.isfinite(values) & (values > 0)
    out[ok] = np.log10(values[ok])
    return out


def bin_max(values: np.ndarray, max_len: int, axis: int = 0) -> tuple[np.ndarray, int]:
    """(values reduced by taking the max over consecutive bins along ``axis``, bin size).

    The bin size k is the smallest integer with ceil(n / k) <= max_len; NaN is ignored unless the
    whole bin is NaN. With n <= max_len the values are returned unchanged (k = 1).
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[axis]
    k = max(1, -(-n // max_len))
    if k == 1:
        return values, 1
    moved = np.moveaxis(values, axis, 0)
    pad = (-n) % k
    if pad:
        moved = np.concatenate([moved, np.full((pad, *moved.shape[1:]), -np.inf)], axis=0)
    binned = np.fmax.reduce(moved.reshape((-1, k, *moved.shape[1:])), axis=1)
    return np.moveaxis(binned, 0, axis), k


# ----------------------------------------------------------------------------- messages
def explosion_messages(flows) -> list[str]:
    """One banner line per architecture whose forward pass or gradient became inf/NaN."""
    lines = []
    for f in flows:
        sigma = f" (largest singular value of W_hh: {f.sigma_max:.3g})" if f.sigma_max is not None else ""
        if f.nonfinite_step is not None:
            lines.append(f"{f.name} exploded at step {f.nonfinite_step}: its hidden state overflowed to "
                         f"inf/NaN going forward, because W_hh amplifies the state at every step{sigma}.")
        elif f.nonfinite_grad_step is not None:
            lines.append(f"{f.name} exploded at step {f.nonfinite_grad_step}: the gradient overflowed going "
                         f"back in time, because each step multiplies it by a Jacobian of norm above 1{sigma}.")
        elif not np.isfinite(f.loss):
            lines.append(f"{f.name} exploded: its loss is {f.loss}, the outputs overflowed.")
    return lines


# ----------------------------------------------------------------------------- view payloads
GATE_LABELS = {"rnn": "∏ ‖J<sub>t</sub>‖", "rnn-relu": "∏ ‖J<sub>t</sub>‖", "lstm": "∏ forget gate f",
               "gru": "∏ carry gate z"}
HEAT_CELLS = 60_000  # per architecture, above this the time axis is binned for display
CONNECTIVITY_SIDE = 250


def reference_slope(sigma: float, n: int) -> np.ndarray:
    """(n,) sigma**k for k = 0..n-1: the growth rate a single largest singular value allows."""
    with np.errstate(all="ignore"):
        return float(sigma) ** np.arange(n, dtype=float)


def verdict(name: str, sigma: float, threshold: float) -> str:
    """One line comparing sigma_1(W_hh) with Pascanu et al.'s 1/gamma."""
    if sigma < threshold:
        return f"{name}: σ₁ = {sigma:.3g} < 1/γ = {threshold:.3g}: vanishing is guaranteed"
    return f"{name}: σ₁ = {sigma:.3g} ≥ 1/γ = {threshold:.3g}: exploding becomes possible"


def connectivity_note(keys) -> str | None:
    """A sentence when the connectivity view samples output rows and bins input columns."""
    T = max((k.data.seq_len for k in keys), default=0)
    k = max(1, -(-T // CONNECTIVITY_SIDE))
    if k == 1:
        return None
    return (f"At this length each row is one output step in {k} (the last of each group of {k}), and each "
            f"column the largest value over {k} consecutive input steps.")


def spectra_note(keys) -> str | None:
    """A sentence when the spectra view analyses fewer steps than the sequence has."""
    counts = {DISPLAY_NAMES[k.arch]: len(key_spectra_steps(k)) for k in keys
              if len(key_spectra_steps(k)) < k.data.seq_len}
    if not counts:
        return None
    listed = ", ".join(f"{name} {c}" for name, c in counts.items())
    return f"At this size the step spectra are computed at evenly spaced steps ({listed}; each costs a full SVD, n³)."


def _fewer_sequences_note(keys) -> str | None:
    """A sentence when the Jacobian products of ``keys`` use fewer sequences than the batch."""
    fewer = sorted({(jacobian_batch(k), k.data.batch) for k in keys if jacobian_batch(k) < k.data.batch})
    if not fewer:
        return None
    used = ", ".join(str(b) for b, _ in fewer)
    return (f"At this size the Jacobian products use the first {used} of the {fewer[0][1]} sequences "
            f"(their cost grows like T·n³).")


def jacobian_note(keys) -> str | None:
    """A sentence when the Jacobian view analyses fewer sequences than the batch."""
    return _fewer_sequences_note(keys)


def gates_note(keys) -> str | None:
    """A sentence when the gating view's plain-RNN Jacobian products use fewer sequences than the batch
    (gate products of the LSTM and GRU are cheap: all sequences)."""
    return _fewer_sequences_note([k for k in keys if k.arch.startswith("rnn")])


@dataclass(frozen=True, eq=False)
class Overview:
    """View 1 payload: one :class:`GradFlow` per architecture (an uploaded model's flow may join
    them, see :mod:`visualizer.classroom`) and the truncation window drawn as dashed lines."""

    flows: tuple
    truncate: int | None = None


def overview(keys) -> Overview:
    """View 1 payload for ``keys``: :func:`grad_flow` of each."""
    return Overview(tuple(grad_flow(k) for k in keys), keys[0].truncate if keys else None)


def jacobian_items(keys) -> list[dict]:
    """View 2 payload: per architecture the batch median/min/max of the top layer's
    ||ds_{T-1}/ds_t|| indexed by lag k = T-1-t; for plain RNNs the sigma_1(W_hh)^k reference and
    Pascanu et al.'s verdict (the bound does not apply to gated cells, which say so)."""
    items = []
    for key in keys:
        s = batch_summary(jacobian_norms(key)[-1])  # (T,) each
        item = {"arch": key.arch, "name": DISPLAY_NAMES[key.arch], "band": jacobian_batch(key) > 1,
                "sequences": jacobian_batch(key),
                **{k: v[::-1] for k, v in s.items()}, "reference": None, "sigma": None, "verdict": None}
        sigma, thr = float(weight_spectra(key)[-1][0]), gamma_threshold(key)
        item.update(sigma=sigma, threshold=thr)
        if key.arch.startswith("rnn"):  # the sigma_1 bound holds for plain RNNs only
            item.update(reference=reference_slope(sigma, len(s["median"])), verdict=verdict(item["name"], sigma, thr))
        else:
            item["verdict"] = f"{item['name']}: σ₁(W_hh) = {sigma:.3g}, but gates add a path around W_hh: no bound"
        items.append(item)
    return items


def heatmap_items(flows) -> list[dict]:
    """View 3 payload: the top layer's |dL/dh_t| per unit, binned over time when very large."""
    items = []
    for f in flows:
        units = f.hidden_grad_units[-1]  # (T, H)
        T, H = units.shape
        binned, k = bin_max(units, max(1, HEAT_CELLS // H), axis=0)
        items.append({"arch": f.arch, "name": f.name, "values": binned, "log10": safe_log10(binned),
                      "t": np.arange(0, T, k)[: binned.shape[0]], "bin": k})
    return items


def spectra_items(keys) -> list[dict]:
    """View 4 payload: top-layer W_hh singular values, 1/gamma, and each step Jacobian's
    largest and smallest singular value (sequence 0)."""
    items = []
    for key in keys:
        item = {"arch": key.arch, "name": DISPLAY_NAMES[key.arch], "weights": weight_spectra(key)[-1],
                "threshold": gamma_threshold(key), "step_max": None, "step_min": None, "t": key_spectra_steps(key)}
        sv = step_spectra(key)[-1]  # (T, n), descending
        item["step_max"], item["step_min"] = sv[:, 0], sv[:, -1]
        items.append(item)
    return items


def gate_items(keys) -> list[dict]:
    """View 5 payload: batch median/min/max of the top layer's gate products over t."""
    items = []
    for key in keys:
        s = batch_summary(gate_products(key)[-1])
        B = gate_products(key).shape[-1]
        items.append({"arch": key.arch, "name": DISPLAY_NAMES[key.arch], "label": GATE_LABELS[key.arch],
                      "band": B > 1, "sequences": B, **s})
    return items


def connectivity_items(keys) -> list[dict]:
    """View 6 payload: ||dy_t/dx_s|| (sequence 0) at most CONNECTIVITY_SIDE per side. Rows are
    the output steps ``row_ticks`` (:func:`connectivity_rows`: every step, or the last of each
    bin of ``bin`` steps), columns the max over ``bin`` consecutive input steps from ``ticks``."""
    items = []
    for key in keys:
        c = connectivity(key)
        binned, k = bin_max(c, CONNECTIVITY_SIDE, axis=1)
        items.append({"arch": key.arch, "name": DISPLAY_NAMES[key.arch], "values": binned,
                      "log10": safe_log10(binned), "ticks": np.arange(0, c.shape[1], k)[: binned.shape[1]],
                      "row_ticks": connectivity_rows(c.shape[1]), "bin": k})
    return items


def strict_floats(a):
    """Nested lists (or a scalar) of exact floats for strict JSON: non-finite values become the
    strings ``"nan"``, ``"inf"`` and ``"-inf"``."""
    a = np.asarray(a, dtype=float)
    if np.all(np.isfinite(a)):
        return a.tolist()
    out = a.astype(object)
    out[np.isnan(a)] = "nan"
    out[np.isposinf(a)] = "inf"
    out[np.isneginf(a)] = "-inf"
    return out.tolist()
