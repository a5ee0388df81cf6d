"""core.rtrl against core.bptt and central finite differences in float64."""
import itertools

import numpy as np
import pytest

import core
from core.rtrl import memory_model
from tests.core import reference
from tests.core.test_bptt import ARCHS, EPS, assert_close, boundary_states, make_case

CASES = list(itertools.product(ARCHS, [1, 2], ["mse", "cross_entropy"], ["all", "last"], [None, 2]))
IDS = [f"{a[0]}-{a[1]}-L{l}-{lo}-{on}-trunc{tr}" for a, l, lo, on, tr in CASES]


def assert_grads_equal(a, b, rtol=1e-10):
    """Every gradient of a within rtol (relative to its largest entry) of b."""
    assert set(a) == set(b)
    for k in a:
        scale = max(np.max(np.abs(a[k])), 1e-300)
        assert np.max(np.abs(a[k] - b[k])) / scale < rtol, k


@pytest.mark.parametrize("arch_nl,layers,loss,loss_on,truncate", CASES, ids=IDS)
def test_rtrl_equals_bptt(arch_nl, layers, loss, loss_on, truncate):
    model, x, y = make_case(*arch_nl, layers, loss, loss_on)
    ref = core.bptt(model, x, y, loss=loss, loss_on=loss_on, truncate=truncate)
    res = core.rtrl(model, x, y, loss=loss, loss_on=loss_on, truncate=truncate)
    assert res.loss == pytest.approx(ref.loss, rel=1e-12)
    assert_grads_equal(res.grads, ref.grads)


@pytest.mark.parametrize("arch_nl", ARCHS, ids=[f"{a}-{n}" for a, n in ARCHS])
@pytest.mark.parametrize("layers,truncate", [(1, None), (1, 2), (2, None)])
def test_rtrl_matches_finite_differences(arch_nl, layers, truncate):
    model, x, y = make_case(*arch_nl, layers, "mse", "all")
    res = core.rtrl(model, x, y, truncate=truncate)
    bnd = boundary_states(model, x, y, "mse", "all", truncate)
    for name, param in model.params.items():
        numeric = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            old = param[idx]
            param[idx] = old + EPS
            lp, _ = reference.run(model, x, y, "mse", "all", truncate, boundary=bnd)
            param[idx] = old - EPS
            lm, _ = reference.run(model, x, y, "mse", "all", truncate, boundary=bnd)
            param[idx] = old
            numeric[idx] = (lp - lm) / (2 * EPS)
        assert_close(res.grads[name], numeric)


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_rtrl_memory_is_its_model_and_independent_of_T(arch, layers, rng):
    model = core.build(arch, input_size=2, hidden_size=5, output_size=1, num_layers=layers)
    sizes = []
    for T in (3, 30):
        x = rng.standard_normal((T, 4, 2))
        res = core.rtrl(model, x, rng.standard_normal((T, 4, 1)))
        assert res.memory_bytes == memory_model(model.config, 4)
        sizes.append(res.memory_bytes)
    assert sizes[0] == sizes[1]
    n = 10 if arch == "lstm" else 5
    assert res.state_size == n
    G = model.config.gates
    P = [G * 5 * (2 + 5 + 2), G * 5 * (5 + 5 + 2)][:layers]
    assert res.recurrent_params == sum(P)
    # two buffers of every layer's (B, n, P_m) sensitivities to its own and lower layers' parameters dominate
    assert res.memory_bytes >= 2 * 4 * n * 8 * sum(sum(P[: l + 1]) for l in range(layers))


def test_rtrl_validates_like_bptt(rng):
    model = core.build("rnn", input_size=2, hidden_size=3)
    with pytest.raises(ValueError, match="truncate"):
        core.rtrl(model, rng.standard_normal((4, 1, 2)), rng.standard_normal((4, 1, 1)), truncate=0)
    with pytest.raises(ValueError, match="x must have shape"):
        core.rtrl(model, rng.standard_normal((4, 1, 3)), rng.standard_normal((4, 1, 1)))


def test_rtrl_reports_exploding_state_as_data(rng):
    model = core.build("rnn", input_size=1, hidden_size=3, nonlinearity="relu", init="identity", scale=1e3)
    x = np.full((150, 1, 1), 1e3)
    res = core.rtrl(model, x, np.zeros((150, 1, 1)))
    assert res.nonfinite_step is not None
    assert not np.isfinite(res.loss)
