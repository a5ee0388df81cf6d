"""How much each view may compute: a cost model in seconds, so every request answers in time.

A view request should answer within :data:`VIEW_SECONDS` on the reference machine (2 cores):
3 s for one user, 1 s on a class server (``bpttlab serve --view-seconds``); each architecture
gets a quarter of it (up to four are drawn at once). The rates below were measured there, on
one core under load (``benchmarks/bench_maxima.py``). They predict the seconds of each piece of
work from the sizes, so that

- the settings are clamped (batch, then seq_len) until view 1's BPTT runs fit
  (:data:`VIEW_WORK_CAP`, applied by :mod:`visualizer.urlstate`);
- the Jacobian and gating views analyse fewer sequences, and below one sequence only the last
  ``lags`` steps of the first (:func:`jacobian_plan`, :func:`gates_plan`);
- the spectra view computes fewer step SVDs (:func:`spectra_count`) and the connectivity view
  fewer output rows, then only the last input steps (:func:`connectivity_plan`);
- the Cost view times fewer lengths T (the rest of each curve from the cost model) and compares
  fewer windows, sequences and steps (:func:`gradient_seconds`, :func:`rtrl_seconds`, its shares
  :data:`COST_SWEEP_SECONDS` and :data:`COST_TRADEOFF_SECONDS`; plans in :mod:`visualizer.cost` and
  :mod:`visualizer.tradeoff`).

Each view's caption says what was computed. Keys are :class:`visualizer.compute.RunKey`.
Nothing here imports the rest of the app.
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

SECONDS_ENV = "BPTTLAB_VIEW_SECONDS"  # set by ``bpttlab serve --view-seconds`` for a shared server
SECONDS_RANGE = (0.2, 30.0)
WORK_CAP_SECONDS = 3.0  # what view 1's BPTT runs may take at VIEW_WORK_CAP (the settings' cap, fixed)


def seconds_from_env(raw: str | None) -> float:
    """The view budget from :data:`SECONDS_ENV`'s value: :data:`WORK_CAP_SECONDS` when unset;
    a value that is not a number in :data:`SECONDS_RANGE` is logged and ignored."""
    if raw is None or not raw.strip():
        return WORK_CAP_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not SECONDS_RANGE[0] <= value <= SECONDS_RANGE[1]:
        log.warning("%s=%r is not a number of seconds in [%g, %g]; using %g", SECONDS_ENV, raw[:40],
                    *SECONDS_RANGE, WORK_CAP_SECONDS)
        return WORK_CAP_SECONDS
    return value


# What one request for a derived view (or the Cost view) may compute, in seconds: 3 s for one
# user; a class server shares its cores among many students and gives each request less
# (``bpttlab serve`` sets 1 s), so the views analyse fewer sequences or steps sooner (their captions say so).
VIEW_SECONDS = seconds_from_env(os.environ.get(SECONDS_ENV))
ARCH_SECONDS = VIEW_SECONDS / 4
GATE_BLOCKS = {"rnn": 1, "rnn-relu": 1, "lstm": 4, "gru": 3}
VIEW_WORK_CAP = 3_200_000_000  # T B L G H^2 over the chosen architectures: view 1's BPTT runs
FORWARD_RATE = 2.2e9  # G H^2 per second: one forward step of one layer and sequence (input projection included)
STEP_SECONDS = 5e-5  # Python overhead per step and layer
LIN_RATE = 1.5e9  # G H^2 per second: a gated cell's step Jacobian (the plain RNN's is factored: free)
GEMM_RATE = 6e9  # n^3 per second: one step of a Jacobian product (with its power iteration)
PRODUCT_SHARE = {"lstm": 0.6}  # of n^3: the LSTM's factored step Jacobian (two half-size GEMMs) and rank compression
PRODUCT_STEP_SECONDS = 2e-4  # per step of the Jacobian products, all sequences at once (the batched power iteration)
EIG_RATE = 5e9  # n^3 per second: a plain RNN's step Jacobian norm (A A^T and eigvalsh)
SVD_RATE = 3.5e9  # n^3 per second: a full SVD
CONNECTIVITY_RATE = 1e10  # rows x O x n^2 per second and step of the connectivity sweep
MIN_SECONDS = 0.1  # what a view may always spend after its fixed work
SPECTRA_STEPS = 200  # one-step Jacobians analysed at most by the spectra view
CONNECTIVITY_SIDE = 250  # output rows (and displayed input columns) of the connectivity view at most
GRAD_RATE = 2e9  # multiply-adds per second of a gradient's work model (core.checkpointing.work_model)
GRAD_STEP_SECONDS = 1.5e-5  # Python overhead per step equivalent (3 per BPTT step) and layer of a gradient
WEIGHT_SECONDS = 1e-8  # per parameter, each time a layer's forward and backward run over a chunk of steps
RTRL_RATE = 2e9  # multiply-adds per second of RTRL (core.rtrl.flops_model)
RTRL_STEP_SECONDS = 2.5e-4  # Python overhead per RTRL step and layer
COST_SWEEP_SECONDS = VIEW_SECONDS / 4  # the Cost view's timing curves (one architecture, all methods)
COST_TRADEOFF_SECONDS = (VIEW_SECONDS - COST_SWEEP_SECONDS) / 4  # its truncation comparison, per architecture


def state_size(key) -> int:
    """n: H, or 2H for the LSTM's [h; c]."""
    return key.hidden * (2 if key.arch == "lstm" else 1)


def _gh2(key) -> float:
    """G H^2: the multiply-adds of one step of one layer and sequence."""
    return GATE_BLOCKS[key.arch] * float(key.hidden) ** 2


def lin_seconds(key) -> float:
    """Seconds to build one step Jacobian of one layer and sequence."""
    return 0.0 if key.arch.startswith("rnn") else _gh2(key) / LIN_RATE


def fixed_seconds(key) -> float:
    """Seconds every derived view spends on ``key`` before its own work: the forward pass over
    the batch and the singular values of the top layer's W_hh (a (G H, H) SVD)."""
    d = key.data
    forward = d.seq_len * key.layers * (d.batch * _gh2(key) / FORWARD_RATE + STEP_SECONDS)
    return forward + _gh2(key) * key.hidden / SVD_RATE


def view_seconds(key) -> float:
    """Seconds ``key``'s share of a view may spend on its own work after :func:`fixed_seconds`."""
    return max(MIN_SECONDS, ARCH_SECONDS - fixed_seconds(key))


def _fit(per_step: float, key, setup: float = 0.0, overhead: float = 0.0) -> tuple[int, int | None]:
    """(sequences, lags or None) whose work (``setup`` seconds, then ``per_step`` per step and
    sequence plus ``overhead`` per step for all of them) fits :func:`view_seconds`: all sequences
    while whole ones fit, else fewer, and below one sequence only the last ``lags`` steps of the
    first (at least one)."""
    T, B, seconds = key.data.seq_len, key.data.batch, view_seconds(key) - setup
    fitting = int(min(B, (seconds - overhead * T) // max(per_step * T, 1e-12)))
    if fitting >= 1:
        return fitting, None
    return 1, int(min(T - 1, max(1, seconds // max(per_step + overhead, 1e-12))))


def gradient_seconds(work: float, step_work: float, layers: int, weights: float = 0.0) -> float:
    """Seconds of one gradient of ``work`` multiply-adds done in forward-step equivalents of
    ``step_work`` multiply-adds each (every layer; see :func:`core.checkpointing.work_model`), run
    in chunks of steps (windows, segments) whose parameter counts add up to ``weights`` (each chunk
    copies the weights and accumulates their gradients, whatever its length)."""
    return work / GRAD_RATE + work / max(step_work, 1.0) * layers * GRAD_STEP_SECONDS + weights * WEIGHT_SECONDS


def rtrl_seconds(flops: float, steps: int, layers: int) -> float:
    """Seconds of RTRL over ``steps`` steps of ``flops`` multiply-adds in all."""
    return flops / RTRL_RATE + steps * layers * RTRL_STEP_SECONDS


def jacobian_plan(key) -> tuple[int, int | None]:
    """(sequences, lags or None) of the Jacobian-products view (top layer: per step and sequence
    one step Jacobian and one n^3 product; a full SVD while the product's top singular values are
    still clustered, at its first steps)."""
    n3 = float(state_size(key)) ** 3
    return _fit(product_seconds(key), key, setup=n3 / SVD_RATE, overhead=PRODUCT_STEP_SECONDS)


def product_seconds(key) -> float:
    """Seconds per step and sequence of a Jacobian product: the step Jacobian and the product's
    GEMM (a share of n^3 for the LSTM, :data:`PRODUCT_SHARE`), besides :data:`PRODUCT_STEP_SECONDS`."""
    return lin_seconds(key) + PRODUCT_SHARE.get(key.arch, 1.0) * float(state_size(key)) ** 3 / GEMM_RATE


def gates_plan(key) -> tuple[int, int | None]:
    """(sequences, lags or None) of the gating view: for the plain RNN one n^3 step norm per step
    and sequence; the LSTM's and GRU's gate products are cheap (all of them)."""
    if not key.arch.startswith("rnn"):
        return key.data.batch, None
    return _fit(float(key.hidden) ** 3 / EIG_RATE, key)


def spectra_count(key) -> int:
    """How many one-step Jacobians (top layer, first sequence) the spectra view decomposes: one
    full SVD each, at most SPECTRA_STEPS, at least the first and last step."""
    per_step = lin_seconds(key) + float(state_size(key)) ** 3 / SVD_RATE
    return int(min(SPECTRA_STEPS, key.data.seq_len, max(2, view_seconds(key) // per_step)))


def connectivity_plan(key, outputs: int) -> tuple[int | None, int]:
    """(lags or None, rows) of the connectivity view for a readout of ``outputs`` units: every
    input step while the sweep back through time fits with at least two output rows, else only
    the last ``lags`` input steps; then as many output rows as fit (at most CONNECTIVITY_SIDE)."""
    T, seconds = key.data.seq_len, view_seconds(key)
    per_step = key.layers * (2 * lin_seconds(key) + STEP_SECONDS)  # each input step, every layer
    per_row = key.layers * outputs * float(state_size(key)) ** 2 / CONNECTIVITY_RATE / 2  # each row and step
    width = T if T * (per_step + 2 * per_row) <= seconds else int(max(1, seconds // (per_step + 2 * per_row)))
    rows = int(min(CONNECTIVITY_SIDE, width, max(2, (seconds - width * per_step) // max(width * per_row, 1e-12))))
    return (None if width >= T else width - 1), max(1, rows)
