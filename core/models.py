"""RNN / LSTM / GRU models: a frozen config plus a dict of parameters in PyTorch's layout.

Parameter names and shapes are exactly those of ``torch.nn.RNN/LSTM/GRU`` (``weight_ih_l0``
(G*H, I), ``weight_hh_l0`` (G*H, H), ``bias_ih_l0`` / ``bias_hh_l0`` (G*H,), then ``_l1`` ...)
plus a linear readout ``readout.weight`` (O, H) and ``readout.bias`` (O,), so a PyTorch
``state_dict`` converted with ``.numpy()`` loads unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .checks import check_int, check_positive_int, is_number

ARCHS = ("rnn", "lstm", "gru")
NONLINEARITIES = ("tanh", "relu")
INITS = ("pytorch", "orthogonal", "identity", "normal")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a model's shape and initialisation.

    ``init``: ``"pytorch"`` (uniform(+-1/sqrt(H)) on every weight and bias), ``"orthogonal"``
    (each recurrent gate block a random orthogonal matrix times ``scale``), ``"identity"``
    (each recurrent gate block ``scale * I``, biases zero: the IRNN of Le et al. 2015) or
    ``"normal"`` (W_hh ~ N(0, 1/H) rescaled so that its spectral radius is exactly ``scale``).
    Input weights always use PyTorch's uniform. ``forget_bias`` (LSTM only) sets the forget
    gate's ``bias_ih`` block to that value and its ``bias_hh`` block to zero.
    """

    arch: str
    input_size: int
    hidden_size: int
    output_size: int
    num_layers: int = 1
    nonlinearity: str = "tanh"
    init: str = "pytorch"
    scale: float = 1.0
    forget_bias: float | None = None
    seed: int = 0
    dtype: type = np.float64

    @property
    def name(self) -> str:
        """Display name: RNN, RNN-relu, LSTM or GRU."""
        if self.arch == "rnn" and self.nonlinearity == "relu":
            return "RNN-relu"
        return self.arch.upper()

    @property
    def gates(self) -> int:
        return GATES[self.arch]


def validate_config(cfg: ModelConfig) -> None:
    """Raise ValueError naming the field for any invalid setting."""
    if cfg.arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {cfg.arch!r}")
    for name in ("input_size", "hidden_size", "output_size", "num_layers"):
        check_positive_int(name, getattr(cfg, name))
    if cfg.nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {cfg.nonlinearity!r}")
    if cfg.arch != "rnn" and cfg.nonlinearity != "tanh":
        raise ValueError(f"nonlinearity applies to arch='rnn' only, got {cfg.nonlinearity!r}")
    if cfg.init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {cfg.init!r}")
    if not np.isfinite(cfg.scale) or cfg.scale < 0:
        raise ValueError(f"scale must be a finite number >= 0, got {cfg.scale!r}")
    if cfg.forget_bias is not None and (cfg.arch != "lstm" or not np.isfinite(cfg.forget_bias)):
        raise ValueError(f"forget_bias must be a finite number and needs arch='lstm', got {cfg.forget_bias!r}")
    if np.dtype(cfg.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {cfg.dtype!r}")
    check_int("seed", cfg.seed, 0)


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of every parameter, in PyTorch's order."""
    G, H = cfg.gates, cfg.hidden_size
    shapes = {}
    for l in range(cfg.num_layers):
        I = cfg.input_size if l == 0 else H
        shapes[f"weight_ih_l{l}"] = (G * H, I)
        shapes[f"weight_hh_l{l}"] = (G * H, H)
        shapes[f"bias_ih_l{l}"] = (G * H,)
        shapes[f"bias_hh_l{l}"] = (G * H,)
    shapes["readout.weight"] = (cfg.output_size, H)
    shapes["readout.bias"] = (cfg.output_size,)
    return shapes


def parameter_count(cfg: ModelConfig) -> int:
    """Scalar parameters of a model of ``cfg``: every layer and the readout (:func:`param_shapes`)."""
    return sum(int(np.prod(shape)) for shape in param_shapes(cfg).values())


def _orthogonal(rng, n):
    """Random (n, n) orthogonal matrix (QR of a Gaussian with sign fix)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def init_params(cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Initialise parameters as described in :class:`ModelConfig`; deterministic in ``seed``."""
    validate_config(cfg)
    rng = np.random.default_rng(cfg.seed)
    G, H = cfg.gates, cfg.hidden_size
    k = 1.0 / np.sqrt(H)
    params = {}
    for name, shape in param_shapes(cfg).items():
        bound = k if not name.startswith("readout") else 1.0 / np.sqrt(shape[-1] if name.endswith("weight") else H)
        params[name] = rng.uniform(-bound, bound, size=shape)
    for l in range(cfg.num_layers):
        W = params[f"weight_hh_l{l}"]
        if cfg.init == "orthogonal":
            for g in range(G):
                W[g * H : (g + 1) * H] = cfg.scale * _orthogonal(rng, H)
        elif cfg.init == "identity":
            for g in range(G):
                W[g * H : (g + 1) * H] = cfg.scale * np.eye(H)
            params[f"bias_ih_l{l}"][:] = 0.0
            params[f"bias_hh_l{l}"][:] = 0.0
        elif cfg.init == "normal":
            for g in range(G):
                block = rng.standard_normal((H, H)) / np.sqrt(H)
                rho = np.max(np.abs(np.linalg.eigvals(block)))
                W[g * H : (g + 1) * H] = block * (cfg.scale / rho if rho > 0 else 0.0)
        if cfg.forget_bias is not None:
            params[f"bias_ih_l{l}"][H : 2 * H] = cfg.forget_bias
            params[f"bias_hh_l{l}"][H : 2 * H] = 0.0
    return {k_: v.astype(cfg.dtype) for k_, v in params.items()}


class Model:
    """A recurrent network: ``config`` (frozen) and ``params`` (name -> array).

    Use :class:`RNN`, :class:`LSTM`, :class:`GRU` or :func:`build` to create one.
    """

    arch = ""

    def __init__(self, input_size, hidden_size, output_size=1, num_layers=1, *, seed=0,
                 dtype=np.float64, init="pytorch", scale=1.0, forget_bias=None, nonlinearity="tanh"):
        self.config = ModelConfig(self.arch, input_size, hidden_size, output_size, num_layers,
                                  nonlinearity, init, float(scale) if is_number(scale) else scale,
                                  None if forget_bias is None
                                  else (float(forget_bias) if is_number(forget_bias) else forget_bias),
                                  seed, dtype)
        self.params = init_params(self.config)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def dtype(self):
        return np.dtype(self.config.dtype)

    def num_parameters(self) -> int:
        """Total number of scalar parameters (readout included)."""
        return int(sum(v.size for v in self.params.values()))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters, keyed as in PyTorch."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state: dict) -> None:
        """Replace all parameters; ValueError naming the key on a missing/extra key or bad shape."""
        shapes = param_shapes(self.config)
        missing = [k for k in shapes if k not in state]
        extra = [k for k in state if k not in shapes]
        if missing:
            raise ValueError(f"state_dict is missing key {missing[0]!r} (missing: {missing})")
        if extra:
            raise ValueError(f"state_dict has unexpected key {extra[0]!r} (unexpected: {extra})")
        new = {}
        for k, shape in shapes.items():
            v = np.asarray(state[k])
            if v.shape != shape:
                raise ValueError(f"state_dict key {k!r} has shape {v.shape}, expected {shape}")
            if not np.issubdtype(v.dtype, np.number) or np.iscomplexobj(v):
                raise ValueError(f"state_dict key {k!r} has dtype {v.dtype}, expected real numbers")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"state_dict key {k!r} contains NaN or inf")
            new[k] = v.astype(self.config.dtype, copy=True)
        self.params = new

    def copy(self) -> Model:
        """An independent copy (same config, copied parameters)."""
        m = object.__new__(type(self))
        m.config = self.config
        m.params = self.state_dict()
        return m

    def astype(self, dtype) -> Model:
        """A copy with parameters cast to ``dtype`` (float32 or float64)."""
        m = self.copy()
        m.config = replace(self.config, dtype=dtype)
        validate_config(m.config)
        m.params = {k: v.astype(dtype) for k, v in m.params.items()}
        return m

    def __repr__(self):
        c = self.config
        return (f"{type(self).__name__}(input_size={c.input_size}, hidden_size={c.hidden_size}, "
                f"output_size={c.output_size}, num_layers={c.num_layers}, init={c.init!r})")


class RNN(Model):
    """Elman RNN, ``nonlinearity="tanh"`` or ``"relu"`` (``torch.nn.RNN``)."""

    arch = "rnn"


class LSTM(Model):
    """LSTM with gates i, f, g, o (``torch.nn.LSTM``)."""

    arch = "lstm"


class GRU(Model):
    """GRU with gates r, z, n (``torch.nn.GRU``)."""

    arch = "gru"


def check_model(model) -> None:
    """Raise ValueError unless ``model`` is a core :class:`Model`."""
    if not isinstance(model, Model):
        raise ValueError(f"model must be a core RNN/LSTM/GRU model, got {type(model).__name__}")


_CLASSES = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def build(arch: str, **kw) -> Model:
    """Build a model by name: ``"rnn"``, ``"rnn-tanh"``, ``"rnn-relu"``, ``"lstm"`` or ``"gru"``.

    Keyword arguments are passed to the class (``input_size``, ``hidden_size``, ...).
    """
    key = str(arch).lower()
    if key in ("rnn-tanh", "rnn_tanh"):
        key, kw = "rnn", {**kw, "nonlinearity": "tanh"}
    elif key in ("rnn-relu", "rnn_relu"):
        key, kw = "rnn", {**kw, "nonlinearity": "relu"}
    if key not in _CLASSES:
        raise ValueError(f"arch must be one of rnn, rnn-tanh, rnn-relu, lstm, gru; got {arch!r}")
    return _CLASSES[key](**kw)
