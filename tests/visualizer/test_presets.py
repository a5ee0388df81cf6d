"""Each classroom preset reproduces its result with the core engine, as the app computes it."""
from dataclasses import replace

import numpy as np
import pytest

import core
from visualizer import compute, payloads, presets, training
from visualizer.urlstate import Params, parse_query, validate


def bptt(params, arch):
    """core.bptt on the model and batch the app builds for ``arch`` under ``params``."""
    key = compute.run_key(params, arch)
    task, model = compute.get_task(key.data), compute.get_model(key)
    y, loss_on, _ = compute.targets(task, key.data.loss_on)
    return core.bptt(model, task.x, y, loss=task.loss, loss_on=loss_on, truncate=key.truncate)


def ratio(params, arch):
    """||dL/dh_0|| / ||dL/dh_{T-1}|| of the top layer."""
    norms = bptt(params, arch).hidden_grad_norms[-1]
    return norms[0] / norms[-1]


@pytest.mark.parametrize("key", list(presets.PRESETS))
def test_preset_is_a_valid_complete_state(key):
    p = presets.PRESETS[key]
    again, messages = validate(p.params.to_dict())
    assert again == p.params and messages == []
    assert parse_query(p.query) == (p.params, [])
    assert presets.matching(p.params) == key
    assert presets.get(key) is p
    for arch in p.params.arch:  # every architecture builds and runs
        assert np.all(np.isfinite(bptt(p.params, arch).hidden_grad_norms))


def test_options_and_unknown_keys():
    assert [o["value"] for o in presets.options()] == list(presets.PRESETS)
    assert len({o["label"] for o in presets.options()}) == len(presets.PRESETS)
    assert presets.get("nope") is None and presets.get(None) is None
    assert presets.matching(replace(presets.PRESETS["vanishing"].params, seed=7)) is None


def test_preset_in_the_url_expands_to_its_settings():
    p = presets.PRESETS["irnn"]
    assert parse_query(presets.expand_query("?preset=irnn")) == (p.params, [])
    params, messages = parse_query(presets.expand_query("?preset=irnn&seq_len=200&present=1"))
    assert params == replace(p.params, seq_len=200)
    assert messages == []  # display keys pass through untouched and are not settings
    assert presets.expand_query("?preset=nope&seed=3") == "?preset=nope&seed=3"
    assert presets.expand_query("?seed=3") == "?seed=3" and presets.expand_query(None) is None
    assert presets.parse_query("?preset=irnn&seq_len=200") == (replace(p.params, seq_len=200), [])


def test_an_unknown_preset_in_the_url_gets_a_message_and_changes_nothing():
    params, messages = presets.parse_query("?preset=nope&seed=3")
    assert params == Params(seed=3)
    assert messages == ["preset 'nope' is unknown; ignored."]
    assert parse_query("?preset=nope&seed=3") == (Params(seed=3), [])  # a display key: not a setting


def test_vanishing_tanh_rnn():
    p = presets.PRESETS["vanishing"].params
    assert p.arch == ("rnn",) and p.init == "pytorch"
    assert ratio(p, "rnn") < 1e-20  # the text says about 1e-25


def test_exploding_with_spectral_radius_above_one():
    p = presets.PRESETS["exploding"].params
    W = compute.get_model(compute.run_key(p, "rnn")).params["weight_hh_l0"]
    assert np.max(np.abs(np.linalg.eigvals(W))) == pytest.approx(2.5)
    assert ratio(p, "rnn") > 1e9
    assert 1 / 3 < ratio(p, "lstm") < 3  # the LSTM moves by less than half a decade ...
    assert 10 ** -3.5 < ratio(p, "gru") < 10 ** -2.5  # ... the GRU falls by about three


def test_lstm_forget_bias_one():
    p = presets.PRESETS["lstm-forget-bias"].params
    lstm, rnn = ratio(p, "lstm"), ratio(p, "rnn")
    assert lstm > 1e50 * rnn  # over 50 orders of magnitude more
    assert lstm < 1e-20  # it still fades
    assert ratio(replace(p, forget_bias=0.0), "lstm") < 1e-20 * lstm  # bias 0 falls back


def test_lstm_large_forget_bias_keeps_gradient_over_hundreds_of_steps():
    p = presets.PRESETS["lstm-long-memory"].params
    assert p.seq_len >= 300
    assert ratio(p, "lstm") > 0.1
    assert ratio(p, "rnn") < 1e-70
    gates = {it["arch"]: it for it in payloads.gate_items([compute.run_key(p, "lstm")])}
    assert gates["lstm"]["median"][0] > 0.1  # product of forget gates over all 300 steps


def test_irnn_keeps_gradient_and_tanh_does_not():
    p = presets.PRESETS["irnn"].params
    assert p.init == "identity" and p.seq_len >= 500
    norms = bptt(p, "rnn-relu").hidden_grad_norms[-1]
    assert 0.1 < norms[0] / norms[-1] < 10
    assert np.max(norms) / np.min(norms) < 10  # within a factor of a few everywhere
    assert ratio(p, "rnn") < 1e-7


def test_truncation_cuts_the_gradient_exactly_at_the_window():
    p = presets.PRESETS["truncation"].params
    k, T = p.truncate, p.seq_len
    start = (T - 1) // k * k  # first step of the last window
    for arch in p.arch:
        res = bptt(p, arch)
        assert np.all(res.hidden_grad_norms[:, :start] == 0.0)  # exactly zero, not small
        assert np.all(res.hidden_grad_norms[:, start:] > 0.0)
        assert np.all(res.carried_grad_norms[:, start - 1] == 0.0)  # nothing carried across the cut
        full = bptt(replace(p, truncate=None), arch)
        assert np.all(full.hidden_grad_norms[:, :start] > 0.0)  # without truncation it is not zero


def _run(params, steps):
    """The app's training config for the one architecture of ``params``, run to the end."""
    (arch,) = params.arch
    last = None
    for last in core.train_iter(training.train_config(params, arch, steps)):  # noqa: B007 - only the last is kept
        pass
    return last


@pytest.mark.slow
def test_clipping_rescues_the_exploding_run():
    preset = presets.PRESETS["clipping"]
    p, steps = preset.params, preset.train_steps
    clipped = _run(p, steps)
    assert not clipped.diverged and clipped.step == steps
    assert np.all(np.isfinite(clipped.losses))
    assert np.mean(clipped.losses[-20:]) < clipped.baseline_loss / 5  # it learns, well below the baseline
    assert clipped.clip_flags.sum() > 10 and np.max(clipped.grad_norms) > 1e3  # clipping really acted
    unclipped = _run(replace(p, clip=None), steps)
    assert unclipped.diverged and unclipped.step <= 5  # "overflows within five steps"
    assert unclipped.grad_norms[0] == pytest.approx(19, abs=0.5) and unclipped.grad_norms[1] > 1e20
    config = training.train_config(replace(p, clip=None), "rnn-relu", steps)
    after = training.train_step(config, core.build_model(config), training.initial_state(config))
    assert np.linalg.norm(after.params["weight_hh_l0"], 2) == pytest.approx(1.9, abs=0.05)  # "from 1 to 1.9"


def test_cost_preset_tells_its_story():
    from visualizer import cost

    p = presets.PRESETS["cost"].params
    pl = cost.payload([compute.run_key(p, a) for a in p.arch])
    curves = {c.method: c for c in pl.sweep.curves}
    T = curves["bptt"].T
    assert curves["bptt"].memory[-1] / curves["bptt"].memory[0] == pytest.approx(T[-1] / T[0], rel=0.05)  # O(T)
    for m in ("window", "budget", "rtrl"):  # constant beyond the window
        assert curves[m].memory[-1] == curves[m].memory[-2]
    for m in ("window", "sqrt", "budget"):  # far less than full BPTT at the app's longest T
        assert curves[m].memory[-1] < curves["bptt"].memory[-1] / 10
    by = {t.arch: t for t in pl.tradeoffs}
    at20 = {a: float(t.rel_error[list(t.windows).index(20)]) for a, t in by.items()}
    assert at20["rnn"] > at20["lstm"] and at20["rnn"] > at20["gru"]  # the RNN loses more at k = 20
    for t in pl.tradeoffs:
        assert all(e[3] < 1e-12 for e in t.exact)  # checkpointing and RTRL exact
    assert curves["rtrl"].seconds[-1] > curves["bptt"].seconds[-1]
