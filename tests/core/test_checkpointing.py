"""Checkpointed BPTT under a memory budget: exact gradients, the optimal schedule, the memory models."""
import functools
import itertools
import math

import pytest

import core
from core import checkpointing as ck
from tests.core.test_bptt import ARCHS, make_case
from tests.core.test_rtrl import assert_grads_equal

T = 6  # make_case's sequence length
BUDGETS = [1, 2, math.isqrt(T) + 1, T]  # 1, 2, ceil(sqrt(T)), T
CASES = list(itertools.product(ARCHS, [1, 2], ["mse", "cross_entropy"], ["all", "last"], [None, 2], BUDGETS))
IDS = [f"{a[0]}-{a[1]}-L{l}-{lo}-{on}-trunc{tr}-c{c}" for a, l, lo, on, tr, c in CASES]


@pytest.mark.parametrize("arch_nl,layers,loss,loss_on,truncate,budget", CASES, ids=IDS)
def test_every_budget_gives_bptts_gradients(arch_nl, layers, loss, loss_on, truncate, budget):
    model, x, y = make_case(*arch_nl, layers, loss, loss_on)
    ref = core.bptt(model, x, y, loss=loss, loss_on=loss_on, truncate=truncate)
    res = core.checkpointed_bptt(model, x, y, loss=loss, loss_on=loss_on, truncate=truncate, budget_states=budget)
    assert res.loss == pytest.approx(ref.loss, rel=1e-12)
    assert_grads_equal(res.grads, ref.grads, rtol=1e-12)
    assert res.peak_states == min(budget, T)
    assert res.recomputed_steps == ck.recomputed_steps(T, budget - 1)
    assert res.forward_steps == T + res.recomputed_steps


@functools.cache
def dp(n, m):
    """Gruslys et al.'s dynamic programme, by brute force."""
    if n <= 1:
        return 0
    if m == 0:
        return n * (n - 1) // 2
    return min(y + dp(n - y, m - 1) + dp(y, m) for y in range(1, n))


def test_closed_form_schedule_cost_is_the_dynamic_programmes_optimum():
    for n, m in itertools.product(range(1, 70), range(0, 9)):
        assert ck.recomputed_steps(n, m) == dp(n, m), (n, m)
    for n, m in [(50, 1), (50, 3), (69, 2)]:
        y = ck.split(n, m)
        assert y + dp(n - y, m - 1) + dp(y, m) == dp(n, m)


def test_recomputation_falls_with_the_budget(rng):
    model = core.build("lstm", input_size=2, hidden_size=3)
    x, y = rng.standard_normal((40, 2, 2)), rng.standard_normal((40, 2, 1))
    counts = [core.checkpointed_bptt(model, x, y, budget_states=c).recomputed_steps for c in (1, 2, 6, 40)]
    assert counts == [40 * 39 // 2, dp(40, 1), dp(40, 5), 39]
    assert counts == sorted(counts, reverse=True)


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_measured_memory_matches_each_methods_model(arch, layers, rng):
    model = core.build(arch, input_size=2, hidden_size=5, output_size=3, num_layers=layers)
    T_, B = 30, 4
    x, y = rng.standard_normal((T_, B, 2)), rng.standard_normal((T_, B, 3))
    cfg = model.config
    for checkpoint in (False, True):
        assert core.bptt(model, x, y, checkpoint=checkpoint).memory_bytes == ck.bptt_memory_model(cfg, T_, B,
                                                                                                  checkpoint)
    for budget in (1, 3, 30):
        res = core.checkpointed_bptt(model, x, y, budget_states=budget)
        assert res.memory_bytes == ck.memory_model(cfg, T_, B, budget)
    # the models themselves, from the shapes: an LSTM step keeps 10 (B, H) arrays, a GRU 5, an RNN 1
    per = {"rnn": 1, "lstm": 10, "gru": 5}[arch] * B * 5 * 8 * layers
    assert ck.bptt_memory_model(cfg, T_, B) == T_ * per + T_ * B * 3 * 8
    assert ck.memory_model(cfg, T_, B, 3) == 3 * ck.state_bytes(cfg, B) + per


def test_budget_in_bytes(rng):
    model = core.build("gru", input_size=2, hidden_size=4)
    x, y = rng.standard_normal((20, 3, 2)), rng.standard_normal((20, 3, 1))
    cfg = model.config
    budget = 5 * ck.state_bytes(cfg, 3) + ck.step_bytes(cfg, 3) + 7
    res = core.checkpointed_bptt(model, x, y, budget_bytes=budget)
    assert res.budget_states == 5
    assert res.memory_bytes <= budget
    assert_grads_equal(res.grads, core.bptt(model, x, y).grads, rtol=1e-12)
    with pytest.raises(ValueError, match="budget_bytes must be at least"):
        core.checkpointed_bptt(model, x, y, budget_bytes=100)


@pytest.mark.parametrize("kw,match", [({}, "exactly one"), ({"budget_states": 0}, "budget_states"),
                                      ({"budget_states": 2.5}, "budget_states"),
                                      ({"budget_states": True}, "budget_states"),
                                      ({"budget_bytes": "1e6"}, "budget_bytes"),
                                      ({"budget_states": 2, "budget_bytes": 10**6}, "exactly one")])
def test_bad_budgets_are_refused_naming_the_field(kw, match, rng):
    model = core.build("rnn", input_size=2, hidden_size=3)
    with pytest.raises(ValueError, match=match):
        core.checkpointed_bptt(model, rng.standard_normal((5, 1, 2)), rng.standard_normal((5, 1, 1)), **kw)


WINDOW_CASES = list(itertools.product(ARCHS, [1, 2], ["mse", "cross_entropy"], ["all", "last"], [1, 2, 4, 6, 9]))


@pytest.mark.parametrize("arch_nl,layers,loss,loss_on,window", WINDOW_CASES,
                         ids=[f"{a[0]}-{a[1]}-L{l}-{lo}-{on}-k{k}" for a, l, lo, on, k in WINDOW_CASES])
def test_windowed_bptt_is_truncated_bptt(arch_nl, layers, loss, loss_on, window):
    model, x, y = make_case(*arch_nl, layers, loss, loss_on)
    ref = core.bptt(model, x, y, loss=loss, loss_on=loss_on, truncate=window)
    res = core.windowed_bptt(model, x, y, loss=loss, loss_on=loss_on, window=window)
    assert res.loss == pytest.approx(ref.loss, rel=1e-12)
    assert_grads_equal(res.grads, ref.grads, rtol=1e-12)
    B = x.shape[1]
    assert res.memory_bytes == ck.window_memory_model(model.config, T, B, window)
    assert res.memory_bytes <= ref.memory_bytes


def test_windowed_bptt_names_a_bad_window(rng):
    model = core.build("rnn", input_size=2, hidden_size=3)
    with pytest.raises(ValueError, match="window"):
        core.windowed_bptt(model, rng.standard_normal((5, 1, 2)), rng.standard_normal((5, 1, 1)), window=0)


def test_work_models_count_the_recomputed_steps():
    cfg = core.build("lstm", input_size=2, hidden_size=8, output_size=1).config
    step = ck.step_work(cfg, 4)
    assert step == 4 * (4 * 8 * (2 + 8) + 8)
    assert ck.work_model(cfg, 100, 4, "bptt") == 300 * step
    assert ck.work_model(cfg, 100, 4, "sqrt") == 400 * step
    assert ck.work_model(cfg, 100, 4, "budget", 4) == (300 + ck.recomputed_steps(100, 3)) * step
    from core.rtrl import flops_model
    assert ck.work_model(cfg, 100, 4, "rtrl") == flops_model(cfg, 100, 4)
    with pytest.raises(ValueError, match="method"):
        ck.work_model(cfg, 100, 4, "magic")
