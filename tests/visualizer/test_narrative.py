"""Every number a preset explanation quotes is the core's, at the three digits printed.

Each expected value is recomputed here from the core directly (not through visualizer.facts),
formatted with the printed precision, and must appear in the sentence that claims it; no other
number may appear (formula constants and citation years aside). The claims in words ("fades",
"regrows", "not saturated") are checked on the same data.
"""
import math
import re
from dataclasses import replace

import numpy as np
import pytest

import core
from visualizer import compute, facts, lessons, narrative, presets
from visualizer.budget import jacobian_plan
from visualizer.fmt import mib, num, sub
from visualizer.urlstate import Params

NUMBER = re.compile(r"\d+(?:\.\d+)?(?:·10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)?")
FORMULA = re.compile(r"[A-Z]\w+ (?:et al\.|& \w+) \d{4}|1/γ|\(1 − [\w²]+\)|"
                     r"T−1|\[1, T−1\]|\(γσ₁\)ᵏ|0\.05/0\.95(?= )|σ′")


def quoted(text) -> list[str]:
    """The numbers in ``text`` outside formulas and citations."""
    return NUMBER.findall(FORMULA.sub(" ", text))


def bptt(params, arch):
    key = compute.run_key(params, arch)
    task, model = compute.get_task(key.data), compute.get_model(key)
    y, loss_on, _ = compute.targets(task, key.data.loss_on)
    return model, task, core.bptt(model, task.x, y, loss=task.loss, loss_on=loss_on, truncate=key.truncate)


def grad(params, arch):
    return bptt(params, arch)[2].hidden_grad_norms[-1]


def by_lag(params, arch):
    model, task, _ = bptt(params, arch)
    J = core.jacobian_norms(model, task.x[:, : compute.jacobian_batch(compute.run_key(params, arch))])[-1]
    return np.median(J, axis=1)[::-1]


def expect(text, *parts):
    """Each of ``parts`` (already formatted) appears in ``text`` in order, and every number of the
    text is one of them."""
    at = 0
    for part in parts:
        i = text.find(part, at)
        assert i >= 0, f"{part!r} not found (in order) in {text!r}"
        at = i + len(part)
    allowed = {n for p in parts for n in quoted(p)}
    stray = [n for n in quoted(text) if n not in allowed]
    assert not stray, f"numbers not measured: {stray} in {text!r}"


def text(key):
    return lessons.preset_text(key, presets.PRESETS[key].params)


def test_number_format():
    assert num(0.5680528) == "0.568" and num(1.444290754845581e-25) == "1.44·10⁻²⁵"
    assert num(13342998746.7) == "1.33·10¹⁰" and num(611.127) == "611" and num(0.0) == "0"
    assert num(float("inf")) == "∞" and num(float("nan")) == "NaN" and sub(99) == "₉₉"
    assert quoted("×0.568 per step, 1.44·10⁻²⁵ (Bengio et al. 1994), 1/γ = 1") == ["0.568", "1.44·10⁻²⁵", "1"]


def test_vanishing():
    p = presets.PRESETS["vanishing"].params
    g = grad(p, "rnn")
    model = compute.get_model(compute.run_key(p, "rnn"))
    W = np.asarray(model.params["weight_hh_l0"], float)
    rho, s1 = np.max(np.abs(np.linalg.eigvals(W))), np.linalg.svd(W, compute_uv=False)[0]
    h = core.layer_forward("rnn", "tanh", compute.get_task(compute.run_key(p, "rnn").data).x,
                           *(np.asarray(model.params[k], float) for k in
                             ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")))[0]
    dphi = np.mean(1 - h[1:] ** 2)
    jac = core.rate_per_step(by_lag(p, "rnn"))
    T = g.size
    t = text("vanishing")
    expect(t, f"‖∂L/∂h₀‖ is {num(g[0] / g[-1])} of ‖∂L/∂h{sub(T - 1)}‖", f"×{num((g[0] / g[-1]) ** (1 / (T - 1)))}",
           f"σ₁(W_hh) = {num(s1)} > 1/γ = 1", "guarantees nothing", f"measures ×{num(jac)} per step, close to",
           f"= {num(rho)} · {num(dphi)} = {num(rho * dphi)}")
    assert s1 > 1 and g[0] / g[-1] < 1e-20  # sigma_1 > 1, yet it vanishes: the sufficient condition fails
    assert abs(rho * dphi - jac) < narrative.CLOSE * jac  # "close to"


def test_exploding():
    p = presets.PRESETS["exploding"].params
    g = {a: grad(p, a) for a in p.arch}
    W = np.asarray(compute.get_model(compute.run_key(p, "rnn")).params["weight_hh_l0"], float)
    rho, s1 = np.max(np.abs(np.linalg.eigvals(W))), np.linalg.norm(W, 2)
    r = {a: v[0] / v[-1] for a, v in g.items()}
    step = r["rnn"] ** (1 / 99)
    sat = {}
    for arch in ("lstm", "gru"):
        model, task, _ = bptt(p, arch)
        s = core.gate_saturation(model, task.x)
        sat[arch] = s.total[-1]
    t = text("exploding")
    expect(t, "orthogonal matrix times 2.5", f"ρ(W_hh) = {num(rho)}", f"σ₁(W_hh) = {num(s1)} > 1/γ = 1",
           "necessary for exploding, not sufficient", f"is {num(r['rnn'])} times ‖∂L/∂h₉₉‖", f"×{num(step)} per step",
           f"a decade every {num(1 / math.log10(step))} steps", f"is {num(r['lstm'])} for the LSTM",
           f"{num(r['gru'])} for the GRU ({num(-math.log10(r['gru']))} decades)",
           f"{num(100 * sat['lstm'])}% of the LSTM's and {num(100 * sat['gru'])}% of the GRU's",
           "beyond 0.05/0.95")
    # the claims in words, tightly: the RNN explodes by ten decades, the gated ones move < 3.5 decades, unsaturated
    assert r["rnn"] > 1e10 and 1 / 3 < r["lstm"] < 3 and 10 ** -3.5 < r["gru"] < 10 ** -2.5
    assert sat["lstm"] < 0.01 and sat["gru"] < 0.02


def test_forget_bias_one():
    p = presets.PRESETS["lstm-forget-bias"].params
    g = {a: grad(p, a) for a in p.arch}
    r = {a: v[0] / v[-1] for a, v in g.items()}
    model, task, _ = bptt(p, "lstm")
    stats = core.gate_saturation(model, task.x)
    path = np.median(core.gate_products(model, task.x)[-1, 0])
    t = text("lstm-forget-bias")
    expect(t, "forget bias of 1", f"mean f of {num(stats.mean[-1][1])}", "Over 299 steps",
           f"to {num(r['lstm'])} of its last value", f"×{num(r['lstm'] ** (1 / 299))} per step",
           f"falls to {num(r['rnn'])}", f"{num(math.log10(r['lstm'] / r['rnn']))} orders of magnitude less",
           f"fades faster, ∏ f = {num(path)}", "Set the bias to 0")
    assert r["lstm"] < 1e-15 and path < r["lstm"]  # "still fades"; the cell path alone fades faster
    zero = grad(replace(p, forget_bias=0.0), "lstm")
    assert zero[0] / zero[-1] < 1e-6 * r["lstm"]  # with bias 0 it falls back towards the RNN


def test_long_memory():
    p = presets.PRESETS["lstm-long-memory"].params
    g = {a: grad(p, a) for a in p.arch}
    r = {a: v[0] / v[-1] for a, v in g.items()}
    model, task, _ = bptt(p, "lstm")
    f_mean = core.gate_saturation(model, task.x).mean[-1][1]
    path = np.median(core.gate_products(model, task.x)[-1, 0])
    low = g["lstm"] / g["lstm"][-1]
    J = by_lag(p, "lstm")
    t = text("lstm-long-memory")
    expect(t, "forget bias of 5", f"forget gate is {num(f_mean)}", "the 299 steps", f"is {num(path)}",
           f"is {num(r['lstm'])} of ‖∂L/∂h₂₉₉‖", f"RNN's {num(r['rnn'])}", f"dips to {num(low.min())}",
           f"t = {np.argmin(low)}", f"reaches {num(J.max())} at lag {np.argmax(J)}",
           f"= {num(math.log(299))}", f"= {num((299 / 300) ** 299)}")
    assert path < 0.2 and r["lstm"] > 0.5 and low.min() < 0.05 and 0 < np.argmin(low) < 299 and J.max() > 100


def test_irnn():
    p = presets.PRESETS["irnn"].params
    g = {a: grad(p, a) for a in p.arch}
    model = compute.get_model(compute.run_key(p, "rnn-relu"))
    assert all(np.all(model.params[f"bias_{s}_l0"] == 0) for s in ("ih", "hh"))  # "zero biases"
    relu = g["rnn-relu"] / g["rnn-relu"][-1]
    tanh_model, task, _ = bptt(p, "rnn")
    dphi = core.activation_derivative_mean(tanh_model, task.x)[-1]
    t = text("irnn")
    expect(t, "ρ(W_hh) = σ₁(W_hh) = 1", f"within a factor of {num(1 / relu.min())}", "over 499 steps",
           f"×{num(core.rate_per_step(by_lag(p, 'rnn-relu')))} per step", f"mean {num(dphi)}",
           f"‖∂L/∂h₀‖ is {num(g['rnn'][0] / g['rnn'][-1])} of ‖∂L/∂h₄₉₉‖")
    assert relu.max() / relu.min() < 1.5 and g["rnn"][0] / g["rnn"][-1] < 1e-7


def test_truncation():
    p = presets.PRESETS["truncation"].params
    start = min(int(np.flatnonzero(grad(p, a))[0]) for a in p.arch)
    t = text("truncation")
    expect(t, "truncation 25", "every 25 steps", f"steps {start} to 99", f"before step {start}", "exactly 0")
    assert all(np.all(grad(p, a)[:start] == 0) for a in p.arch)


def test_clipping():
    p = presets.PRESETS["clipping"].params
    from visualizer import training
    config = training.train_config(replace(p, clip=None), "rnn-relu", 10)
    norms, sig = [], []
    for snap in core.train_iter(replace(config, snapshot_params=True)):
        norms.append(snap.grad_norm)
        if not snap.diverged:
            sig.append(np.linalg.norm(snap.params["weight_hh_l0"], 2))
    diverged = len(norms)
    t = text("clipping")
    expect(t, "learning rate 0.1", f"norm {num(norms[0])}", "from 1 to", f"{num(sig[0])}", f"norm {num(norms[1])}",
           f"at step {diverged}", "c = 1", f"momentum {num(config.momentum)}",
           f"= {num(0.1 * 1 / (1 - config.momentum))}")
    assert diverged <= 5


@pytest.mark.parametrize("key", list(presets.PRESETS))
def test_every_preset_has_a_short_measured_explanation(key):
    t = text(key)
    sentences = re.split(r"(?<! al)[.:]\s+(?=[A-Z])", t)
    assert 2 <= len(sentences) <= 4, t


def test_a_templates_numbers_follow_the_data():
    p = presets.PRESETS["vanishing"].params
    k = compute.run_key(p, "rnn")
    g, w, j = facts.grad_facts(k), facts.weight_facts(k), facts.jacobian_facts(k)
    before = narrative.vanishing(g, w, j)
    other = compute.run_key(replace(p, seed=3, hidden=20), "rnn")
    after = narrative.vanishing(facts.grad_facts(other), facts.weight_facts(other), facts.jacobian_facts(other))
    assert quoted(before) != quoted(after)
    assert num(g.ratio) in before and num(facts.grad_facts(other).ratio) in after
    # a sufficient condition that holds is said to hold
    shrunk = narrative.vanishing(g, replace(w, sigma1=0.9), j)
    assert "0.9 < 1/γ = 1, so the bound (γσ₁)ᵏ shrinks and vanishing is guaranteed" in shrunk
    assert "bound explains it" in shrunk and "does not explain" not in shrunk
    at_one = narrative.pascanu(replace(w, sigma1=1.0))
    assert "exploding is impossible" in at_one and "possible" not in at_one.replace("impossible", "")
    # a rate far from the heuristic is not called close
    assert "unlike" in narrative.vanishing(g, w, replace(j, rate=0.9))


def test_landing_note_only_when_everything_vanishes():
    from visualizer import callbacks
    from visualizer.urlstate import DEFAULTS
    ratios = {a: grad(DEFAULTS, a)[0] / grad(DEFAULTS, a)[-1] for a in DEFAULTS.arch}
    assert all(r < 1e-3 for r in ratios.values())  # at the defaults every network vanishes
    (note,) = callbacks.landing_children(DEFAULTS)
    text = note.children[0]
    for a, r in ratios.items():
        assert f"{compute.DISPLAY_NAMES[a]} ×{num(r ** (1 / 99))}" in text
    best = max(ratios, key=ratios.get)
    assert f"the {compute.DISPLAY_NAMES[best]} keeps only {num(ratios[best])} of it over 99 steps" in text
    nxt = presets.PRESETS[callbacks.LANDING_NEXT]
    assert nxt.title in text and f"bias to {num(nxt.params.forget_bias)}" in text
    assert note.children[2].href == f"?preset={nxt.key}"
    # the preset it points to does keep its gradient, and there the note is gone
    assert grad(nxt.params, "lstm")[0] / grad(nxt.params, "lstm")[-1] > 0.5
    assert callbacks.landing_children(nxt.params) == []
    assert callbacks.landing_children(replace(nxt.params, seed=1)) == []  # the LSTM keeps it: no note
    assert callbacks.landing_children(presets.PRESETS["vanishing"].params) == []  # a preset explains itself


def test_view_notes_quote_the_measured_rate_and_the_bound():
    p = presets.PRESETS["exploding"].params
    keys = [compute.run_key(p, a) for a in p.arch]
    note = narrative.jacobian_note(keys)
    for arch in p.arch:
        rate = core.rate_per_step(by_lag(p, arch))
        name = compute.DISPLAY_NAMES[arch]
        assert f"{name}: measured ×{num(rate)} per step" in note
    W = compute.get_model(keys[0]).params["weight_hh_l0"]
    assert f"σ₁(W_hh) = {num(np.linalg.norm(W, 2))} > 1/γ = 1, so the bound (γσ₁)ᵏ grows" in note
    assert "necessary for exploding, not sufficient" in note and "becomes possible" not in note
    assert note.count("no σ₁ bound applies") == 2  # LSTM and GRU
    gates = narrative.gates_note(keys)
    model, task, _ = bptt(p, "gru")
    path = np.median(core.gate_products(model, task.x)[-1, 0])
    whole = np.median(core.jacobian_norms(model, task.x)[-1, 0])
    assert f"GRU: ∏ z from step 0 = {num(path)}, whole ‖∂s₉₉/∂s₀‖ = {num(whole)}." in gates


def test_gates_note_where_only_the_last_lags_are_computed_quotes_those_steps():
    p = Params(arch=("lstm",), seq_len=1000, hidden=256)
    key = compute.run_key(p, "lstm")
    _, lags = jacobian_plan(key)
    assert lags is not None and lags < 999  # this size computes only the last lags of the whole Jacobian
    s = 999 - lags
    model, task = compute.get_model(key), compute.get_task(key.data)
    path = np.median(core.gate_products(model, task.x)[-1, 0])
    path_s = np.median(core.gate_products(model, task.x)[-1, s])
    whole_s = core.jacobian_norms(model, task.x[:, :1], lags=lags)[-1, s, 0]
    assert np.isfinite(whole_s) and np.isnan(core.jacobian_norms(model, task.x[:, :1], lags=lags)[-1, 0, 0])
    note = narrative.gates_note([key])
    assert f"LSTM: ∏ f from step 0 = {num(path)}. " in note
    assert (f"computed over the last {lags} steps only: there ∏ f = {num(path_s)}, "
            f"whole ‖∂s₉₉₉/∂s{sub(s)}‖ = {num(whole_s)}.") in note
    assert "NaN" not in note and "∂s₀‖" not in note  # never a number for steps that were not computed


def test_cost():
    from visualizer import cost
    p = presets.PRESETS["cost"].params
    keys = [compute.run_key(p, a) for a in p.arch]
    pl = cost.payload(keys)
    curves = {c.method: c for c in pl.sweep.curves}
    full = curves["bptt"]
    err = {t.name: float(t.rel_error[list(t.windows).index(p.truncate)]) for t in pl.tradeoffs}
    exact = max(float(e[3]) for t in pl.tradeoffs for e in t.exact)
    t = text("cost")
    expect(t, f"from T = {full.T[0]} to T = {full.T[-1]}", f"grows {num(full.memory[-1] / full.memory[0])}-fold",
           f"to {mib(full.memory[-1])}",
           *[f"{c.label}: {mib(c.memory[-1])}" for c in pl.sweep.curves if c.method != "bptt"],
           f"k = {p.truncate}", *[f"{name} {num(e)}" for name, e in err.items()],
           f"the {max(err, key=err.get)} loses most", f"at most {num(exact)}",
           f"{num(curves['rtrl'].seconds[-1] / full.seconds[-1])} times full BPTT's time")
    assert exact < 1e-12 and max(err, key=err.get) == "RNN"
