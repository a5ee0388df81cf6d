"""Classroom presets: every control set to reproduce one known result, and what to look for.

Each :class:`Preset` holds a complete :class:`~visualizer.urlstate.Params` (so applying it sets
every control and the URL) and a short title; training presets also say how many steps to train.
What the class is told about a preset is measured, not typed: :func:`visualizer.narrative.preset_text`
fills its sentences from the core's results. ``tests/visualizer/test_presets.py`` checks with the
core engine that each preset really shows its effect.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
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
    ),
    Preset(
        key="exploding",
        title="Exploding gradients: spectral radius above 1",
        params=Params(arch=("rnn", "lstm", "gru"), seq_len=100, hidden=32, task="adding", loss_on="last",
                      init="orthogonal", scale=2.5, view="jacobian"),
    ),
    Preset(
        key="lstm-forget-bias",
        title="LSTM forget-gate bias 1 against the tanh RNN",
        params=Params(arch=("rnn", "lstm"), seq_len=300, hidden=32, task="adding", loss_on="last",
                      init="pytorch", forget_bias=1.0, view="gates"),
    ),
    Preset(
        key="lstm-long-memory",
        title="LSTM keeping its gradient over hundreds of steps",
        params=Params(arch=("rnn", "lstm"), seq_len=300, hidden=32, task="adding", loss_on="last",
                      init="pytorch", forget_bias=5.0, view="gates"),
    ),
    Preset(
        key="irnn",
        title="Identity-initialised ReLU RNN (IRNN)",
        params=Params(arch=("rnn", "rnn-relu"), seq_len=500, hidden=32, task="adding", loss_on="last",
                      init="identity", scale=1.0, view="jacobian"),
    ),
    Preset(
        key="clipping",
        title="Gradient clipping rescues an exploding run (training)",
        params=Params(arch=("rnn-relu",), seq_len=100, hidden=32, batch=8, task="sine", loss_on="all",
                      init="identity", scale=1.0, clip=1.0, optimizer="sgd", lr=0.1, steps=300, view="jacobian"),
        train_steps=300,
    ),
    Preset(
        key="cost",
        title="The cost of BPTT: memory, time, and what truncation gives up",
        params=Params(arch=("rnn", "lstm", "gru"), seq_len=200, hidden=32, batch=8, task="copy", loss_on="all",
                      init="orthogonal", scale=1.0, truncate=20, view="cost"),
    ),
    Preset(
        key="truncation",
        title="Truncated BPTT cuts the gradient at its window",
        params=Params(arch=("rnn", "lstm", "gru"), seq_len=100, hidden=32, task="adding", loss_on="last",
                      init="pytorch", truncate=25, view="heatmap"),
    ),
    Preset(
        key="bptt-steps",
        title="BPTT step by step: one iteration on a short sequence",
        params=Params(arch=("rnn",), seq_len=12, hidden=8, batch=4, task="sine", loss_on="all", init="orthogonal",
                      scale=1.5, clip=1.0, optimizer="sgd", lr=0.1, view="steps"),
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
        if replace(p.params, view=params.view) == params:
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
