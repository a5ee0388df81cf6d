"""Your own weights: an uploaded ``.npz`` state dict turned into a core model, safely.

The file is a PyTorch-style state dict in the core's layout (``weight_ih_l0`` (G*H, I),
``weight_hh_l0`` (G*H, H), ``bias_ih_l0``, ``bias_hh_l0`` (G*H,), ``..._l1``, ...,
``readout.weight`` (O, H), ``readout.bias`` (O,)), e.g. written by::

    np.savez("model.npz", **{k: v.numpy() for k, v in state.items()})

Architecture, hidden size, layers, input and output sizes are read off the shapes (G = 1 RNN,
3 GRU, 4 LSTM). A tanh RNN is assumed unless the file has a string entry ``arch`` (``"rnn"``,
``"rnn-relu"``, ``"lstm"``, ``"gru"``). One common prefix such as ``rnn.`` on the recurrent keys
is accepted.

Safety: the bytes stay in memory (nothing is written to disk) and are read by
:mod:`visualizer.npz`, which bounds every size before allocating; the model's sizes are read
from the arrays' headers and checked against the app's maxima before any weight is decoded;
an upload is checked once per process (cached by its SHA-256); every problem raises
:class:`WeightsError` with a message naming the key and what is wrong.
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, replace

import numpy as np

import core

from .cache import memoize
from .npz import MAX_BYTES, WeightsError, decode_upload, read_headers, read_npz  # noqa: F401 - MAX_BYTES for the card
from .budget import GATE_BLOCKS, VIEW_WORK_CAP
from .urlstate import SPEC

MAX_HIDDEN, MAX_LAYERS = SPEC["hidden"][2], SPEC["layers"][2]  # the app's maxima apply to uploads too
MAX_IO = 256  # input and output sizes
IO_CAP = 8_000_000  # seq_len x batch x (input + output) numbers for one run of an uploaded model
UPLOAD_WORK_CAP = VIEW_WORK_CAP // 4  # an uploaded model runs next to up to four others in view 1
CACHE_BYTES = 256 * 1024 * 1024  # checked uploads kept per process
GATES_TO_ARCH = {1: "rnn", 3: "gru", 4: "lstm"}
ARCH_NAMES = {"rnn": ("rnn", "tanh"), "rnn-tanh": ("rnn", "tanh"), "rnn-relu": ("rnn", "relu"),
              "lstm": ("lstm", "tanh"), "gru": ("gru", "tanh")}
_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)$")


@dataclass(frozen=True, eq=False)
class Uploaded:
    """A checked upload: the core ``model``, a one-line ``summary`` of what was found and the
    ``digest`` (SHA-256) of the upload it was read from."""

    model: core.Model
    summary: str
    filename: str | None = None
    digest: str = ""

    @property
    def arch(self) -> str:
        """``"rnn"``, ``"rnn-relu"``, ``"lstm"`` or ``"gru"`` (the app's names)."""
        c = self.model.config
        return "rnn-relu" if c.arch == "rnn" and c.nonlinearity == "relu" else c.arch


def _strip_prefix(state: dict) -> tuple[dict, str]:
    """Remove one common prefix ('rnn.', 'model.lstm.', ...) from the recurrent keys."""
    names = [k for k in state if k != "arch" and not k.startswith("readout.")]
    if not names or all(_KEY.match(k) for k in names):
        return state, ""
    prefixes = {k.rsplit(".", 1)[0] + "." for k in names if "." in k}
    if len(prefixes) == 1 and all("." in k for k in names):
        prefix = prefixes.pop()
        if all(_KEY.match(k[len(prefix):]) for k in names):
            return {(k[len(prefix):] if k in names else k): v for k, v in state.items()}, prefix
    return state, ""


def _arch_entry(state: dict, gates: int) -> tuple[str, str]:
    """(core arch, nonlinearity) from the optional ``arch`` string entry and the gate count."""
    inferred = GATES_TO_ARCH[gates]
    if "arch" not in state:
        return inferred, "tanh"
    value = state["arch"]
    if value.dtype.kind not in "US" or value.size != 1:
        raise WeightsError(f"Entry 'arch' must be a string such as 'rnn-relu', got an array of {value.dtype} "
                           f"with shape {value.shape}.")
    item = value.reshape(()).item()
    name = (item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)).strip().lower()
    if name not in ARCH_NAMES:
        raise WeightsError(f"Entry 'arch' is {name!r}; use one of {', '.join(ARCH_NAMES)}.")
    arch, nonlinearity = ARCH_NAMES[name]
    if arch != inferred:
        raise WeightsError(f"Entry 'arch' says {name!r}, but weight_hh_l0 has {gates} gate block(s), "
                           f"which is a {inferred.upper()}.")
    return arch, nonlinearity


def infer_config(state: dict) -> core.ModelConfig:
    """The :class:`core.ModelConfig` whose parameters have exactly the keys and shapes of ``state``.

    Raises :class:`WeightsError` naming the first missing, unexpected or misshapen key.
    """
    if "weight_hh_l0" not in state:
        keys = ", ".join(sorted(state)[:6])
        raise WeightsError(f"Missing key 'weight_hh_l0': this does not look like an RNN/LSTM/GRU state dict "
                           f"in the core's layout (found: {keys}{', ...' if len(state) > 6 else ''}).")
    if any(k.endswith("_reverse") for k in state):
        raise WeightsError("Bidirectional weights ('..._reverse') are not supported: save a one-directional model.")
    for k, v in state.items():
        if k == "arch":
            continue
        if v.dtype.kind not in "fiu" or v.dtype == np.bool_:
            raise WeightsError(f"Key {k!r} has dtype {v.dtype}; weights must be real numbers.")
    W = state["weight_hh_l0"]
    if W.ndim != 2 or W.shape[1] == 0 or W.shape[0] % W.shape[1] or W.shape[0] // W.shape[1] not in GATES_TO_ARCH:
        raise WeightsError(f"Key 'weight_hh_l0' has shape {W.shape}; expected (G*H, H) with G = 1 (RNN), "
                           f"3 (GRU) or 4 (LSTM).")
    H, gates = W.shape[1], W.shape[0] // W.shape[1]
    arch, nonlinearity = _arch_entry(state, gates)
    layers = 1
    while f"weight_hh_l{layers}" in state:
        layers += 1
    if "weight_ih_l0" not in state or state["weight_ih_l0"].ndim != 2:
        shape = state["weight_ih_l0"].shape if "weight_ih_l0" in state else None
        raise WeightsError("Missing key 'weight_ih_l0'." if shape is None else
                           f"Key 'weight_ih_l0' has shape {shape}; expected ({gates * H}, input size).")
    if "readout.weight" not in state or state["readout.weight"].ndim != 2:
        raise WeightsError("Missing key 'readout.weight' (the linear layer on top, shape (outputs, H)): "
                           "save the readout too, as readout.weight and readout.bias.")
    I, O = state["weight_ih_l0"].shape[1], state["readout.weight"].shape[0]
    if min(I, O) < 1:
        raise WeightsError(f"Input size {I} and output size {O} must both be at least 1.")
    config = core.ModelConfig(arch, I, H, O, layers, nonlinearity=nonlinearity)
    shapes = core.param_shapes(config)
    for k, shape in shapes.items():
        if k not in state:
            raise WeightsError(f"Missing key {k!r} (expected shape {shape} for a {layers}-layer "
                               f"{arch.upper()} with H={H}).")
        if state[k].shape != shape:
            raise WeightsError(f"Key {k!r} has shape {state[k].shape}, expected {shape} "
                               f"({arch.upper()}, H={H}, input {I}, output {O}).")
    extra = sorted(k for k in state if k not in shapes and k != "arch")
    if extra:
        raise WeightsError(f"Unexpected key {extra[0]!r} (a {layers}-layer {arch.upper()} has only "
                           f"{', '.join(shapes)}).")
    return config


def _check_finite(state: dict) -> None:
    """Raise WeightsError naming the first key holding NaN or inf, and where."""
    for k, v in state.items():
        if k == "arch":
            continue
        bad = ~np.isfinite(v)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            kind = "NaN" if np.isnan(v[where] if v.ndim else v) else "inf"
            raise WeightsError(f"Key {k!r} contains {kind} (first at index {where}, {int(bad.sum())} such "
                               f"value{'s' if bad.sum() > 1 else ''}); weights must be finite.")


def _check_bounds(config: core.ModelConfig) -> None:
    """Raise WeightsError when the model is larger than the app's maxima (hidden, layers, sizes)."""
    for what, value, top in (("hidden size H", config.hidden_size, MAX_HIDDEN),
                             ("number of layers", config.num_layers, MAX_LAYERS),
                             ("input size", config.input_size, MAX_IO), ("output size", config.output_size, MAX_IO)):
        if value > top:
            raise WeightsError(f"The model's {what} is {value:,}; this app accepts at most {top} "
                               f"(the same limit as its controls, so every view stays within the work cap).")


def digest(contents: bytes) -> str:
    """SHA-256 (hex) of an upload's file bytes."""
    return hashlib.sha256(contents).hexdigest()


def _state_specs(data: bytes) -> tuple[dict, str]:
    """(headers of the arrays with the decoded ``arch`` entry, prefix removed): no weight is decoded."""
    specs = read_headers(data)
    if "arch" in specs:
        spec = specs["arch"]
        if spec.dtype.kind not in "US" or spec.size != 1:
            raise WeightsError(f"Entry 'arch' must be a string such as 'rnn-relu', got an array of {spec.dtype} "
                               f"with shape {str(spec.shape)[:40]}.")
        specs["arch"] = read_npz(data, ["arch"])["arch"]
    return _strip_prefix(specs)


class UploadMissing(WeightsError):
    """The upload named by a digest is on neither this process nor the shelf (it must be sent again)."""


@memoize(maxsize=16, max_bytes=CACHE_BYTES, key=lambda blob: blob[0])
def _checked(blob) -> Uploaded | str:
    """The checked upload of ``blob`` = (digest, a function returning the file bytes), or the
    message why not (both cached: each upload is decoded and checked once per process). The bytes
    are fetched only when the digest is not cached; no bytes raises :class:`UploadMissing`
    (not cached: the upload may arrive later)."""
    key, fetch = blob
    data = fetch()
    if data is None:
        raise UploadMissing("the upload is no longer on the server")
    try:
        specs, prefix = _state_specs(data)
        config = infer_config(specs)  # from the headers alone ...
        _check_bounds(config)  # ... so an over-size model is refused before its arrays are decoded
        state, _ = _strip_prefix(read_npz(data))
        _check_finite(state)
    except WeightsError as e:
        return str(e)
    model = core.build(config.arch, input_size=config.input_size, hidden_size=config.hidden_size,
                       output_size=config.output_size, num_layers=config.num_layers,
                       nonlinearity=config.nonlinearity)
    try:
        model.load_state_dict({k: v for k, v in state.items() if k != "arch"})
    except ValueError as e:  # the checks above should make this unreachable
        return str(e)
    name = config.name if config.arch != "rnn" else ("RNN-relu" if config.nonlinearity == "relu" else "RNN (tanh)")
    summary = (f"{name}, {config.num_layers} layer{'s' if config.num_layers > 1 else ''}, H={config.hidden_size}, "
               f"input {config.input_size}, output {config.output_size}, {model.num_parameters():,} parameters"
               + (f" (prefix {prefix!r} removed)" if prefix else ""))
    return Uploaded(model=model, summary=summary, digest=key)


def _result(checked: Uploaded | str, filename: str | None) -> Uploaded:
    if isinstance(checked, str):
        raise WeightsError(checked)
    return replace(checked, filename=filename)


def decode_checked(contents, filename: str | None = None) -> tuple[Uploaded, bytes]:
    """(:func:`load_weights` of an upload, its file bytes)."""
    if filename is not None and not str(filename).lower().endswith(".npz"):
        raise WeightsError(f"{str(filename)[:80]!r} is not an .npz file; save the state dict with np.savez.")
    data = decode_upload(contents)  # bounded: the size is checked before anything is decoded
    return _result(_checked((digest(data), lambda: data)), filename), data


def load_weights(contents, filename: str | None = None) -> Uploaded:
    """Check an upload (``dcc.Upload`` contents or raw bytes) and build its core model.

    The work is bounded before anything is decoded (size, members, headers, the model's sizes
    against the app's maxima) and done once per upload: the result, or the message, is cached
    by the SHA-256 of the file's bytes (its ``digest``, what :func:`stored_weights` takes).

    Raises
    ------
    WeightsError with a message for the user naming what is wrong.
    """
    return decode_checked(contents, filename)[0]


def stored_weights(key, fetch) -> Uploaded:
    """The checked upload whose file bytes have the SHA-256 ``key`` (64 hex characters): from this
    process's cache, else checked from ``fetch(key)`` (the shelved bytes or None).

    Raises :class:`UploadMissing` when neither has it, WeightsError for a malformed key or an
    upload that was refused."""
    if not isinstance(key, str) or len(key) != 64 or key.strip("0123456789abcdef"):
        raise WeightsError("weights-store: 'digest' must be the upload's SHA-256, 64 hexadecimal characters.")
    return _result(_checked((key, lambda: fetch(key))), None)


def run_size(config: core.ModelConfig, seq_len: int, batch: int) -> tuple[int, int, str | None]:
    """(seq_len, batch, note or None) for one run of an uploaded model: batch, then seq_len,
    lowered until seq_len x batch x layers x H^2 x gate blocks fits an architecture's share of
    the view work cap and seq_len x batch x (input + output) fits IO_CAP (the note says so)."""
    per_step = max(config.num_layers * config.hidden_size ** 2 * GATE_BLOCKS[config.arch], 1)
    per_io = config.input_size + config.output_size

    def fits(t, b):
        return t * b * per_step <= UPLOAD_WORK_CAP and t * b * per_io <= IO_CAP
    T, B = int(seq_len), int(batch)
    if fits(T, B):
        return T, B, None
    B = max(1, min(B, UPLOAD_WORK_CAP // (T * per_step), IO_CAP // (T * per_io)))
    if not fits(T, B):
        T = max(1, min(T, UPLOAD_WORK_CAP // (B * per_step), IO_CAP // (B * per_io)))
    return T, B, f"run with batch={B}, seq_len={T} to stay within the server's work cap"


def to_npz_bytes(model: core.Model) -> bytes:
    """The model's state dict as ``.npz`` bytes (with its ``arch`` entry), in memory."""
    buf = io.BytesIO()
    arch = "rnn-relu" if model.config.arch == "rnn" and model.config.nonlinearity == "relu" else model.config.arch
    np.savez(buf, arch=np.array(arch), **model.state_dict())
    return buf.getvalue()


def matching_tasks(config: core.ModelConfig) -> list[str]:
    """The app's tasks (default options) whose input and output sizes fit ``config``."""
    found = []
    for name in core.TASKS:
        t = core.make_task(name, 8, 1, seed=0)
        if (t.input_size, t.output_size) == (config.input_size, config.output_size):
            found.append(name)
    return found
