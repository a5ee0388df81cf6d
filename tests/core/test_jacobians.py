"""core.jacobians: norms of products of step Jacobians and gate products, against finite differences in
float64 and analytic cases (vanishing, exploding, compressed long products, saturated gates)."""
import numpy as np
import pytest

import core
from core import spectral
from tests.core.jacobian_reference import (CASES, IDS, B, H, I, O, T, fd_state_jacobian, layer_inputs,
                                         make_case, relu_identity, states)


# ----------------------------------------------------------------------------- jacobian_norms
@pytest.mark.parametrize("arch_nl,layers", CASES, ids=IDS)
def test_jacobian_norms_match_finite_differences(rng, arch_nl, layers):
    model, x = make_case(rng, *arch_nl, layers)
    J = core.jacobian_norms(model, x)
    assert J.shape == (layers, T, B) and J.dtype == np.float64
    inputs, _ = layer_inputs(model, x)
    for l in range(layers):
        s = states(model, l, inputs[l])
        for t in range(T):
            if t == T - 1:
                np.testing.assert_array_equal(J[l, t], 1.0)
                continue
            ref = np.linalg.svd(fd_state_jacobian(model, l, inputs[l], s[t], t, T - 1), compute_uv=False)[:, 0]
            np.testing.assert_allclose(J[l, t], ref, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("arch,init", [("rnn-tanh", "orthogonal"), ("rnn-tanh", "pytorch"),
                                       ("lstm", "orthogonal"), ("gru", "orthogonal")])
def test_jacobian_norms_match_svd_of_long_products(rng, arch, init):
    """Hard spectra (orthogonal W: singular values clustered near 1) at a larger size."""
    Hb, Tb = 24, 60
    model = core.build(arch, input_size=I, hidden_size=Hb, output_size=1, init=init, seed=3)
    x = rng.standard_normal((Tb, 2, I))
    J = core.jacobian_norms(model, x)
    inp = x
    s = states(model, 0, inp)
    P = np.repeat(np.eye(s.shape[2])[None], 2, axis=0)
    for t in range(Tb - 2, -1, -1):
        P = P @ fd_state_jacobian(model, 0, inp, s[t], t, t + 1)
        ref = np.linalg.svd(P, compute_uv=False)[:, 0]
        np.testing.assert_allclose(J[0, t], ref, rtol=1e-6)


def test_jacobian_norms_of_a_long_vanishing_product_keep_their_scale(rng):
    """T = 300 LSTM: norms far below 1e-100 whose subdominant directions get dropped (2^-500)."""
    Hb, Tb = 8, 300
    model = core.LSTM(I, Hb, 1, seed=5)
    x = rng.standard_normal((Tb, 1, I))
    J = core.jacobian_norms(model, x)[0, :, 0]
    s = states(model, 0, x)
    P, log_scale = np.eye(2 * Hb), 0.0
    for t in range(Tb - 2, -1, -1):
        P = P @ fd_state_jacobian(model, 0, x, s[t], t, t + 1)[0]
        m = np.abs(P).max()
        P, log_scale = P / m, log_scale + np.log(m)
        log_ref = log_scale + np.log(np.linalg.svd(P, compute_uv=False)[0])
        assert np.log(J[t]) == pytest.approx(log_ref, abs=1e-6)
    assert J[0] < 1e-50


def log_norms_of_products(step_jacobians):
    """log ||A_{T-1} ... A_{t+1}||_2 for t = T-2 .. 0 by explicit renormalised products and SVDs."""
    P, log_scale, out = np.eye(step_jacobians[-1].shape[0]), 0.0, {}
    for t in range(len(step_jacobians) - 2, -1, -1):
        P = P @ step_jacobians[t + 1]
        m = np.abs(P).max()
        P, log_scale = P / m, log_scale + np.log(m)
        out[t] = log_scale + np.log(np.linalg.svd(P, compute_uv=False)[0])
    return out


def test_identity_rnn_norms_follow_the_unit_that_overtakes():
    """IRNN: the step Jacobians diag(1 - h_t^2) are diagonal, so the warm-started power iteration
    sits in an invariant subspace; the row/column-norm check must catch a unit overtaking it
    (the estimate was up to 100x too small here before)."""
    model = core.build("rnn", input_size=1, hidden_size=64, output_size=1, init="identity", seed=0)
    x = np.random.default_rng(0).standard_normal((1000, 2, 1))
    J = core.jacobian_norms(model, x)[0]
    h = states(model, 0, x)  # (T, B, H)
    W = model.params["weight_hh_l0"]
    for b in range(2):
        ref = log_norms_of_products([(1.0 - h[t, b] ** 2)[:, None] * W for t in range(1000)])
        got = np.log(J[:-1, b])
        np.testing.assert_allclose(got, [ref[t] for t in range(999)], rtol=0, atol=1e-9)


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_compressed_products_keep_the_norms(rng, arch, monkeypatch):
    """Dropping the numerically null directions of the running product (every 8 steps here)
    gives the same norms as the explicit product, and does drop rows."""
    model = core.build(arch, input_size=I, hidden_size=10, output_size=1, seed=4)
    x = rng.standard_normal((160, 1, I))
    s = states(model, 0, x)
    ref = log_norms_of_products([fd_state_jacobian(model, 0, x, s[t - 1], t - 1, t)[0] if t else None
                                 for t in range(160)])
    kept = []
    compress = spectral._compress
    monkeypatch.setattr(spectral, "_COMPRESS_EVERY", 8)
    monkeypatch.setattr(spectral, "_SUBSPACE", 4)  # products wider than 4 rows may be compressed
    monkeypatch.setattr(spectral, "_compress", lambda P, U: kept.append(compress(P, U)) or kept[-1])
    J = core.jacobian_norms(model, x)[0, :, 0]
    assert min(k[0].shape[1] for k in kept if k is not None) < model.config.hidden_size  # rows went
    np.testing.assert_allclose(np.log(J[:-1]), [ref[t] for t in range(159)], rtol=0, atol=1e-6)


def test_compression_restarts_when_the_dropped_part_grows(monkeypatch):
    """A diagonal RNN whose unit 1 is saturated in the last 16 steps (its share of the product is
    ~1e-32 there, below 2^-53: compression drops it) and unit 0 in all steps before: going back,
    unit 0 decays 100x per step and unit 1 overtakes it. The probes of the dropped part must see
    it grow, and the product is redone without compression, so the norms stay exact."""
    model = core.build("rnn", input_size=2, hidden_size=6, output_size=1, seed=0)
    p = model.params
    p["weight_hh_l0"][:] = np.diag([1.0, 1.0, 0.01, 0.01, 0.01, 0.01])
    p["weight_ih_l0"][:] = 0.0
    p["weight_ih_l0"][0, 0] = p["weight_ih_l0"][1, 1] = 3.0
    p["bias_ih_l0"][:] = p["bias_hh_l0"][:] = 0.0
    x = np.zeros((200, 1, 2))
    x[:184, 0, 0] = x[184:, 0, 1] = 1.0
    d = (1.0 - states(model, 0, x)[:, 0] ** 2) * np.diag(p["weight_hh_l0"])  # (T, H) diagonal Jacobians
    log_ref = np.array([np.max(np.sum(np.log(d[t + 1:]), axis=0)) for t in range(199)])
    calls = []
    compress = spectral._compress
    monkeypatch.setattr(spectral, "_COMPRESS_EVERY", 16)
    monkeypatch.setattr(spectral, "_SUBSPACE", 4)
    monkeypatch.setattr(spectral, "_compress", lambda P, U: calls.append(compress(P, U)) or calls[-1])
    J = core.jacobian_norms(model, x)[0, :, 0]
    assert calls[0] is not None and calls[0][0].shape[1] == 1  # only unit 0 kept at lag 16
    assert log_ref[0] - np.sum(np.log(d[1:, 0])) > 100  # unit 1 overtook unit 0 by > e^100
    np.testing.assert_allclose(np.log(J[:-1]), log_ref, rtol=0, atol=1e-9)


def test_block_power_iteration_falls_back_to_an_exact_eigensolve(rng, monkeypatch):
    model, x = make_case(rng, "gru", "tanh", 1, T=30, H=40)
    J = core.jacobian_norms(model, x)
    monkeypatch.setattr(spectral, "_MAXIT", 1)  # nearly every step takes the full-SVD path
    np.testing.assert_allclose(core.jacobian_norms(model, x), J, rtol=1e-7)


@pytest.mark.parametrize("a,T_", [(0.9, 40), (1.0, 40), (1.3, 40), (0.01, 150)])
@pytest.mark.parametrize("layers", [1, 2])
def test_linear_rnn_with_scaled_identity_gives_powers_exactly(a, T_, layers):
    model, x = relu_identity(a, layers=layers, T=T_)
    J = core.jacobian_norms(model, x)
    expected = a ** (T_ - 1 - np.arange(T_, dtype=float))  # 0.01**149 = 1e-298: no underflow
    np.testing.assert_allclose(J, np.broadcast_to(expected[None, :, None], J.shape), rtol=1e-12)


def test_diagonal_linear_rnn_gives_powers_of_the_largest_entry():
    """W_hh = diag(a): J = max(a)^k while the small directions decay through subnormal range."""
    model, x = relu_identity(1.0, T=200)
    a = np.array([0.9, 0.5, 1e-3, 1e-5, 0.89, 1e-8])
    model.params["weight_hh_l0"] = np.diag(a)
    J = core.jacobian_norms(model, x)[0]
    expected = 0.9 ** (199 - np.arange(200.0))
    np.testing.assert_allclose(J, np.broadcast_to(expected[:, None], J.shape), rtol=1e-12)


def test_underflow_gives_zero_and_overflow_gives_inf_as_data():
    model, x = relu_identity(1e-3, T=200)
    J = core.jacobian_norms(model, x)
    k = 199 - np.arange(200)
    exact = k <= 100  # 1e-300 and above are normal numbers: exact
    np.testing.assert_allclose(J[0, exact], (1e-3 ** k[exact])[:, None] * np.ones(2), rtol=1e-12)
    assert np.all(J[0, ~exact] <= 1.01e-303) and np.any(J[0, ~exact] == 0) and np.all(J[0, ~exact] >= 0)
    # one unit, W_hh = 10: states overflow to inf (stay active), norms 10^k overflow at k > 308
    model, x = relu_identity(10.0, Hs=1, T=400)
    J = core.jacobian_norms(model, x)[0, :, 0]
    k = 399 - np.arange(400)
    assert np.all(np.isinf(J[k > 308]))
    np.testing.assert_allclose(J[k <= 308], 10.0 ** k[k <= 308], rtol=1e-12)


def test_saturated_lstm_forget_gate_carries_cell_gradient_unchanged(rng):
    model = core.LSTM(I, H, O, forget_bias=50.0, seed=1)
    model.params["bias_ih_l0"][:H] = -50.0  # input gate ~ 0 (e^-50)
    x = rng.standard_normal((T, B, I))
    s = states(model, 0, x)
    for t in range(T - 1):
        jac = fd_state_jacobian(model, 0, x, s[t], t, T - 1)  # (B, 2H, 2H), blocks [h; c]
        np.testing.assert_allclose(jac[:, H:, H:], np.broadcast_to(np.eye(H), (B, H, H)), atol=1e-9)
        np.testing.assert_allclose(jac[:, H:, :H], 0.0, atol=1e-9)
    J = core.jacobian_norms(model, x)
    assert np.all(J >= 1.0 - 1e-12)
    np.testing.assert_allclose(core.gate_products(model, x), 1.0, atol=1e-12)


# ----------------------------------------------------------------------------- gate products
@pytest.mark.parametrize("arch_nl,layers", CASES, ids=IDS)
def test_gate_products_match_direct_computation(rng, arch_nl, layers):
    model, x = make_case(rng, *arch_nl, layers)
    G = core.gate_products(model, x)
    assert G.shape == (layers, T, B)
    inputs, _ = layer_inputs(model, x)
    p = model.params
    for l in range(layers):
        W_hh, b_hh = p[f"weight_hh_l{l}"], p[f"bias_hh_l{l}"]
        a_x = inputs[l] @ p[f"weight_ih_l{l}"].T + p[f"bias_ih_l{l}"]
        hs = states(model, l, inputs[l])[:, :, :H]
        h_prev = np.concatenate([np.zeros((1, B, H)), hs[:-1]])
        a = a_x + h_prev @ W_hh.T + b_hh  # (T, B, G H) pre-activations
        if arch_nl[0] == "rnn":
            dphi = 1 - hs**2 if arch_nl[1] == "tanh" else (hs > 0).astype(float)
            per_step = np.array([[np.linalg.norm(dphi[s, b][:, None] * W_hh, 2) for b in range(B)] for s in range(T)])
        else:
            block = slice(H, 2 * H)  # LSTM forget gate f, GRU carry gate z
            per_unit = 1 / (1 + np.exp(-a[:, :, block]))
        for t in range(T):
            if arch_nl[0] == "rnn":
                expected = np.prod(per_step[t + 1:], axis=0)
            else:
                expected = np.mean(np.prod(per_unit[t + 1:], axis=0), axis=1)
            np.testing.assert_allclose(G[l, t], expected, rtol=1e-10)
