"""Training: the configuration, one resumable step and a snapshotting loop.

Optimisers and clipping live in :mod:`core.optim`.

:func:`train_iter` is a generator: it yields a :class:`Snapshot` every ``snapshot_every``
steps, so a UI can draw training live and stop it at any time (``.close()`` or just stop
iterating). Everything is deterministic in ``TrainConfig.seed``: the model is initialised
with that seed and the batch of step s is drawn with seed ``(seed, s)``.

Divergence: when a step's loss or gradient norm is NaN/inf, that update is not applied;
the loop yields a last snapshot with ``diverged=True, done=True`` and stops. It never raises.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from collections.abc import Iterator

import numpy as np

from .bptt import bptt
from .checks import check_int, check_optional_positive_int, check_positive_int, is_real
from .jacobians import jacobian_norms
from .models import INITS, Model, ModelConfig, build, parameter_count
from .optim import OPTIMIZERS, OptimizerState, adam_step, clip_grad_norm, global_norm, sgd_step
from .tasks import TASKS, make_task

_ARCHS = ("rnn", "rnn-tanh", "rnn-relu", "lstm", "gru")
_DTYPES = {"float64": np.float64, "float32": np.float32}


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; validated on construction.

    ``arch``: ``"rnn"`` (tanh), ``"rnn-relu"``, ``"lstm"`` or ``"gru"``. ``init``,
    ``init_scale``, ``forget_bias``: see :class:`core.ModelConfig`. ``match_params``: if set,
    ``hidden_size`` is ignored and chosen by :func:`hidden_size_for_params` to come closest to
    that many parameters. ``momentum`` applies to SGD, ``betas`` and ``eps`` to Adam.
    ``clip``: max global gradient norm, None = no clipping. ``truncate``: truncated BPTT
    chunk length (None = full). ``lag`` and ``task_options`` go to :func:`core.make_task`.
    Snapshots: every ``snapshot_every`` steps (and at the last step); ``snapshot_params``
    adds a copy of the parameters; ``jacobians`` adds the batch-mean Jacobian norms (L, T)
    of the first ``jacobian_batch`` sequences (:func:`core.jacobian_norms`).
    """

    task: str = "adding"
    arch: str = "lstm"
    hidden_size: int = 32
    num_layers: int = 1
    init: str = "pytorch"
    init_scale: float = 1.0
    forget_bias: float | None = None
    match_params: int | None = None
    optimizer: str = "adam"
    lr: float = 0.01
    momentum: float = 0.9
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    clip: float | None = None
    truncate: int | None = None
    steps: int = 300
    batch_size: int = 32
    seq_len: int = 100
    lag: int | None = None
    task_options: tuple = ()
    seed: int = 0
    dtype: str = "float64"
    snapshot_every: int = 10
    snapshot_params: bool = False
    jacobians: bool = True
    jacobian_batch: int = 4

    def __post_init__(self):
        validate_train_config(self)


def validate_train_config(c: TrainConfig) -> None:
    """Raise ValueError naming the field for any invalid setting (also lag vs seq_len)."""
    choices = {"task": TASKS, "arch": _ARCHS, "init": INITS, "optimizer": OPTIMIZERS, "dtype": tuple(_DTYPES)}
    for name, allowed in choices.items():
        if getattr(c, name) not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {getattr(c, name)!r}")
    for name in ("hidden_size", "num_layers", "steps", "batch_size", "seq_len", "snapshot_every", "jacobian_batch"):
        check_positive_int(name, getattr(c, name))
    for name in ("match_params", "truncate", "lag"):
        check_optional_positive_int(name, getattr(c, name))
    check_int("seed", c.seed, 0)
    if not is_real(c.lr) or c.lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {c.lr!r}")
    if not is_real(c.momentum) or not 0 <= c.momentum < 1:
        raise ValueError(f"momentum must be a number in [0, 1), got {c.momentum!r}")
    if (not isinstance(c.betas, tuple) or len(c.betas) != 2
            or not all(is_real(b) and 0 <= b < 1 for b in c.betas)):
        raise ValueError(f"betas must be a pair of numbers in [0, 1), got {c.betas!r}")
    if not is_real(c.eps) or c.eps <= 0:
        raise ValueError(f"eps must be a finite number > 0, got {c.eps!r}")
    if c.clip is not None and (not is_real(c.clip) or c.clip <= 0):
        raise ValueError(f"clip must be None or a finite number > 0, got {c.clip!r}")
    if not is_real(c.init_scale) or c.init_scale < 0:
        raise ValueError(f"init_scale must be a finite number >= 0, got {c.init_scale!r}")
    if c.forget_bias is not None and (not is_real(c.forget_bias) or c.arch != "lstm"):
        raise ValueError(f"forget_bias must be None or a finite number (arch='lstm' only), got {c.forget_bias!r}")
    if not isinstance(c.task_options, tuple) or not all(isinstance(o, tuple) and len(o) == 2 for o in c.task_options):
        raise ValueError(f"task_options must be a tuple of (name, value) pairs, got {c.task_options!r}")
    for name in ("snapshot_params", "jacobians"):
        if not isinstance(getattr(c, name), bool):
            raise ValueError(f"{name} must be True or False, got {getattr(c, name)!r}")
    _sample(c, 0)  # lag / seq_len / task_options: make_task raises ValueError naming the argument


def _sample(c: TrainConfig, step: int, batch_size: int | None = None):
    """The batch of ``step`` (seed (c.seed, step))."""
    return make_task(c.task, c.seq_len, c.batch_size if batch_size is None else batch_size, c.lag,
                     seed=(c.seed, step), dtype=_DTYPES[c.dtype], **dict(c.task_options))


# ----------------------------------------------------------------------------- model
def _count(arch, H, I, O, L):
    """Parameter count of ``core.build(arch, ...)`` with hidden size H."""
    key = "rnn" if arch.startswith("rnn") else arch
    return parameter_count(ModelConfig(key, I, H, O, L))


def hidden_size_for_params(arch: str, target: int, input_size: int, output_size: int,
                           num_layers: int = 1) -> int:
    """Hidden size H >= 1 whose parameter count is closest to ``target`` (ties: smaller H).

    Parameters
    ----------
    arch : ``"rnn"``, ``"rnn-tanh"``, ``"rnn-relu"``, ``"lstm"`` or ``"gru"``.
    target : wanted number of parameters (readout included).
    input_size, output_size, num_layers : as in :func:`core.build`.

    .. math:: n(H) = G H (I + H + 2) + (L-1)\\, G H (2H + 2) + O H + O,\\quad G = 1, 4, 3
    """
    if arch not in _ARCHS:
        raise ValueError(f"arch must be one of {_ARCHS}, got {arch!r}")
    for name, v in (("target", target), ("input_size", input_size), ("output_size", output_size),
                    ("num_layers", num_layers)):
        check_positive_int(name, v)
    lo, hi = 1, 2
    while _count(arch, hi, input_size, output_size, num_layers) <= target:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # n(H) increases with H: largest H with n(H) <= target
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _count(arch, mid, input_size, output_size, num_layers) <= target else (lo, mid)
    below, above = (_count(arch, h, input_size, output_size, num_layers) for h in (lo, lo + 1))
    return lo if abs(target - below) <= abs(above - target) else lo + 1


def build_model(config: TrainConfig) -> Model:
    """The initial model of a run: sizes from the task, hidden size from ``match_params``."""
    task = _sample(config, 0, batch_size=1)
    H = config.hidden_size
    if config.match_params is not None:
        H = hidden_size_for_params(config.arch, config.match_params, task.input_size,
                                   task.output_size, config.num_layers)
    return build(config.arch, input_size=task.input_size, hidden_size=H, output_size=task.output_size,
                 num_layers=config.num_layers, seed=config.seed, dtype=_DTYPES[config.dtype],
                 init=config.init, scale=config.init_scale, forget_bias=config.forget_bias)


# ----------------------------------------------------------------------------- loop
@dataclass(frozen=True, eq=False)
class Snapshot:
    """The state of a run after ``step`` updates. L layers, T steps.

    Attributes
    ----------
    step : number of steps done (1-based); loss, grad_norm, clipped, hidden_grad_norms,
        cell_grad_norms and jacobian_norms were measured at this step, before its update.
    steps : total steps planned.  baseline_loss : the task's trivial-predictor loss.
    loss : this step's batch loss.  grad_norm : its pre-clip global gradient norm.
    clipped : whether clipping scaled this step's gradient.
    losses, grad_norms : (step,) float histories of every step so far; clip_flags (step,) bool.
    hidden_grad_norms : (L, T) norm of dL/dh^l_t (from :class:`core.BPTTResult`).
    cell_grad_norms : (L, T) same for the LSTM cell state, None otherwise.
    jacobian_norms : (L, T) batch mean of ``core.jacobian_norms`` (None if disabled
        or the parameters are not finite).
    params : copy of the parameters after this step's update (None unless snapshot_params).
    diverged : the loss or gradient norm was NaN/inf; this update was skipped and the run ends.
    done : last snapshot of the run.
    """

    step: int
    steps: int
    loss: float
    grad_norm: float
    clipped: bool
    losses: np.ndarray
    grad_norms: np.ndarray
    clip_flags: np.ndarray
    hidden_grad_norms: np.ndarray
    cell_grad_norms: np.ndarray | None
    jacobian_norms: np.ndarray | None
    params: dict | None
    baseline_loss: float
    diverged: bool
    done: bool


@dataclass(frozen=True, eq=False)
class TrainResult:
    """A finished run: ``losses``, ``grad_norms`` (steps run,), ``clip_flags`` (bool), the
    final ``params``, ``hidden_size`` used, ``num_parameters``, ``baseline_loss``,
    ``diverged_step`` (None if the run stayed finite) and the last :class:`Snapshot`."""

    config: TrainConfig
    losses: np.ndarray
    grad_norms: np.ndarray
    clip_flags: np.ndarray
    params: dict
    hidden_size: int
    num_parameters: int
    baseline_loss: float
    diverged_step: int | None
    last: Snapshot


def _batch_mean_jacobians(c, model, x):
    """(L, T) mean over the first ``jacobian_batch`` sequences, or None (disabled, or parameters not finite)."""
    if not c.jacobians or not all(np.all(np.isfinite(p)) for p in model.params.values()):
        return None
    with np.errstate(all="ignore"):
        return np.mean(jacobian_norms(model, x[:, : c.jacobian_batch]), axis=2)


@dataclass(frozen=True, eq=False)
class StepResult:
    """One step of a run: ``params`` and ``opt_state`` after the update (both unchanged when
    ``diverged``), the batch ``task``, and ``bptt`` (:class:`core.BPTTResult`) with ``loss``,
    pre-clip ``grad_norm`` and ``clipped`` measured before the update."""

    step: int
    params: dict
    opt_state: OptimizerState
    loss: float
    grad_norm: float
    clipped: bool
    diverged: bool
    task: object
    bptt: object


def train_step(config: TrainConfig, model: Model, opt_state: OptimizerState | None, step: int) -> StepResult:
    """Step ``step`` (1-based) of a run: batch ``(seed, step)``, BPTT, clipping, update.

    Pure: ``model`` (architecture and current parameters) is not modified, so a caller can
    keep ``(params, opt_state, step)`` and resume a run exactly where it stopped.
    A NaN/inf loss or gradient norm skips the update and sets ``diverged``.

    Parameters
    ----------
    config : :class:`TrainConfig`.  model : the model at the start of the step.
    opt_state : optimiser state after ``step - 1`` updates (None or empty before the first).
    step : int >= 1.

    Returns
    -------
    StepResult
    """
    task = _sample(config, step)
    res = bptt(model, task.x, task.y, task.loss, task.loss_on, config.truncate)
    with np.errstate(all="ignore"):
        if config.clip is None:
            grads, norm, clipped = res.grads, global_norm(res.grads), False
        else:
            grads, norm, clipped = clip_grad_norm(res.grads, config.clip)
        diverged = not (np.isfinite(res.loss) and np.isfinite(norm))
        if diverged:
            params, opt_state = model.params, OptimizerState() if opt_state is None else opt_state
        elif config.optimizer == "sgd":
            params, opt_state = sgd_step(model.params, grads, opt_state, lr=config.lr, momentum=config.momentum)
        else:
            params, opt_state = adam_step(model.params, grads, opt_state,
                                          lr=config.lr, betas=config.betas, eps=config.eps)
    return StepResult(step, params, opt_state, res.loss, norm, clipped, diverged, task, res)


def train_iter(config: TrainConfig, model: Model | None = None) -> Iterator[Snapshot]:
    """Train, yielding a :class:`Snapshot` every ``config.snapshot_every`` steps.

    Parameters
    ----------
    config : :class:`TrainConfig`.
    model : optional starting model (a copy is trained; default :func:`build_model`).

    Yields
    ------
    Snapshot at steps k, 2k, ..., at the last step, and at a diverging step (then stops).
    Stop early with ``gen.close()`` or by not iterating further.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    if model is None:
        model = build_model(config)
    else:
        task = _sample(config, 0, batch_size=1)
        if not isinstance(model, Model) or (
                (model.config.input_size, model.config.output_size) != (task.input_size, task.output_size)):
            raise ValueError(f"model must be a core model with input_size={task.input_size} and "
                             f"output_size={task.output_size} for task {config.task!r}")
        model = model.copy()
    state, losses, norms, flags = None, [], [], []
    for step in range(1, config.steps + 1):
        r = train_step(config, model, state, step)
        losses.append(r.loss)
        norms.append(r.grad_norm)
        flags.append(r.clipped)
        done = r.diverged or step == config.steps
        if done or step % config.snapshot_every == 0:
            jac = _batch_mean_jacobians(config, model, r.task.x)  # parameters of the measured step
            model.params, state = r.params, r.opt_state
            yield Snapshot(step=step, steps=config.steps, loss=r.loss, grad_norm=r.grad_norm, clipped=r.clipped,
                           losses=np.array(losses), grad_norms=np.array(norms), clip_flags=np.array(flags),
                           hidden_grad_norms=r.bptt.hidden_grad_norms, cell_grad_norms=r.bptt.cell_grad_norms,
                           jacobian_norms=jac, params=model.state_dict() if config.snapshot_params else None,
                           baseline_loss=r.task.baseline_loss, diverged=r.diverged, done=done)
        model.params, state = r.params, r.opt_state
        if r.diverged:
            return


def train(config: TrainConfig, model: Model | None = None) -> TrainResult:
    """Run :func:`train_iter` to the end and collect the histories.

    Returns
    -------
    TrainResult with per-step ``losses`` and ``grad_norms`` and the final parameters.
    """
    last = None
    for last in train_iter(replace(config, snapshot_params=True, jacobians=False), model):  # noqa: B007 - used after
        pass  # only the last snapshot is kept
    n = int(sum(v.size for v in last.params.values()))
    H = last.params["weight_hh_l0"].shape[1]
    return TrainResult(config=config, losses=last.losses, grad_norms=last.grad_norms, clip_flags=last.clip_flags,
                       params=last.params, hidden_size=H, num_parameters=n, baseline_loss=last.baseline_loss,
                       diverged_step=last.step if last.diverged else None, last=last)


__all__ = ["Snapshot", "StepResult", "TrainConfig", "TrainResult", "build_model", "hidden_size_for_params", "train",
           "train_iter", "train_step", "validate_train_config"]
