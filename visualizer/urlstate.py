"""The app's complete state as a frozen dataclass, and its round trip through a URL query.

Every control has one field here and one key in the query
(``?arch=rnn,lstm,gru&seq_len=100&hidden=32&...``). Values from a URL or from the controls go
through the same validation: a bad value is clamped into range or replaced by the default, and
each such correction yields one human message naming the field. Nothing here raises on user input.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from urllib.parse import parse_qsl, quote

from . import views
from .budget import GATE_BLOCKS, VIEW_WORK_CAP, WORK_CAP_SECONDS

ARCH_CHOICES = ("rnn", "rnn-relu", "lstm", "gru")
ARCH_ALIASES = {"rnn-tanh": "rnn", "rnn_tanh": "rnn", "tanh": "rnn", "rnn_relu": "rnn-relu",
                "relu": "rnn-relu", "irnn": "rnn-relu"}
TASK_CHOICES = ("adding", "copy", "sine", "chars")
INIT_CHOICES = ("pytorch", "orthogonal", "identity", "normal")
UNSCALED_INITS = ("pytorch",)  # the initialisations that ignore scale (core.ModelConfig)
LOSS_ON_CHOICES = ("last", "all")
OPTIMIZER_CHOICES = ("adam", "sgd")
VIEW_CHOICES = views.TAB_KEYS  # the tabbed views, in tab order

# Work cap: seq_len * batch * layers * hidden^2 per architecture (T=1000, H=256, B=16, L=2 fits).
WORK_CAP = 2_200_000_000
# ... and over the chosen architectures, weighted by their gate blocks, VIEW_WORK_CAP: what core.bptt
# does in about WORK_CAP_SECONDS on the reference machine (see visualizer.budget).


@dataclass(frozen=True)
class Params:
    """Every setting of the app. ``arch`` is a tuple in canonical order (see ARCH_CHOICES).

    ``forget_bias`` None keeps the initialiser's bias, ``truncate`` None is full BPTT,
    ``clip`` None is no clipping (clip, optimizer and lr are used by training).
    ``match_params`` gives every architecture the hidden size whose parameter count matches
    a tanh RNN of size ``hidden``. ``steps`` is the training card's number of steps.
    """

    arch: tuple = ("rnn", "lstm", "gru")
    seq_len: int = 100
    hidden: int = 32
    layers: int = 1
    batch: int = 8
    task: str = "adding"
    loss_on: str = "last"
    init: str = "pytorch"
    scale: float = 1.0
    forget_bias: float | None = None
    truncate: int | None = None
    clip: float | None = None
    optimizer: str = "adam"
    lr: float = 0.01
    seed: int = 0
    match_params: bool = False
    steps: int = 300
    view: str = "heatmap"

    def to_dict(self) -> dict:
        """JSON-able dict (for ``dcc.Store``)."""
        d = asdict(self)
        d["arch"] = list(self.arch)
        return d

    @classmethod
    def from_dict(cls, data) -> Params:
        """Inverse of :meth:`to_dict`, validating as :func:`validate` does (messages dropped)."""
        return validate(data if isinstance(data, dict) else {}, allow_empty_arch=True)[0]


DEFAULTS = Params()

# name -> (kind, low, high) for numbers, (kind, choices) for choices
SPEC = {
    "arch": ("arch", ARCH_CHOICES),
    "seq_len": ("int", 1, 2000),
    "hidden": ("int", 1, 512),
    "layers": ("int", 1, 4),
    "batch": ("int", 1, 64),
    "task": ("choice", TASK_CHOICES),
    "loss_on": ("choice", LOSS_ON_CHOICES),
    "init": ("choice", INIT_CHOICES),
    "scale": ("float", 0.0, 5.0),
    "forget_bias": ("optfloat", -10.0, 10.0),
    "truncate": ("optint", 1, 2000),
    "clip": ("optfloat", 1e-3, 1e3),
    "optimizer": ("choice", OPTIMIZER_CHOICES),
    "lr": ("float", 1e-6, 10.0),
    "seed": ("int", 0, 2**31 - 1),
    "match_params": ("bool",),
    "steps": ("int", 1, 2000),  # visualizer.training.MAX_STEPS
    "view": ("choice", VIEW_CHOICES),
}
NONE_WORDS = ("", "none", "null", "off", "default")
ZERO_MEANS_NONE = ("clip",)  # clip=0 means no clipping (not the smallest allowed threshold)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


MAX_SHOWN = 40  # characters of a user's value quoted in a message
MAX_ARCH_NAMES = 16  # arch names examined per request; the rest are ignored with one message
MAX_NAMED = 3  # unknown names (arch or parameter) listed in one message
_INTEGER = re.compile(r"[+-]?\d+")


def _fmt(v) -> str:
    """Short text for a number or value in a message or a URL (huge integers by their digit count)."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**15:
        digits = len(str(abs(v))) if v.bit_length() < 14000 else "many"
        return f"a {digits}-digit{' negative' if v < 0 else ''} number"
    return str(v)


def shown(raw) -> str:
    """A bounded quote of any value a browser sent, for a message: never the whole of a huge
    string, never the repr of a (maybe deeply nested) container."""
    if isinstance(raw, str):
        return repr(raw[:MAX_SHOWN] + ("…" if len(raw) > MAX_SHOWN else ""))
    if raw is None or isinstance(raw, (bool, float)):
        return repr(raw)
    if isinstance(raw, int):
        return _fmt(raw)
    return f"a {type(raw).__name__}"


def _to_number(raw):
    """A finite int or float from a number or numeric string; None if it is not one (bools and
    NaN/inf too). Integers stay exact whatever their size (never converted to float)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return raw if math.isfinite(raw) else None
    if not isinstance(raw, str) or len(raw) > 4000:
        return None
    text = raw.strip()
    try:
        value = int(text) if _INTEGER.fullmatch(text) else float(text)
    except ValueError:
        return None
    return value if isinstance(value, int) or math.isfinite(value) else None


def _check_number(name, raw, kind, low, high):
    """(value, message or None) for an int/float field; bad -> default, out of range -> clamped."""
    default = getattr(DEFAULTS, name)
    optional = kind.startswith("opt")
    if optional and (raw is None or (isinstance(raw, str) and raw.strip().lower() in NONE_WORDS)):
        return None, None
    value = _to_number(raw)
    if optional and value == 0 and name in ZERO_MEANS_NONE:
        return None, None
    if value is None:
        what = "empty" if raw is None or raw == "" else f"not a finite number ({shown(raw)})"
        return default, f"{name} is {what}; using {_fmt(default) if default is not None else 'none'}."
    if value < low:  # exact comparisons: a 400-digit integer is never converted to float
        return low, f"{name}={_fmt(value)} is below the minimum {_fmt(low)}; using {_fmt(low)}."
    if value > high:
        return high, f"{name}={_fmt(value)} is above the maximum {_fmt(high)}; using {_fmt(high)}."
    if kind.endswith("int"):
        if value != int(value):
            clamped = min(max(round(value), low), high)
            return clamped, f"{name}={_fmt(value)} is not a whole number; using {clamped}."
        return int(value), None
    return float(value), None


def _check_choice(name, raw, choices):
    """(value, message or None) for a one-of-choices field."""
    default = getattr(DEFAULTS, name)
    key = raw.strip().lower() if isinstance(raw, str) else ""
    if key in choices:
        return key, None
    return default, f"{name}={shown(raw)} is not one of {', '.join(choices)}; using {default}."


def _check_bool(name, raw):
    """(value, message or None) for a true/false field."""
    if isinstance(raw, bool):
        return raw, None
    if isinstance(raw, (list, tuple)):  # a dcc.Checklist with one option
        return bool(raw), None
    key = raw.strip().lower() if isinstance(raw, str) else str(raw) if isinstance(raw, int) and abs(raw) < 10 else "?"
    if key in TRUE_WORDS:
        return True, None
    if key in FALSE_WORDS:
        return False, None
    default = getattr(DEFAULTS, name)
    return default, f"{name}={shown(raw)} is not true/false; using {str(default).lower()}."


def _check_arch(raw, allow_empty):
    """(tuple of archs in canonical order, messages). Unknown names are dropped with one message
    (at most MAX_ARCH_NAMES names are examined, at most MAX_NAMED distinct unknown ones listed)."""
    if raw is None:
        items = []
    elif isinstance(raw, str):
        items = raw.split(",", MAX_ARCH_NAMES)
    elif isinstance(raw, (list, tuple)):
        items = list(raw[: MAX_ARCH_NAMES + 1])
    else:
        items = [raw]
    chosen, unknown, messages = set(), [], []
    for item in items[:MAX_ARCH_NAMES]:
        key = item.strip().lower() if isinstance(item, str) else None
        if key == "":
            continue
        key = ARCH_ALIASES.get(key, key)
        if key in ARCH_CHOICES:
            chosen.add(key)
        elif shown(item) not in unknown:
            unknown.append(shown(item))
    if unknown:
        listed = ", ".join(unknown[:MAX_NAMED]) + (f" and {len(unknown) - MAX_NAMED} more" if len(unknown) > MAX_NAMED
                                                  else "")
        messages.append(f"arch {listed} {'is' if len(unknown) == 1 else 'are'} unknown "
                        f"(choose from {', '.join(ARCH_CHOICES)}); ignored.")
    if len(items) > MAX_ARCH_NAMES:
        messages.append(f"arch lists more than {MAX_ARCH_NAMES} names; the rest are ignored.")
    archs = tuple(a for a in ARCH_CHOICES if a in chosen)
    if not archs and not allow_empty:
        messages.append(f"no valid architecture given; using {','.join(DEFAULTS.arch)}.")
        archs = DEFAULTS.arch
    return archs, messages


def work(params, batch: int | None = None, seq_len: int | None = None) -> int:
    """``seq_len x batch x layers x hidden^2`` of ``params`` (a :class:`Params`), the cost of one BPTT
    run of one architecture, with ``batch`` or ``seq_len`` in place of the params' own when given."""
    T = params.seq_len if seq_len is None else seq_len
    B = params.batch if batch is None else batch
    return int(T) * int(B) * int(params.layers) * int(params.hidden) ** 2


def view_work(p: Params) -> int:
    """:func:`work` times the gate blocks summed over the chosen architectures (1 for the RNNs, 3 for
    the GRU, 4 for the LSTM): the multiply-adds of view 1's BPTT runs."""
    return work(p) * sum(GATE_BLOCKS[a] for a in p.arch)


def _cap_work(p: Params):
    """(params, message or None): lower batch, then seq_len, until the work per architecture fits
    WORK_CAP and the work of all of them fits VIEW_WORK_CAP."""
    blocks = max(1, sum(GATE_BLOCKS[a] for a in p.arch))
    most = min(WORK_CAP, VIEW_WORK_CAP // blocks) // work(p, batch=1, seq_len=1)  # largest seq_len x batch
    if p.seq_len * p.batch <= most:
        return p, None
    old = p
    p = replace(p, batch=max(1, min(p.batch, most // p.seq_len)))
    if p.seq_len * p.batch > most:
        p = replace(p, seq_len=max(1, most // p.batch))
    if work(old) > WORK_CAP and view_work(old) <= VIEW_WORK_CAP:
        return p, (f"seq_len x batch x layers x hidden^2 = {work(old):,} is over the limit {WORK_CAP:,}; "
                   f"using batch={p.batch}, seq_len={p.seq_len}.")
    return p, (f"seq_len x batch x layers x hidden^2 x gate blocks of {', '.join(old.arch)} = {view_work(old):,} "
               f"is over the limit {VIEW_WORK_CAP:,} (about {WORK_CAP_SECONDS:g} s of computation per view); "
               f"using batch={p.batch}, seq_len={p.seq_len}.")


def validate(values: dict, allow_empty_arch: bool = False) -> tuple[Params, list[str]]:
    """Params from raw values (strings from a URL or values from the controls) and messages.

    Missing keys take their defaults silently; unknown keys get a message; nothing raises.
    """
    values = values if isinstance(values, dict) else {}
    out, messages = {}, []
    for name, spec in SPEC.items():
        if name not in values:
            continue
        raw, kind = values[name], spec[0]
        if kind == "arch":
            out[name], msgs = _check_arch(raw, allow_empty_arch)
            messages += msgs
            continue
        if kind in ("int", "float", "optint", "optfloat"):
            value, msg = _check_number(name, raw, kind, spec[1], spec[2])
        elif kind == "choice":
            value, msg = _check_choice(name, raw, spec[1])
        else:
            value, msg = _check_bool(name, raw)
        out[name] = value
        if msg:
            messages.append(msg)
    unknown = [shown(key) for key in values if key not in SPEC]
    if unknown:
        listed = ", ".join(unknown[:MAX_NAMED]) + (f" and {len(unknown) - MAX_NAMED} more" if len(unknown) > MAX_NAMED
                                                  else "")
        messages.append(f"unknown parameter{'s' if len(unknown) > 1 else ''} {listed} ignored.")
    params, msg = _cap_work(replace(DEFAULTS, **out))
    if msg:
        messages.append(msg)
    return params, messages


# Display keys (visualizer.classroom): presentation mode, ``<control>_hide``, and ``preset`` (expanded
# and checked by visualizer.presets.parse_query).
DISPLAY_KEYS = ("present", "preset")


def query_pairs(search) -> list[tuple[str, str]] | None:
    """The (key, value) pairs of a URL query (``"?a=1&b=2"``, at most 100), or None when ``search``
    is not a string or cannot be read."""
    if not isinstance(search, str):
        return None
    try:
        return parse_qsl(search.lstrip("?"), keep_blank_values=True, max_num_fields=100)
    except ValueError:
        return None


def parse_query(search: str | None) -> tuple[Params, list[str]]:
    """Params and messages from a URL query string such as ``"?arch=rnn,gru&seq_len=50"``."""
    if not isinstance(search, str):
        return DEFAULTS, []
    pairs = query_pairs(search)
    if pairs is None:
        return DEFAULTS, ["the URL query could not be read; using the defaults."]
    values, messages = {}, []
    for key, value in pairs:
        key = key.strip().lower()
        if key in DISPLAY_KEYS or key.endswith("_hide"):  # read by the page, not settings
            continue
        if key == "match":  # short alias
            key = "match_params"
        if key in values:
            messages.append(f"parameter {key!r} given twice; using the last value.")
        values[key] = value
    params, more = validate(values)
    return params, messages + more


def to_query(p: Params) -> str:
    """The canonical query string (``"?arch=rnn,lstm,gru&seq_len=100&..."``) of ``p``."""
    parts = []
    for f in fields(Params):
        v = getattr(p, f.name)
        if f.name == "arch":
            text = ",".join(v)
        elif v is None:
            text = "none"
        elif isinstance(v, bool):
            text = "1" if v else "0"
        elif isinstance(v, float):
            text = repr(v)
        else:
            text = str(v)
        parts.append(f"{f.name}={quote(text, safe=',.-')}")
    return "?" + "&".join(parts)
