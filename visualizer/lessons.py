"""What each classroom preset teaches, measured now: the preset's settings -> the records of
:mod:`visualizer.facts` (and, for clipping, a few training steps) -> a template of
:mod:`visualizer.narrative`. Nothing here imports dash or plotly.
"""
from __future__ import annotations

from . import compute, cost, facts, narrative, stepview, training


def preset_text(key: str, params) -> str:
    """The explanation of preset ``key`` at ``params`` (its settings), measured now."""
    keys = {a: compute.run_key(params, a) for a in params.arch}
    g = {a: facts.grad_facts(k) for a, k in keys.items()}
    if key == "vanishing":
        k = keys["rnn"]
        return narrative.vanishing(g["rnn"], facts.weight_facts(k), facts.jacobian_facts(k))
    if key == "exploding":
        return narrative.exploding(params.scale, g, {a: facts.weight_facts(k) for a, k in keys.items()},
                                   {a: facts.gate_facts(keys[a]) for a in ("lstm", "gru")})
    if key == "lstm-forget-bias":
        return narrative.forget_bias(params.forget_bias, g["rnn"], g["lstm"], facts.gate_facts(keys["lstm"]))
    if key == "lstm-long-memory":
        return narrative.long_memory(params.forget_bias, g["rnn"], g["lstm"], facts.gate_facts(keys["lstm"]),
                                     facts.jacobian_facts(keys["lstm"]))
    if key == "irnn":
        return narrative.irnn(g["rnn-relu"], g["rnn"], facts.weight_facts(keys["rnn-relu"]),
                              facts.weight_facts(keys["rnn"]), facts.jacobian_facts(keys["rnn-relu"]))
    if key == "clipping":
        return narrative.clipping(params.clip, training.blow_up_facts(params))
    if key == "cost":
        return _cost(params, list(keys.values()))
    if key == "truncation":
        return narrative.truncation(params.truncate, list(g.values()))
    if key == "bptt-steps":
        return narrative.bptt_steps(stepview.payload(params))
    raise ValueError(f"no explanation for preset {key!r}")


def _cost(params, keys) -> str:
    """The cost preset's text from the Cost view's payload."""
    pl = cost.payload(keys)
    curves = {c.method: c for c in pl.sweep.curves}
    window = cost.window_of(keys[0])
    memory = {c.label: (int(c.memory[0]), int(c.memory[-1])) for c in pl.sweep.curves}
    errors = {t.name: float(t.rel_error[list(t.windows).index(window)]) for t in pl.tradeoffs}
    exact = max(float(e[3]) for t in pl.tradeoffs for e in t.exact)
    bptt = curves["bptt"]
    return narrative.cost(window, memory, (int(bptt.T[0]), int(bptt.T[-1])), errors, exact,
                          float(curves["rtrl"].seconds[-1] / bptt.seconds[-1]))
