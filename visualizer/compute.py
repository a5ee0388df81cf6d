"""Glue between the app's :class:`~visualizer.urlstate.Params` and the core engine.

Each view's numbers come from one tested core function; this module only builds the models and
data those functions take, keeps the results of recent runs (bounded LRU caches keyed by exactly
the settings a result depends on, so changing e.g. the LSTM forget bias recomputes nothing for the
RNN; cached arrays are read-only, as every caller shares them). A :class:`ModelRun` puts a given
model on given data (notebooks) through the same functions. :mod:`visualizer.payloads` reduces the
results for display. Nothing here imports dash or plotly or knows the app's settings type.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

import core

from .budget import (
    CONNECTIVITY_SIDE,
    SPECTRA_STEPS,
    connectivity_plan,
    gates_plan,
    jacobian_plan,
    spectra_count,
)
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


def forward_key(key):
    """The cache key of a result of the forward pass alone (the model, its inputs and what is computed
    from them): ``key`` without the settings only the loss and the backward pass read (``truncate``,
    ``loss_on``), so changing those recomputes nothing of the Jacobian, Spectra, Gating and
    Connectivity tabs. A :class:`ModelRun` is its own key."""
    if isinstance(key, DataKey):
        return replace(key, loss_on="")
    if isinstance(key, RunKey):
        return replace(key, data=forward_key(key.data), truncate=None)
    return key


# Entries per cache: enough for every student of a class to find their previous settings' results (a
# result is looked up again when only another architecture, another tab or a backward setting changes);
# the byte bounds keep the memory in check.
ENTRIES = 256


@memoize(maxsize=64, max_bytes=64 * 2**20, key=forward_key)
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


@memoize(maxsize=64, max_bytes=256 * 2**20, key=forward_key)
def get_model(key: RunKey):
    """The initialised model of ``key``."""
    task = get_task(key.data)
    model = core.build(key.arch, input_size=task.input_size, hidden_size=key.hidden,
                       output_size=task.output_size, num_layers=key.layers, seed=key.seed,
                       init=key.init, scale=key.scale, forget_bias=key.forget_bias)
    for w in model.params.values():
        read_only(w)
    return model


# ----------------------------------------------------------------------------- a given model (notebooks)
@dataclass(frozen=True, eq=False)
class Batch:
    """Inputs and targets given directly, shaped as a :class:`core.Task`'s (``x`` (T, B, input_size))."""

    name: str
    x: np.ndarray
    y: np.ndarray
    loss: str
    loss_on: str


@dataclass(frozen=True, eq=False)
class ModelRun:
    """A given model on given data: everything a :class:`RunKey` names, held directly. Every
    computation below takes either (results of a ModelRun are cached by identity)."""

    arch: str
    hidden: int
    layers: int
    data: DataKey
    truncate: int | None
    model: core.Model
    batch: Batch


def model_run(model: core.Model, x, y=None, loss: str | None = None, loss_on: str | None = None,
              truncate: int | None = None) -> ModelRun:
    """A :class:`ModelRun` of ``model`` on ``x`` (T, B, input_size), or on a :class:`core.Task`.

    Without ``y`` the loss is the MSE against 0 at the last step (the gradient views show how the
    network carries any loss back). ``loss`` defaults to MSE; ``loss_on`` to ``"all"`` when ``y``
    has the (T, B) leading shape of ``x``, else ``"last"``.
    """
    if hasattr(x, "x"):  # a core.Task
        name, y, loss, loss_on, x = x.name, x.y if y is None else y, loss or x.loss, loss_on or x.loss_on, x.x
    else:
        name = "given inputs"
    x = np.asarray(x, dtype=float)
    c = model.config
    if x.ndim != 3 or x.shape[2] != c.input_size:
        raise ValueError(f"x must have shape (T, B, {c.input_size}) for this model, not {x.shape}")
    if y is None:
        y, loss, loss_on = np.zeros((x.shape[1], c.output_size)), "mse", "last"
    y = np.asarray(y)
    loss = loss or "mse"
    loss_on = loss_on or ("all" if y.shape[:2] == x.shape[:2] else "last")
    arch = "rnn-relu" if c.arch == "rnn" and c.nonlinearity == "relu" else c.arch
    T, B = x.shape[:2]
    truncate = truncate if truncate is not None and truncate < T else None
    return ModelRun(arch=arch, hidden=c.hidden_size, layers=c.num_layers,
                    data=DataKey(name, T, B, c.seed, loss_on), truncate=truncate, model=model,
                    batch=Batch(name, read_only(x), read_only(y), loss, loss_on))


def model_of(key) -> core.Model:
    """The model a :class:`RunKey` or :class:`ModelRun` names."""
    return key.model if isinstance(key, ModelRun) else get_model(key)


def task_of(key):
    """The data (``x``, ``y``, ``loss``, ``loss_on``, ``name``) a :class:`RunKey` or :class:`ModelRun` names."""
    return key.batch if isinstance(key, ModelRun) else get_task(key.data)


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class GradFlow:
    """One architecture's BPTT summary (the ``grad_norm`` and ``heatmap`` views). L layers, T steps, H units."""

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


@memoize(maxsize=ENTRIES, max_bytes=256 * 2**20)
def grad_flow(key: RunKey) -> GradFlow:
    """Run :func:`core.bptt` for ``key`` and keep what the views need."""
    task, model = task_of(key), model_of(key)
    y, loss_on, note = targets(task, key.data.loss_on)
    res = core.bptt(model, task.x, y, loss=task.loss, loss_on=loss_on, truncate=key.truncate)
    return GradFlow(arch=key.arch, name=DISPLAY_NAMES[key.arch], hidden=key.hidden,
                    num_params=model.num_parameters(), loss=float(res.loss),
                    hidden_grad_norms=read_only(res.hidden_grad_norms),
                    hidden_grad_units=read_only(res.hidden_grad_units),
                    nonfinite_step=res.nonfinite_step, nonfinite_grad_step=res.nonfinite_grad_step,
                    sigma_max=float(weight_spectra(key)[-1][0]), loss_note=note)


@memoize(maxsize=ENTRIES, max_bytes=16 * 2**20, key=forward_key)
def weight_spectra(key: RunKey) -> np.ndarray:
    """(L, n) singular values of W_hh, descending, top layer only (the others NaN;
    :func:`core.weight_singular_values`)."""
    return read_only(core.weight_singular_values(model_of(key), layers=[key.layers - 1]))


@memoize(maxsize=ENTRIES, key=forward_key)
def spectral_radius(key: RunKey) -> float:
    """rho(W_hh) of the top layer of a plain RNN (:func:`core.spectral_radius`; an eigenvalue problem,
    about 0.5 s at H = 512, asked for by the Jacobians tab's figure and its caption)."""
    return float(core.spectral_radius(model_of(key), layers=[key.layers - 1])[-1])


@memoize(maxsize=ENTRIES, key=forward_key)
def gamma_threshold(key: RunKey) -> float:
    """Pascanu et al.'s threshold 1/gamma for this architecture (:func:`core.gamma_bound`)."""
    return 1.0 / float(core.gamma_bound(model_of(key)))


def jacobian_batch(key: RunKey) -> int:
    """How many sequences the Jacobian-product views analyse (:func:`visualizer.budget.jacobian_plan`)."""
    return jacobian_plan(key)[0]


@memoize(maxsize=ENTRIES, max_bytes=64 * 2**20, key=forward_key)
def jacobian_norms(key: RunKey) -> np.ndarray:
    """(L, T, B') ||ds_{T-1}/ds_t|| for the first B' sequences of :func:`visualizer.budget.jacobian_plan`,
    top layer only (the others NaN), and only for the last ``lags`` steps when the plan says so
    (:func:`core.jacobian_norms`)."""
    task = task_of(key)
    B, lags = jacobian_plan(key)
    with np.errstate(all="ignore"):
        return read_only(core.jacobian_norms(model_of(key), task.x[:, :B], lags=lags, layers=[key.layers - 1]))


def spectra_steps(T: int, count: int = SPECTRA_STEPS) -> np.ndarray:
    """The step indices whose one-step Jacobian spectra are computed: all, or ``count`` evenly
    spaced ones (always the first and last step)."""
    if count >= T:
        return np.arange(T)
    return np.unique(np.linspace(0, T - 1, count).round().astype(int))


def key_spectra_steps(key: RunKey) -> np.ndarray:
    """:func:`spectra_steps` for ``key`` (as many as :func:`visualizer.budget.spectra_count` allows)."""
    return spectra_steps(key.data.seq_len, spectra_count(key))


@memoize(maxsize=ENTRIES, max_bytes=64 * 2**20, key=forward_key)
def step_spectra(key: RunKey) -> np.ndarray:
    """(L, len(key_spectra_steps(key)), n) singular values of the top layer's one-step Jacobians at
    :func:`key_spectra_steps`, sequence 0 (other layers NaN; :func:`core.step_jacobian_singular_values`)."""
    task = task_of(key)
    steps = key_spectra_steps(key)
    with np.errstate(all="ignore"):
        return read_only(core.step_jacobian_singular_values(model_of(key), task.x, batch_index=0, steps=steps,
                                                            layers=[key.layers - 1]))


@memoize(maxsize=ENTRIES, max_bytes=64 * 2**20, key=forward_key)
def gate_products(key: RunKey) -> np.ndarray:
    """(L, T, B') product of forget / carry gates; for the RNN, of step Jacobian norms over the
    sequences and steps of :func:`visualizer.budget.gates_plan`; top layer only (:func:`core.gate_products`)."""
    task = task_of(key)
    B, lags = gates_plan(key)
    with np.errstate(all="ignore"):
        return read_only(core.gate_products(model_of(key), task.x[:, :B], lags=lags, layers=[key.layers - 1]))


def connectivity_rows(T: int, side: int = CONNECTIVITY_SIDE, first: int = 0) -> np.ndarray:
    """Output steps (rows) the connectivity view computes among steps ``first`` .. T-1: all when
    there are at most ``side``, else the last step of each of ``side``-or-fewer bins of k
    consecutive steps (so T - 1 is always in; the cost of :func:`core.connectivity` is
    proportional to the number of rows)."""
    k = max(1, -(-(T - first) // side))
    return np.minimum(np.arange(first + k - 1, T + k - 1, k), T - 1)


def key_connectivity_rows(key: RunKey) -> tuple[np.ndarray, int | None]:
    """(output rows, input lags or None) the connectivity view computes for ``key``
    (:func:`visualizer.budget.connectivity_plan`)."""
    T = key.data.seq_len
    lags, side = connectivity_plan(key, model_of(key).config.output_size)
    return connectivity_rows(T, side, 0 if lags is None else T - 1 - lags), lags


@memoize(maxsize=ENTRIES, max_bytes=64 * 2**20, key=forward_key)
def connectivity(key: RunKey) -> np.ndarray:
    """(len(rows), T) ||dy_t/dx_s|| for sequence 0 at the output steps and input lags of
    :func:`key_connectivity_rows` (earlier input steps NaN; :func:`core.connectivity`)."""
    task = task_of(key)
    rows, lags = key_connectivity_rows(key)
    with np.errstate(all="ignore"):
        return read_only(core.connectivity(model_of(key), task.x, batch_index=0, outputs=rows, lags=lags))


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
