"""What a simulated student does: the next control change (shared by load_test.py and locustfile.py).

Imports only ``visualizer.ids`` (no Dash), so the locustfile also runs from a separate virtual
environment that has locust but not the app.
"""
from __future__ import annotations

import random

from visualizer import ids

ARCHS = ["rnn", "rnn-relu", "lstm", "gru"]


def control_changes(rng: random.Random, props: dict | None = None):
    """(component id, property, new value) of one student's next change: the moves a student makes
    in a lesson, at sizes a lesson uses (defaults T=100, H=32; up to T=300, H=64). With ``props``
    (the page's current ``{(id, property): value}``) the value differs from the current one: a browser
    sends nothing when a control is set to the value it already has."""
    for _ in range(50):
        cid, prop, value = _draw(rng)
        if props is None or props.get((cid, prop)) != value:
            return cid, prop, value
    return cid, prop, value


def _draw(rng: random.Random):
    """One draw of :func:`control_changes` (the value may be the current one)."""
    choices = [
        (ids.SEQ_LEN, lambda: rng.choice([20, 50, 100, 150, 200, 300])),
        (ids.HIDDEN, lambda: rng.choice([8, 16, 32, 48, 64])),
        (ids.LAYERS, lambda: rng.choice([1, 1, 2])),
        (ids.BATCH, lambda: rng.choice([1, 4, 8, 16])),
        (ids.ARCH, lambda: sorted(rng.sample(ARCHS, rng.randint(1, 3)), key=ARCHS.index)),
        (ids.TASK, lambda: rng.choice(["adding", "copy", "sine", "chars"])),
        (ids.INIT, lambda: rng.choice(["pytorch", "orthogonal", "identity", "normal"])),
        (ids.SCALE, lambda: round(rng.uniform(0.5, 1.6) * 20) / 20),
        (ids.FORGET_BIAS, lambda: rng.choice([None, 0, 1, 2])),
        (ids.SEED, lambda: rng.randint(0, 50)),
        (ids.TRUNCATE, lambda: rng.choice([None, 10, 25, 50])),
        (ids.LOSS_ON, lambda: rng.choice(["last", "all"])),
        (ids.VIEW, lambda: rng.choice(["jacobian", "heatmap", "spectra", "gates", "connectivity", "cost", "steps"])),
    ]
    cid, make = rng.choice(choices)
    return cid, "value", make()
