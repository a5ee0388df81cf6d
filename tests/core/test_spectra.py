"""core.spectral, core.steplin and core.connectivity against finite differences in float64 and analytic
cases; edge cases and bad input of every Jacobian function (non-finite data, float32, lags and layers)."""
import numpy as np
import pytest

import core
from tests.core.jacobian_reference import (CASES, EPS, IDS, H, I, O, T, fd_state_jacobian, layer_inputs,
                                         make_case, outputs, relu_identity, states)


# ----------------------------------------------------------------------------- spectra
@pytest.mark.parametrize("arch_nl,layers", CASES, ids=IDS)
def test_step_singular_values_match_finite_difference_svd(rng, arch_nl, layers):
    model, x = make_case(rng, *arch_nl, layers)
    sv = core.step_jacobian_singular_values(model, x, batch_index=1)
    n = 2 * H if arch_nl[0] == "lstm" else H
    assert sv.shape == (layers, T, n)
    inputs, _ = layer_inputs(model, x)
    for l in range(layers):
        s = states(model, l, inputs[l])
        s_prev = np.concatenate([np.zeros((1, *s.shape[1:])), s[:-1]])  # s_{-1} = 0
        for t in range(T):
            jac = fd_state_jacobian(model, l, inputs[l], s_prev[t], t - 1, t)[1]
            np.testing.assert_allclose(sv[l, t], np.linalg.svd(jac, compute_uv=False), rtol=1e-6, atol=1e-9)
    assert np.all(np.diff(sv, axis=2) <= 0)


@pytest.mark.parametrize("arch_nl,layers", CASES, ids=IDS)
def test_weight_singular_values_and_gamma(arch_nl, layers):
    model = core.build(arch_nl[0], input_size=I, hidden_size=H, num_layers=layers,
                       nonlinearity=arch_nl[1], init="orthogonal", scale=1.5)
    sv = core.weight_singular_values(model)
    assert sv.shape == (layers, H)
    for l in range(layers):
        np.testing.assert_allclose(sv[l], np.linalg.svd(model.params[f"weight_hh_l{l}"], compute_uv=False), rtol=1e-12)
    # each gate block is 1.5 * orthogonal, so the stacked (G H, H) matrix has all sv = 1.5 sqrt(G)
    np.testing.assert_allclose(sv, 1.5 * np.sqrt(model.config.gates), rtol=1e-12)
    assert core.gamma_bound(model) == 1.0


# ----------------------------------------------------------------------------- connectivity
@pytest.mark.parametrize("arch_nl,layers", CASES, ids=IDS)
def test_connectivity_matches_finite_differences(rng, arch_nl, layers):
    model, x = make_case(rng, *arch_nl, layers)
    b = 1
    C = core.connectivity(model, x, batch_index=b)
    assert C.shape == (T, T)
    numeric = np.zeros((T, T, O, I))  # [t, s]: d y_t / d x_s
    for s_, i in np.ndindex(T, I):
        d = np.zeros_like(x)
        d[s_, b, i] = EPS
        numeric[:, s_, :, i] = (outputs(model, x + d)[:, b] - outputs(model, x - d)[:, b]) / (2 * EPS)
    lower = np.tril(np.ones((T, T), bool))
    np.testing.assert_allclose(C[lower], np.linalg.norm(numeric, axis=(2, 3))[lower], rtol=1e-6, atol=1e-10)
    assert np.all(np.isnan(C[~lower]))
    assert np.all(np.abs(numeric[~lower]) < 1e-12)  # the output does not depend on future inputs


@pytest.mark.parametrize("arch_nl,layers", CASES, ids=IDS)
def test_connectivity_of_chosen_outputs_equals_those_rows(rng, arch_nl, layers):
    model, x = make_case(rng, *arch_nl, layers, T=12)
    full = core.connectivity(model, x, batch_index=1)
    for rows in ([0, 5, 11], [3], [11], [2, 3, 4, 9]):
        np.testing.assert_allclose(core.connectivity(model, x, batch_index=1, outputs=rows), full[rows],
                                   rtol=1e-12, atol=0)


@pytest.mark.parametrize("outputs", [[], [3, 3], [4, 2], [-1], [12], [1.5], "3", [[1]]])
def test_bad_connectivity_outputs_raise_value_error_naming_them(rng, outputs):
    model, x = make_case(rng, "rnn", "tanh", 1, T=12)
    with pytest.raises(ValueError, match="outputs must be"):
        core.connectivity(model, x, outputs=outputs)


def test_connectivity_of_linear_rnn_is_exact_down_to_1e_minus_300():
    model, x = relu_identity(0.01, layers=1, T=150)
    C = core.connectivity(model, x)
    base = np.linalg.norm(model.params["readout.weight"] @ model.params["weight_ih_l0"])
    lag = np.subtract.outer(np.arange(150), np.arange(150))
    lower = lag >= 0
    np.testing.assert_allclose(C[lower], base * 0.01 ** lag[lower], rtol=1e-10)


# ----------------------------------------------------------------------------- edge cases
FUNCS = {
    "jacobian_norms": lambda m, x: core.jacobian_norms(m, x),
    "step_jacobian_singular_values": lambda m, x: core.step_jacobian_singular_values(m, x),
    "gate_products": lambda m, x: core.gate_products(m, x),
    "connectivity": lambda m, x: core.connectivity(m, x),
}


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("arch,init,scale", [("rnn-relu", "identity", 10.0), ("rnn-tanh", "normal", 1e3),
                                             ("lstm", "orthogonal", 1e3), ("gru", "orthogonal", 1e3)])
def test_exploding_weights_give_nonfinite_data_not_errors(rng, name, arch, init, scale):
    model = core.build(arch, input_size=I, hidden_size=H, output_size=O, init=init, scale=scale)
    x = 100 * np.abs(rng.standard_normal((400, 2, I)))
    out = FUNCS[name](model, x)  # pytest turns any numpy RuntimeWarning into an error
    assert out.dtype == np.float64
    assert not np.any(out < 0)
    if name in ("jacobian_norms", "gate_products"):
        assert np.all(out[:, -1] == 1.0)


def test_exploding_relu_states_give_inf_and_nan(rng):
    model = core.build("rnn-relu", input_size=I, hidden_size=H, output_size=O, init="identity", scale=10.0)
    x = np.abs(rng.standard_normal((400, 2, I)))
    assert not np.all(np.isfinite(core.connectivity(model, x)[np.tril_indices(400)]))
    for func in (core.jacobian_norms, core.gate_products):  # NaN states: NaN, not a vanished 0
        out = func(model, x)[0]
        assert np.all(np.isnan(out[:-1])) and np.all(out[-1] == 1.0)


@pytest.mark.parametrize("name", list(FUNCS))
def test_single_step_and_float32_models(rng, name):
    model = core.build("lstm", input_size=I, hidden_size=H, output_size=O, num_layers=2, dtype=np.float32)
    x = rng.standard_normal((1, 3, I)).astype(np.float32)
    out = FUNCS[name](model, x)
    assert out.dtype == np.float64 and np.all(np.isfinite(out))
    shapes = {"jacobian_norms": (2, 1, 3), "gate_products": (2, 1, 3), "connectivity": (1, 1),
              "step_jacobian_singular_values": (2, 1, 2 * H)}
    assert out.shape == shapes[name]
    x = rng.standard_normal((12, 3, I))
    ref = FUNCS[name](model.astype(np.float64), x)
    np.testing.assert_allclose(FUNCS[name](model, x.astype(np.float32)), ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("x,match", [
    (np.zeros((5, 2)), "x must have shape"),
    (np.zeros((5, 2, I + 1)), "x must have shape"),
    (np.zeros((0, 2, I)), "x must have shape"),
    (np.zeros((5, 2, I), bool), "x must hold real numbers"),
    (np.full((5, 2, I), np.nan), "x contains NaN"),
    (np.array([["a"]]), "x must hold real numbers"),
])
def test_bad_x_raises_value_error_naming_x(name, x, match):
    model = core.RNN(I, H)
    with pytest.raises(ValueError, match=match):
        FUNCS[name](model, x)


@pytest.mark.parametrize("func", [core.jacobian_norms, core.step_jacobian_singular_values, core.gate_products,
                                  core.connectivity])
def test_bad_model_raises_value_error_naming_model(func):
    with pytest.raises(ValueError, match="model must be"):
        func("lstm", np.zeros((3, 1, I)))


@pytest.mark.parametrize("func", [core.weight_singular_values, core.gamma_bound])
def test_bad_model_raises_for_weight_functions(func):
    with pytest.raises(ValueError, match="model must be"):
        func(None)


@pytest.mark.parametrize("func", [core.step_jacobian_singular_values, core.connectivity])
@pytest.mark.parametrize("batch_index", [-1, 2, 1.0, True, "0", None])
def test_bad_batch_index_raises_value_error_naming_it(func, batch_index):
    model = core.GRU(I, H)
    with pytest.raises(ValueError, match="batch_index must be"):
        func(model, np.zeros((3, 2, I)), batch_index=batch_index)


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_step_singular_values_on_chosen_steps_equal_the_full_rows(arch):
    m = core.build(arch, input_size=2, hidden_size=5, output_size=1, num_layers=2, seed=3)
    x = np.random.default_rng(3).standard_normal((20, 2, 2))
    full = core.step_jacobian_singular_values(m, x, batch_index=1)
    some = core.step_jacobian_singular_values(m, x, batch_index=1, steps=[0, 7, 19])
    np.testing.assert_array_equal(some, full[:, [0, 7, 19]])
    for bad in ([], [3, 3], [5, 2], [-1], [20], [1.5], "all"):
        with pytest.raises(ValueError, match="steps"):
            core.step_jacobian_singular_values(m, x, steps=bad)


@pytest.mark.parametrize("arch_nl,layers", CASES, ids=IDS)
def test_lags_and_layers_compute_exactly_that_part(rng, arch_nl, layers):
    """Products of at most K step Jacobians, of chosen layers: the same numbers as the full
    computation there, NaN elsewhere (the views use this to bound their work)."""
    model, x = make_case(rng, *arch_nl, layers, T=12)
    for fn in (core.jacobian_norms, core.gate_products):
        full = fn(model, x)
        for K, chosen in ((0, None), (3, None), (11, [layers - 1]), (50, [0])):
            part = fn(model, x, lags=K, layers=chosen)
            rows = range(layers) if chosen is None else chosen
            start = max(0, 12 - 1 - K)
            for l in range(layers):
                if l in rows:
                    np.testing.assert_allclose(part[l, start:], full[l, start:], rtol=1e-12, atol=0)
                    assert np.all(np.isnan(part[l, :start]))
                else:
                    assert np.all(np.isnan(part[l]))
    full = core.connectivity(model, x, batch_index=1)
    for K, rows in ((0, None), (4, [5, 9, 11]), (30, [2, 11])):
        part = core.connectivity(model, x, batch_index=1, outputs=rows, lags=K)
        ref = full if rows is None else full[rows]
        start = max(0, 12 - 1 - K)
        np.testing.assert_allclose(part[:, start:], ref[:, start:], rtol=1e-12, atol=0)
        assert np.all(np.isnan(part[:, :start]))
    top = core.weight_singular_values(model, layers=[layers - 1])
    np.testing.assert_allclose(top[-1], core.weight_singular_values(model)[-1], rtol=1e-12, atol=0)
    assert np.all(np.isnan(top[:-1]))
    full = core.step_jacobian_singular_values(model, x, batch_index=1)
    top = core.step_jacobian_singular_values(model, x, batch_index=1, layers=[layers - 1])
    np.testing.assert_allclose(top[-1], full[-1], rtol=1e-12, atol=0)
    assert np.all(np.isnan(top[:-1]))


@pytest.mark.parametrize("kwargs, match", [({"lags": -1}, "lags"), ({"lags": 1.5}, "lags"), ({"lags": True}, "lags"),
                                           ({"layers": [2]}, "layers"), ({"layers": []}, "layers"),
                                           ({"layers": "x"}, "layers")])
def test_bad_lags_and_layers_raise_value_error_naming_them(rng, kwargs, match):
    model, x = make_case(rng, "rnn", "tanh", 2, T=5)
    for fn in (core.jacobian_norms, core.gate_products):
        with pytest.raises(ValueError, match=match):
            fn(model, x, **kwargs)
