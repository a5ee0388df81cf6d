"""Classroom presets: every control set to reproduce one known result, and what to look for.

Each :class:`Preset` holds a complete :class:`~visualizer.urlstate.Params` (so applying it sets
every control and the URL), a short title, and two or three sentences for the class. Training
presets also say how many steps to train. ``tests/visualizer/test_presets.py`` checks with the
core engine that each preset really shows its effect.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from . import urlstate
from .urlstate import Params, query_pairs, to_query


@dataclass(frozen=True)
class Preset:
    """A named configuration. ``train_steps`` is set for presets whose effect shows in training
    (it equals ``params.steps``, the training card's step count the preset sets)."""

    key: str
    title: str
    params: Params
    explanation: str
    train_steps: int | None = None

    @property
    def query(self) -> str:
        """The URL query that opens the app in this preset."""
        return to_query(self.params)


PRESETS = {p.key: p for p in (
    Preset(
        key="vanishing",
        title="Vanishing gradients in a tanh RNN",
        params=Params(arch=("rnn",), seq_len=100, hidden=32, task="adding", loss_on="last", init="pytorch",
                      view="heatmap"),
        explanation=(
            "The loss sits at the last step; follow its gradient back in time. Each step multiplies it by "
            "the Jacobian diag(1 − h²) W_hh, whose norm is mostly below 1, so after 100 steps ‖∂L/∂h₀‖ is "
            "about 10⁻²⁵ of ‖∂L/∂h₉₉‖: the first steps get no learning signal at all (Bengio et al. 1994). "
            "In the heatmap, the left side is dark."),
    ),
    Preset(
        key="exploding",
        title="Exploding gradients: spectral radius above 1",
        params=Params(arch=("rnn", "lstm", "gru"), seq_len=100, hidden=32, task="adding", loss_on="last",
                      init="orthogonal", scale=2.5, view="jacobian"),
        explanation=(
            "W_hh is an orthogonal matrix times 2.5, so every eigenvalue has modulus 2.5. tanh keeps the "
            "RNN's state bounded, but its gradient grows about tenfold every few steps going back: ‖∂L/∂h₀‖ "
            "is over 10⁹ times ‖∂L/∂h₉₉‖ (Pascanu et al. 2013). The same weights barely move the gated LSTM "
            "and GRU: their saturated gates break the chain of multiplications."),
    ),
    Preset(
        key="lstm-forget-bias",
        title="LSTM forget-gate bias 1 against the tanh RNN",
        params=Params(arch=("rnn", "lstm"), seq_len=300, hidden=32, task="adding", loss_on="last",
                      init="pytorch", forget_bias=1.0, view="gates"),
        explanation=(
            "The LSTM's cell passes its gradient back through the forget gates: c_{t−1} gets f_t times the "
            "gradient of c_t, and a forget bias of 1 (Gers et al. 2000; Jozefowicz et al. 2015) makes f ≈ 0.73. "
            "Over 300 steps the LSTM keeps about 50 orders of magnitude more gradient than the RNN, though "
            "0.73 per step still fades. Set the bias to 0 and the LSTM falls back towards the RNN."),
    ),
    Preset(
        key="lstm-long-memory",
        title="LSTM keeping its gradient over hundreds of steps",
        params=Params(arch=("rnn", "lstm"), seq_len=300, hidden=32, task="adding", loss_on="last",
                      init="pytorch", forget_bias=5.0, view="gates"),
        explanation=(
            "With a forget bias of 5, f ≈ 0.993 and the product of forget gates over 300 steps stays near 1, "
            "so the gradient of the last step reaches the first almost undiminished, while the tanh RNN's "
            "has vanished 70 orders of magnitude earlier. A bias of about log(T) gives memory over T steps "
            "(the chrono initialisation of Tallec & Ollivier 2018)."),
    ),
    Preset(
        key="irnn",
        title="Identity-initialised ReLU RNN (IRNN)",
        params=Params(arch=("rnn", "rnn-relu"), seq_len=500, hidden=32, task="adding", loss_on="last",
                      init="identity", scale=1.0, view="jacobian"),
        explanation=(
            "W_hh = I and zero biases (Le et al. 2015): an active ReLU unit passes its gradient back unchanged, "
            "so the ReLU RNN's gradient stays within a factor of a few over 500 steps. The tanh RNN has the same "
            "identity weights, but tanh′ < 1 shrinks the gradient at every step, by 10⁷ over the sequence."),
    ),
    Preset(
        key="clipping",
        title="Gradient clipping rescues an exploding run (training)",
        params=Params(arch=("rnn-relu",), seq_len=100, hidden=32, batch=8, task="sine", loss_on="all",
                      init="identity", scale=1.0, clip=1.0, optimizer="sgd", lr=0.1, steps=300, view="jacobian"),
        explanation=(
            "Train this IRNN with SGD at learning rate 0.1: without clipping, the first update (gradient norm 19) "
            "lifts W_hh's largest singular value from 1 to 1.9, the next gradient has norm 10²⁵ and the loss "
            "overflows within five steps. Clipping the gradient norm to 1 (Pascanu et al. 2013) keeps each step's "
            "direction but bounds its length; the marked steps were clipped, and the loss falls far below the "
            "baseline. Clear the clipping box to see the blow-up."),
        train_steps=300,
    ),
    Preset(
        key="cost",
        title="The cost of BPTT: memory, time, and what truncation gives up",
        params=Params(arch=("rnn", "lstm", "gru"), seq_len=200, hidden=32, batch=8, task="copy", loss_on="all",
                      init="orthogonal", scale=1.0, truncate=20, view="cost"),
        explanation=(
            "Full BPTT keeps every step's activations, so its memory grows in proportion to T, while truncation, "
            "checkpointing and RTRL hold far less: read the top panels from left to right along T. Truncation pays "
            "with a biased gradient: the orthogonal tanh RNN, whose gradient reaches far back, loses more of it at "
            "k = 20 than the LSTM and GRU. Checkpointing pays with recomputed steps and RTRL with time growing as "
            "n²P per step, and both give the exact gradient (bottom right, at rounding level)."),
    ),
    Preset(
        key="truncation",
        title="Truncated BPTT cuts the gradient at its window",
        params=Params(arch=("rnn", "lstm", "gru"), seq_len=100, hidden=32, task="adding", loss_on="last",
                      init="pytorch", truncate=25, view="heatmap"),
        explanation=(
            "With truncation 25 the state is detached every 25 steps, as PyTorch code does when it runs chunks "
            "and calls detach between them. The loss is at the last step, so only the last window, steps 75 to 99, "
            "gets any gradient: before step 75 it is exactly zero, not small (marked at the bottom of the plot). "
            "The network cannot learn a dependency longer than its window."),
    ),
)}


def get(key) -> Preset | None:
    """The preset named ``key``, or None."""
    return PRESETS.get(key) if isinstance(key, str) else None


def options() -> list[dict]:
    """Dropdown options ``{"label": title, "value": key}`` in display order."""
    return [{"label": p.title, "value": p.key} for p in PRESETS.values()]


def matching(params: Params) -> str | None:
    """The key of the preset whose settings equal ``params`` (the open tab aside), or None."""
    for p in PRESETS.values():
        if p.params.to_dict() | {"view": None} == params.to_dict() | {"view": None}:
            return p.key
    return None


def expand_query(search) -> str:
    """``search`` with ``preset=<key>`` replaced by that preset's settings; keys given explicitly in
    the URL win (``?preset=irnn&seq_len=200``). Without a known preset the query is unchanged, so
    an unknown name is reported by the app's own URL validation."""
    pairs = query_pairs(search)
    if pairs is None:
        return search
    chosen = next((get(v.strip().lower()) for k, v in pairs if k.strip().lower() == "preset"), None)
    if chosen is None:
        return search
    given = {k.strip().lower() for k, _ in pairs}
    base = [(k, v) for k, v in parse_qsl(chosen.query.lstrip("?")) if k not in given]
    rest = [(k, v) for k, v in pairs if k.strip().lower() != "preset"]
    return "?" + urlencode(base + rest, safe=",.-")


def parse_query(search) -> tuple[Params, list[str]]:
    """Params and messages of a page URL's query: :func:`expand_query`, then
    :func:`visualizer.urlstate.parse_query`, with a message for an unknown ``preset`` name."""
    pairs = query_pairs(search) or []
    unknown = [f"preset {str(v)[:40]!r} is unknown; ignored." for k, v in pairs
               if k.strip().lower() == "preset" and get(v.strip().lower()) is None]
    params, messages = urlstate.parse_query(expand_query(search))
    return params, unknown + messages
