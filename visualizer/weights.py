"""Your own weights: an uploaded ``.npz`` state dict turned into a core model, safely.

The file is a PyTorch-style state dict in the core's layout (``weight_ih_l0`` (G*H, I),
``weight_hh_l0`` (G*H, H), ``bias_ih_l0``, ``bias_hh_l0`` (G*H,), ``..._l1``, ...,
``readout.weight`` (O, H), ``readout.bias`` (O,)), e.g. written by::

    np.savez("model.npz", **{k: v.numpy() for k, v in state.items()})

Architecture, hidden size, layers, input and output sizes are read off the shapes (G = 1 RNN,
3 GRU, 4 LSTM). A tanh RNN is assumed unless the file has a string entry ``arch`` (``"rnn"``,
``"rnn-relu"``, ``"lstm"``, ``"gru"``). One common prefix such as ``rnn.`` on the recurrent keys
is accepted.

Safety: the bytes stay in memory (``io.BytesIO``; nothing is written to disk), the size is
limited before decoding, the zip's uncompressed size and member count are checked before
loading, arrays load with ``allow_pickle=False``, and every problem raises
:class:`WeightsError` with a message naming the key and what is wrong.
"""
from __future__ import annotations

import base64
import binascii
import io
import re
import zipfile
from dataclasses import dataclass

import numpy as np

import core

MAX_BYTES = 20 * 1024 * 1024  # the uploaded file
MAX_UNCOMPRESSED = 4 * MAX_BYTES  # the arrays inside it, all together
MAX_MEMBERS = 200
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
NPY_MAGIC = b"\x93NUMPY"
GATES_TO_ARCH = {1: "rnn", 3: "gru", 4: "lstm"}
ARCH_NAMES = {"rnn": ("rnn", "tanh"), "rnn-tanh": ("rnn", "tanh"), "rnn-relu": ("rnn", "relu"),
              "lstm": ("lstm", "tanh"), "gru": ("gru", "tanh")}
_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)$")


class WeightsError(ValueError):
    """An uploaded weights file that cannot be used; the message says why."""


@dataclass(frozen=True, eq=False)
class Uploaded:
    """A checked upload: the core ``model`` and a one-line ``summary`` of what was found."""

    model: core.Model
    summary: str
    filename: str | None = None

    @property
    def arch(self) -> str:
        """``"rnn"``, ``"rnn-relu"``, ``"lstm"`` or ``"gru"`` (the app's names)."""
        c = self.model.config
        return "rnn-relu" if c.arch == "rnn" and c.nonlinearity == "relu" else c.arch


def _mb(n: int) -> str:
    """Bytes as megabytes for a message."""
    return f"{n / 1024 / 1024:.1f} MB"


def decode_upload(contents) -> bytes:
    """The file bytes of a ``dcc.Upload`` ``contents`` string (``data:...;base64,...``) or of bytes.

    The size limit is checked on the base64 text before decoding.
    """
    if isinstance(contents, (bytes, bytearray)):
        data = bytes(contents)
    elif isinstance(contents, str):
        _, sep, b64 = contents.partition(",")
        b64 = b64 if sep else contents
        if len(b64) * 3 // 4 > MAX_BYTES + 3:
            raise WeightsError(f"The file is larger than the {_mb(MAX_BYTES)} limit "
                               f"(about {_mb(len(b64) * 3 // 4)}).")
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise WeightsError("The upload could not be read (it is not valid base64 data).") from None
    else:
        raise WeightsError("No file was uploaded.")
    if len(data) > MAX_BYTES:
        raise WeightsError(f"The file is {_mb(len(data))}, larger than the {_mb(MAX_BYTES)} limit.")
    return data


def read_npz(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file held in memory, checked for size and pickled objects."""
    if len(data) > MAX_BYTES:
        raise WeightsError(f"The file is {_mb(len(data))}, larger than the {_mb(MAX_BYTES)} limit.")
    if data.startswith(NPY_MAGIC):
        raise WeightsError("This is a single .npy array, not an .npz: save the state dict with "
                           "np.savez('model.npz', **state_dict).")
    if not data.startswith(ZIP_MAGIC):
        raise WeightsError("This is not an .npz file (an .npz is a zip archive of .npy arrays, "
                           "written by np.savez).")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise WeightsError(f"The .npz holds {len(infos)} arrays; at most {MAX_MEMBERS} are accepted.")
            total = sum(i.file_size for i in infos)
            if total > MAX_UNCOMPRESSED:
                raise WeightsError(f"The arrays unpack to {_mb(total)}, more than the {_mb(MAX_UNCOMPRESSED)} limit.")
            bad = [i.filename for i in infos if not i.filename.endswith(".npy")]
            if bad:
                raise WeightsError(f"The .npz contains {bad[0]!r}, which is not a .npy array.")
        arrays = {}
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            for name in z.files:
                try:
                    arrays[name] = z[name]
                except ValueError as e:
                    if "pickle" in str(e).lower() or "object" in str(e).lower():
                        raise WeightsError(f"Array {name!r} holds Python objects (pickled data), which are "
                                           f"never loaded; save plain numeric arrays.") from None
                    raise WeightsError(f"Array {name!r} could not be read: {e}") from None
    except WeightsError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise WeightsError(f"The .npz file is damaged and could not be read ({type(e).__name__}: {e}).") from None
    if not arrays:
        raise WeightsError("The .npz file is empty.")
    return arrays


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


def load_weights(contents, filename: str | None = None) -> Uploaded:
    """Check an upload (``dcc.Upload`` contents or raw bytes) and build its core model.

    Raises
    ------
    WeightsError with a message for the user naming what is wrong.
    """
    if filename is not None and not str(filename).lower().endswith(".npz"):
        raise WeightsError(f"{str(filename)[:80]!r} is not an .npz file; save the state dict with np.savez.")
    state, prefix = _strip_prefix(read_npz(decode_upload(contents)))
    config = infer_config(state)
    _check_finite(state)
    model = core.build(config.arch, input_size=config.input_size, hidden_size=config.hidden_size,
                       output_size=config.output_size, num_layers=config.num_layers,
                       nonlinearity=config.nonlinearity)
    try:
        model.load_state_dict({k: v for k, v in state.items() if k != "arch"})
    except ValueError as e:  # the checks above should make this unreachable
        raise WeightsError(str(e)) from None
    name = config.name if config.arch != "rnn" else ("RNN-relu" if config.nonlinearity == "relu" else "RNN (tanh)")
    summary = (f"{name}, {config.num_layers} layer{'s' if config.num_layers > 1 else ''}, H={config.hidden_size}, "
               f"input {config.input_size}, output {config.output_size}, {model.num_parameters():,} parameters"
               + (f" (prefix {prefix!r} removed)" if prefix else ""))
    return Uploaded(model=model, summary=summary, filename=filename)


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
