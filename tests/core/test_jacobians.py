"""core.jacobians, core.spectral, core.steplin and core.connectivity against finite differences in float64,
analytic cases and edge cases."""
import itertools

import numpy as np
import pytest

import core
from core import cells, spectral

ARCHS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
CASES = list(itertools.product(ARCHS, [1, 2]))
IDS = [f"{a}-{nl}-L{l}" for (a, nl), l in CASES]
T, B, I, H, O = 7, 2, 3, 4, 2
EPS = 1e-6


def make_case(rng, arch, nonlinearity, layers, T=T, B=B, H=H, **kw):
    model = core.build(arch, input_size=I, hidden_size=H, output_size=O, num_layers=layers,
                       nonlinearity=nonlinearity, seed=int(rng.integers(1000)), **kw)
    if nonlinearity == "relu":  # keep relu units away from their kink and the state bounded
        for k, v in model.params.items():
            model.params[k] = v * 0.8
    return model, rng.standard_normal((T, B, I))


# ----------------------------------------------------------------------------- reference
def layer_inputs(model, x):
    """Inputs of every layer (x, then the hidden states of the layer below), step by step."""
    cfg = model.config
    inputs, inp = [], x
    for l in range(cfg.num_layers):
        inputs.append(inp)
        h = c = np.zeros((x.shape[1], cfg.hidden_size))
        out = []
        for t in range(x.shape[0]):
            h, c = step(model, l, inp[t], h, c)
            out.append(h)
        inp = np.stack(out)
    return inputs, inp


def step(model, l, x_t, h, c):
    """One step of layer l: (h, c) -> (h', c') (c unused except for the LSTM)."""
    cfg, p = model.config, model.params
    a_x = x_t @ p[f"weight_ih_l{l}"].T + p[f"bias_ih_l{l}"]
    W_hh, b_hh = p[f"weight_hh_l{l}"], p[f"bias_hh_l{l}"]
    if cfg.arch == "rnn":
        return cells.rnn_step_forward(a_x, h, W_hh, b_hh, cfg.nonlinearity)[0], c
    if cfg.arch == "lstm":
        h, c, _ = cells.lstm_step_forward(a_x, h, c, W_hh, b_hh)
        return h, c
    return cells.gru_step_forward(a_x, h, W_hh, b_hh)[0], c


def states(model, l, inp):
    """States s_t (T, B, n) of layer l fed with inp: h, or [h; c] for the LSTM."""
    Hs = model.config.hidden_size
    h = c = np.zeros((inp.shape[1], Hs))
    out = []
    for t in range(inp.shape[0]):
        h, c = step(model, l, inp[t], h, c)
        out.append(np.concatenate([h, c], 1) if model.config.arch == "lstm" else h)
    return np.stack(out)


def run_from(model, l, inp, t0, s, t1):
    """State at step t1 of layer l when its state at step t0 is replaced by s (inputs fixed)."""
    Hs = model.config.hidden_size
    h, c = s[:, :Hs], s[:, Hs:] if model.config.arch == "lstm" else None
    for t in range(t0 + 1, t1 + 1):
        h, c = step(model, l, inp[t], h, c)
    return np.concatenate([h, c], 1) if model.config.arch == "lstm" else h


def fd_state_jacobian(model, l, inp, s_t0, t0, t1):
    """(B, n, n) central-difference d s_{t1} / d s_{t0}, each batch element separately."""
    n = s_t0.shape[1]
    jac = np.empty((s_t0.shape[0], n, n))
    for j in range(n):
        d = np.zeros_like(s_t0)
        d[:, j] = EPS
        plus, minus = run_from(model, l, inp, t0, s_t0 + d, t1), run_from(model, l, inp, t0, s_t0 - d, t1)
        jac[:, :, j] = (plus - minus) / (2 * EPS)
    return jac


def outputs(model, x):
    _, top = layer_inputs(model, x)
    return top @ model.params["readout.weight"].T + model.params["readout.bias"]


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


def relu_identity(a, Hs=6, layers=1, T=40, seed=0):
    """relu RNN with W_hh = a I, positive input weights and inputs: every unit active."""
    model = core.build("rnn-relu", input_size=I, hidden_size=Hs, output_size=O, num_layers=layers,
                       init="identity", scale=a, seed=seed)
    for l in range(layers):
        model.params[f"weight_ih_l{l}"] = np.abs(model.params[f"weight_ih_l{l}"]) + 0.1
    x = np.random.default_rng(seed).uniform(0.5, 1.0, (T, 2, I))
    return model, x


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
