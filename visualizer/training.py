"""Live training for the app: configs from the controls, a resumable loop, compact payloads.

Each step is :func:`core.train_step` (so the run equals :func:`core.train_iter` step for step;
``tests/visualizer/test_training.py`` checks it), and the state between steps is an explicit
:class:`RunState`, so a run can stop anywhere and continue exactly: Pause cancels the background
job, Play resumes from the last checkpoint the browser received and silently replays the few
steps after it.

Everything that travels to the browser is plain JSON: floats rounded to :data:`DIGITS`
significant digits, ``"inf"``/``"-inf"``/``"nan"`` strings for non-finite values, and the
checkpoint as a base64 ``.npz`` (loaded back with ``allow_pickle=False`` and shape checks,
since it comes back from the browser). Nothing here imports dash or plotly.
"""
from __future__ import annotations

import base64
import binascii
import copy
import io
import math
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass, replace

import numpy as np

import core

from . import compute, facts
from .cache import memoize
from .urlstate import Params

DEFAULT_STEPS = 300
MAX_STEPS = 2000
MAX_RECORDED = 100  # snapshots kept per architecture for the slider
DIGITS = 6  # significant digits of floats sent to the browser
PROGRESS_SECONDS = 0.03  # at most one progress write per this many seconds (a fresh one for every poll)
CHECKPOINT_SECONDS = 2.0  # a resumable checkpoint at most this often...
CHECKPOINT_WRITES = 3  # ...sent in this many consecutive progress writes (so that a poll sees one)
CHECKPOINT_MAX_CHARS = 4_000_000  # larger checkpoints are not sent (resume replays from step 0)
CHECKPOINT_MAX_MEMBERS = 1000  # arrays in a checkpoint sent back by the browser
WINDOW = 12  # recorded snapshots repeated per progress write (a slow poll loses none)
HISTORY_SECONDS = 0.5  # progress payloads carry the full loss histories at most this often
HISTORY_HOLD_SECONDS = 0.25  # ... and then in every payload for this long: a poll reads only the newest
# payload, so histories in one payload alone, overwritten 0.03 s later, would rarely reach the browser
TRAIN_FIELDS = ("arch", "seq_len", "hidden", "layers", "batch", "task", "init", "scale", "forget_bias",
                "truncate", "clip", "optimizer", "lr", "seed", "match_params")


# ----------------------------------------------------------------------------- configs
def clamp_steps(steps) -> int:
    """Training steps as an int in [1, MAX_STEPS] (DEFAULT_STEPS for anything unreadable)."""
    try:
        value = float(steps)
    except OverflowError:  # an integer too large for a float
        return MAX_STEPS if steps > 0 else 1
    except (TypeError, ValueError):
        return DEFAULT_STEPS
    if not math.isfinite(value):
        return DEFAULT_STEPS
    return int(min(max(round(value), 1), MAX_STEPS))


def record_every(steps: int) -> int:
    """Steps between recorded snapshots: at most MAX_RECORDED of them per run."""
    return max(1, -(-int(steps) // MAX_RECORDED))


def train_config(params: Params, arch: str, steps: int = DEFAULT_STEPS) -> core.TrainConfig:
    """The :class:`core.TrainConfig` of ``arch`` under the app's ``params``.

    Same task, data seed and initialisation scheme for every architecture; the hidden size
    follows ``params.match_params`` exactly as the gradient views do
    (:func:`visualizer.compute.hidden_for`). Raises ValueError for impossible task settings.
    """
    key = compute.run_key(params, arch)
    return core.TrainConfig(
        task=params.task, arch=arch, hidden_size=key.hidden, num_layers=params.layers, init=params.init,
        init_scale=key.scale, forget_bias=key.forget_bias, optimizer=params.optimizer, lr=float(params.lr),
        clip=None if params.clip is None else float(params.clip), truncate=key.truncate,
        steps=clamp_steps(steps), batch_size=params.batch, seq_len=params.seq_len, seed=params.seed,
        snapshot_every=1, jacobians=False)


def run_key(params: Params, steps: int) -> str:
    """A string that changes exactly when a training run's settings change."""
    parts = [f"{name}={getattr(params, name)!r}" for name in TRAIN_FIELDS]
    return "&".join([*parts, f"steps={clamp_steps(steps)}"])


# ----------------------------------------------------------------------------- the loop
@dataclass(frozen=True, eq=False)
class RunState:
    """One architecture's run after ``step`` updates: enough to continue it exactly.

    ``losses``, ``grad_norms`` (step,) float and ``clip_flags`` (step,) bool are the histories;
    ``hidden_grad_norms`` (L, T) is the last step's ||dL/dh^l_t|| (None before step 1).
    """

    step: int
    params: dict
    opt: core.OptimizerState
    losses: np.ndarray
    grad_norms: np.ndarray
    clip_flags: np.ndarray
    diverged: bool = False
    hidden_grad_norms: np.ndarray | None = None


def initial_state(config: core.TrainConfig) -> RunState:
    """The state before any update: :func:`core.build_model`'s parameters, empty histories."""
    model = core.build_model(config)
    return RunState(0, model.state_dict(), core.OptimizerState(), np.zeros(0), np.zeros(0), np.zeros(0, bool))


def train_step(config: core.TrainConfig, model: core.Model, state: RunState) -> RunState:
    """Step ``state.step + 1`` of the run (:func:`core.train_step`), as a new :class:`RunState`.

    ``model`` supplies the architecture (its parameters are neither used nor changed). A step
    whose loss or gradient norm is NaN/inf is recorded but not applied and marks the run
    ``diverged`` (as :func:`core.train_iter` does).
    """
    runner = copy.copy(model)  # shallow: same config, this state's parameters
    runner.params = state.params
    r = core.train_step(config, runner, state.opt, state.step + 1)
    return RunState(r.step, r.params, r.opt_state, np.append(state.losses, r.loss),
                    np.append(state.grad_norms, r.grad_norm), np.append(state.clip_flags, r.clipped), r.diverged,
                    r.bptt.hidden_grad_norms)


def finished(config: core.TrainConfig, state: RunState) -> bool:
    """True once the run has done all its steps or diverged."""
    return state.diverged or state.step >= config.steps


# ----------------------------------------------------------------------------- JSON payloads
def jlist(a):
    """Floats for JSON from an array (nested lists) or a scalar: DIGITS significant digits,
    non-finite values as the strings ``"inf"``, ``"-inf"``, ``"nan"``."""
    a = np.asarray(a, dtype=float)
    with np.errstate(all="ignore"):
        ok = np.isfinite(a) & (a != 0)
        k = np.where(ok, DIGITS - 1 - np.floor(np.log10(np.where(ok, np.abs(a), 1.0))), 0.0)
        up, down = 10.0 ** np.clip(k, 0, 300), 10.0 ** np.clip(-k, 0, 300)
        r = np.where(k >= 0, np.round(a * up) / up, np.round(a / down) * down)  # exact powers of ten
        r = np.where(ok & np.isfinite(r) & (np.abs(k) <= 300), r, a)
    return compute.strict_floats(r)  # r is non-finite exactly where a is


def jfloat(v):
    """One float for JSON (see :func:`jlist`)."""
    return jlist(float(v))


def unjson(values) -> np.ndarray:
    """Inverse of :func:`jlist`: float array with inf/NaN restored (None becomes NaN)."""
    def one(v):
        return float("nan") if v is None else float(v)

    def walk(v):
        return [walk(x) for x in v] if isinstance(v, list) else one(v)

    return np.asarray(walk(values), dtype=float)


def history(arch: str, config: core.TrainConfig, state: RunState, baseline: float, full: bool = True) -> dict:
    """One architecture's status (step, last loss, clipped count, ...) and, if ``full``, its
    per-step ``losses``, ``grad_norms`` and ``clipped`` steps (1-based), for the live figures."""
    out = {"arch": arch, "name": compute.DISPLAY_NAMES[arch], "step": state.step, "steps": config.steps,
           "loss": jfloat(state.losses[-1]) if state.step else None, "n_clipped": int(np.sum(state.clip_flags)),
           "clip": config.clip, "diverged": bool(state.diverged), "baseline": jfloat(baseline),
           "hidden": config.hidden_size}
    if full:
        out.update(losses=jlist(state.losses), grad_norms=jlist(state.grad_norms),
                   clipped=[int(i) + 1 for i in np.flatnonzero(state.clip_flags)])
    return out


def snapshot(arch: str, state: RunState) -> dict:
    """The gradient-flow snapshot after ``state.step``: ||dL/dh^l_t|| (L, T) and the loss."""
    return {"arch": arch, "step": state.step, "loss": jfloat(state.losses[-1]),
            "hidden": jlist(state.hidden_grad_norms), "diverged": bool(state.diverged)}


# ----------------------------------------------------------------------------- checkpoints
def _checkpoint_arrays(states: dict) -> dict:
    """The arrays of :func:`encode_checkpoint`, by member name."""
    arrays = {}
    for arch, s in states.items():
        arrays[f"{arch}/step"] = np.array(s.step)
        arrays[f"{arch}/opt_step"] = np.array(s.opt.step)
        arrays[f"{arch}/diverged"] = np.array(s.diverged)
        arrays[f"{arch}/losses"] = s.losses
        arrays[f"{arch}/grad_norms"] = s.grad_norms
        arrays[f"{arch}/clip_flags"] = s.clip_flags
        for name, v in s.params.items():
            arrays[f"{arch}/param/{name}"] = v
        for kind, bufs in s.opt.buffers.items():
            for name, v in bufs.items():
                arrays[f"{arch}/opt/{kind}/{name}"] = v
    return arrays


def encode_checkpoint(states: dict, max_chars: int | None = None) -> str | None:
    """Base64 ``.npz`` of every architecture's :class:`RunState` (exact float64); None when it would
    be longer than ``max_chars``, known from the arrays' sizes before anything is encoded (at the
    app's maxima the states hold ~450 MB: encoding them only to drop them took ~2 GB)."""
    arrays = _checkpoint_arrays(states)
    if max_chars is not None and 4 * sum(np.asarray(v).nbytes for v in arrays.values()) // 3 > max_chars:
        return None
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    text = base64.b64encode(buf.getvalue()).decode("ascii")
    return text if max_chars is None or len(text) <= max_chars else None


def _npy_fits(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """True if the zip member is an ``.npy`` whose header (plain dtype, shape) describes exactly the
    bytes it holds: checked before numpy allocates what a header declares."""
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                return False
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _fortran, dtype = read(f, max_header_size=4096)
            header = f.tell()
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, TypeError, SyntaxError):
        return False
    if dtype.hasobject or not all(isinstance(n, int) and n >= 0 for n in shape):
        return False
    return math.prod(shape) * dtype.itemsize == info.file_size - header


def steps_message(raw) -> str | None:
    """None if ``raw`` is a whole number of steps in [1, MAX_STEPS], else a note saying what
    :func:`clamp_steps` used instead."""
    try:
        ok = not isinstance(raw, bool) and float(raw) == int(float(raw)) and 1 <= int(float(raw)) <= MAX_STEPS
    except (TypeError, ValueError, OverflowError):
        ok = False
    if ok:
        return None
    shown = repr(raw) if len(repr(raw)) <= 20 else repr(raw)[:17] + "..."
    n = clamp_steps(raw)
    return f"steps: {shown} is not a whole number from 1 to {MAX_STEPS}; trained {n} step{'s' if n != 1 else ''}."


def decode_checkpoint(text, configs: dict) -> dict | None:
    """The states of :func:`encode_checkpoint`, checked against ``configs``; None if unusable.

    The text comes back from the browser, so it is size-limited, must be an uncompressed zip
    (what :func:`encode_checkpoint` writes: nothing can inflate), is loaded without pickle, and
    every array must have the shape of a freshly built model of that config.
    """
    if not isinstance(text, str) or len(text) > CHECKPOINT_MAX_CHARS:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            infos = zf.infolist()
            if (len(infos) > CHECKPOINT_MAX_MEMBERS or sum(i.file_size for i in infos) > len(raw)
                    or any(i.compress_type != zipfile.ZIP_STORED for i in infos)
                    or not all(_npy_fits(zf, i) for i in infos)):
                return None
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        states = {}
        for arch, config in configs.items():
            fresh = initial_state(config)
            shapes = {k: v.shape for k, v in fresh.params.items()}
            step = int(data[f"{arch}/step"])
            params = {k: np.asarray(data[f"{arch}/param/{k}"], float) for k in shapes}
            kinds = {"sgd": ("momentum_buffer",) if config.momentum != 0 else (), "adam": ("exp_avg", "exp_avg_sq")}
            buffers = {kind: {k: np.asarray(data[f"{arch}/opt/{kind}/{k}"], float) for k in shapes}
                       for kind in kinds[config.optimizer]} if step > 0 else {}
            hist = [np.asarray(data[f"{arch}/{k}"]) for k in ("losses", "grad_norms", "clip_flags")]
            ok = (0 <= step <= config.steps and all(h.shape == (step,) for h in hist)
                  and all(params[k].shape == s for k, s in shapes.items())
                  and all(b[k].shape == s for b in buffers.values() for k, s in shapes.items()))
            if not ok:
                return None
            states[arch] = RunState(step, params, core.OptimizerState(int(data[f"{arch}/opt_step"]), buffers),
                                    hist[0].astype(float), hist[1].astype(float), hist[2].astype(bool),
                                    bool(data[f"{arch}/diverged"]))
        return states
    except (ValueError, KeyError, TypeError, OSError, EOFError, binascii.Error, zipfile.BadZipFile, zlib.error,
            NotImplementedError, RuntimeError):  # zipfile: unknown version or method, encrypted member
        return None


# ----------------------------------------------------------------------------- the job
def run_job(set_progress, params: Params, steps: int, target: int, start_step: int = 0,
            checkpoint: str | None = None, run_id: str | None = None, keep_going=None,
            clock=time.monotonic, history_hold: float = HISTORY_HOLD_SECONDS) -> dict:
    """Train every architecture of ``params`` up to step ``target`` and report as it goes.

    Parameters
    ----------
    set_progress : callable taking one payload dict (Dash's progress setter), or None.
    params, steps : the run's settings (see :func:`train_config`).
    target : stop after this step (<= steps).  start_step : steps the browser already shows;
        earlier steps are replayed silently from ``checkpoint`` (or from step 0).
    run_id : the run this job continues (None: a new run).
    keep_going : optional callable, asked after every step; the job stops early (status
        ``"paused"``) when it returns False (e.g. at the time limit of a job slot).
    history_hold : seconds for which, every HISTORY_SECONDS, the progress payloads carry the
        histories (at least the polling interval, so that some poll reads them).

    Returns
    -------
    The final payload: ``{"run", "key", "status", "target", "every", "full", "archs": {arch:
    history}, "snaps": [every recorded snapshot this job made], "live": [newest snapshot per
    arch], "checkpoint": {"step", "data"} or None}``. Progress payloads have the same keys with
    ``snaps`` limited to the last WINDOW, the per-step histories only every HISTORY_SECONDS
    for ``history_hold`` seconds (``full``), and a checkpoint (every CHECKPOINT_SECONDS) only in CHECKPOINT_WRITES
    consecutive payloads: a lost one only means a longer silent replay.
    """
    steps = clamp_steps(steps)
    configs = {a: train_config(params, a, steps) for a in params.arch}
    models = {a: core.build_model(c) for a, c in configs.items()}
    baselines = {a: core.make_task(c.task, c.seq_len, 1, c.lag, seed=0).baseline_loss for a, c in configs.items()}
    restored = decode_checkpoint(checkpoint, configs) if checkpoint else None
    states = restored if restored and all(s.step <= start_step for s in restored.values()) \
        else {a: initial_state(c) for a, c in configs.items()}
    target = min(int(target), steps)
    every = record_every(steps)
    base = {"run": run_id or uuid.uuid4().hex[:12], "key": run_key(params, steps), "target": target,
            "every": every, "start": int(start_step)}
    snaps, live = [], {}
    ckpt, ckpt_time, last_write, last_full = None, clock(), -math.inf, -math.inf

    def payload(status, window, full):
        fresh = ckpt if ckpt and (status != "running" or ckpt["writes"] < CHECKPOINT_WRITES) else None
        if fresh is not None:
            fresh["writes"] += 1
        return {**base, "status": status, "full": full,
                "archs": {a: history(a, configs[a], states[a], baselines[a], full) for a in states},
                "snaps": snaps[-WINDOW:] if window else list(snaps), "live": list(live.values()),
                "checkpoint": None if fresh is None else {"step": fresh["step"], "data": fresh["data"]}}

    while keep_going is None or keep_going():
        active = [a for a in states if not finished(configs[a], states[a]) and states[a].step < target]
        if not active:
            break
        for arch in active:
            states[arch] = train_step(configs[arch], models[arch], states[arch])
            s = states[arch]
            if s.step > start_step:
                live[arch] = snapshot(arch, s)
                if s.step % every == 0 or s.diverged or s.step == configs[arch].steps:
                    snaps.append(live[arch])
        now = clock()
        newest = max(s.step for s in states.values())
        if newest > start_step and now - ckpt_time >= CHECKPOINT_SECONDS:
            data = encode_checkpoint(states, CHECKPOINT_MAX_CHARS)
            if data is not None:
                ckpt = {"step": newest, "data": data, "writes": 0}
            ckpt_time = now
        if set_progress is not None and now - last_write >= PROGRESS_SECONDS and live:
            if now - last_full >= HISTORY_SECONDS:
                last_full = now
            set_progress(payload("running", True, now - last_full <= history_hold))
            last_write = now
    data = encode_checkpoint(states, CHECKPOINT_MAX_CHARS)
    ckpt = {"step": max(s.step for s in states.values()), "data": data, "writes": 0} if data is not None else None
    done = all(finished(configs[a], states[a]) for a in states)
    return payload("done" if done else "paused", False, True)


# ----------------------------------------------------------------------------- what clipping prevents
BLOW_UP_STEPS = 20


@memoize(maxsize=8)
def blow_up_facts(params) -> facts.BlowUpFacts:
    """Train the first architecture of ``params`` without clipping until its loss or gradient
    overflows (at most BLOW_UP_STEPS steps): what clipping prevents."""
    config = train_config(replace(params, clip=None), params.arch[0], BLOW_UP_STEPS)
    model = core.build_model(config)
    top = f"weight_hh_l{config.num_layers - 1}"
    before = float(np.linalg.norm(np.asarray(model.params[top], float), 2))
    after, norms, state, diverged = before, [], None, None
    for step in range(1, BLOW_UP_STEPS + 1):
        with np.errstate(all="ignore"):
            res = core.train_step(config, model, state, step)
        norms.append(float(res.grad_norm))
        if res.diverged:
            diverged = step
            break
        if step == 1:
            after = float(np.linalg.norm(np.asarray(res.params[top], float), 2))
        model = model.copy()
        model.params = res.params
        state = res.opt_state
    return facts.BlowUpFacts(grad_norms=tuple(norms), sigma_before=before, sigma_after=after,
                             diverged_step=diverged, lr=config.lr, optimizer=config.optimizer,
                             momentum=float(config.momentum) if config.optimizer == "sgd" else 0.0)
