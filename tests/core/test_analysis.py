"""The measurements explanations quote, each against an independent float64 computation."""
import numpy as np
import pytest

import core


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _states_and_gates(model, x):
    """An independent forward pass (plain formulas, not core.cells): per layer the (T, B, H)
    states and the (T, B, G*H) sigmoid/tanh gate values in PyTorch's order."""
    cfg, p = model.config, {k: np.asarray(v, float) for k, v in model.params.items()}
    T, B, _ = x.shape
    H = cfg.hidden_size
    inp, out = np.asarray(x, float), []
    for l in range(cfg.num_layers):
        W_ih, W_hh, b_ih, b_hh = (p[f"{n}_l{l}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        h, c = np.zeros((B, H)), np.zeros((B, H))
        hs, gs = [], []
        for t in range(T):
            gx, gh = inp[t] @ W_ih.T + b_ih, h @ W_hh.T + b_hh
            if cfg.arch == "rnn":
                a = gx + gh
                h = np.tanh(a) if cfg.nonlinearity == "tanh" else np.maximum(a, 0.0)
                g = a
            elif cfg.arch == "lstm":
                a = gx + gh
                i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 3 * H:])
                gg = np.tanh(a[:, 2 * H:3 * H])
                c = f * c + i * gg
                h = o * np.tanh(c)
                g = np.concatenate([i, f, gg, o], axis=1)
            else:
                r, z = _sigmoid(gx[:, :H] + gh[:, :H]), _sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
                n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
                h = (1 - z) * n + z * h
                g = np.concatenate([r, z, n], axis=1)
            hs.append(h)
            gs.append(g)
        out.append((np.stack(hs), np.stack(gs)))
        inp = np.stack(hs)
    return out


def _model(arch, rng_seed=0, **kw):
    nl = "relu" if arch == "rnn-relu" else "tanh"
    return core.build("rnn" if arch.startswith("rnn") else arch, input_size=3, hidden_size=kw.pop("hidden", 7),
                      output_size=2, seed=rng_seed, nonlinearity=nl, **kw)


@pytest.mark.parametrize("init,scale", [("pytorch", 1.0), ("orthogonal", 2.5), ("normal", 0.7)])
def test_spectral_radius_is_the_growth_rate_of_powers(init, scale):
    model = _model("rnn", init=init, scale=scale, num_layers=2)
    rho = core.spectral_radius(model)
    assert rho.shape == (2,)
    for l in range(2):
        W = np.asarray(model.params[f"weight_hh_l{l}"], float)
        # Gelfand: ||W^k||^(1/k) -> rho; with k = 2^12 by repeated squaring (rescaled each time)
        M, log_scale = W.copy(), 0.0
        for _ in range(12):
            s = np.linalg.norm(M, 2)
            M, log_scale = (M / s) @ (M / s), 2 * (log_scale + np.log(s))
        gelfand = np.exp((log_scale + np.log(np.linalg.norm(M, 2))) / 2 ** 12)
        assert rho[l] == pytest.approx(gelfand, rel=2e-3)
        assert rho[l] <= core.top_singular_value(model)[l] * (1 + 1e-12)
    if init == "orthogonal":
        assert rho == pytest.approx(2.5, rel=1e-12)


def test_top_singular_value_matches_the_weight_spectrum():
    for arch in ("rnn", "lstm", "gru"):
        model = _model(arch, num_layers=2)
        np.testing.assert_allclose(core.top_singular_value(model), core.weight_singular_values(model)[:, 0],
                                   rtol=1e-12)


def test_chosen_layers_only_are_computed_and_equal_the_full_results():
    for arch in ("rnn", "lstm", "gru"):
        model = _model(arch, num_layers=3)
        full = core.top_singular_value(model)
        top = core.top_singular_value(model, layers=[2])
        np.testing.assert_allclose(top[2], full[2], rtol=1e-12)
        assert np.isnan(top[:2]).all()
    model = _model("rnn", num_layers=3)
    rho, top = core.spectral_radius(model), core.spectral_radius(model, layers=[0, 2])
    np.testing.assert_allclose(top[[0, 2]], rho[[0, 2]], rtol=1e-12)
    assert np.isnan(top[1])
    with pytest.raises(ValueError, match="layer"):
        core.spectral_radius(model, layers=[3])


def test_spectral_radius_and_mean_derivative_refuse_gated_cells():
    x = np.zeros((4, 2, 3))
    for arch in ("lstm", "gru"):
        with pytest.raises(ValueError, match="plain RNN"):
            core.spectral_radius(_model(arch))
        with pytest.raises(ValueError, match="plain RNN"):
            core.activation_derivative_mean(_model(arch), x)
    with pytest.raises(ValueError, match="LSTM or GRU"):
        core.gate_saturation(_model("rnn"), x)


@pytest.mark.parametrize("arch", ["rnn", "rnn-relu"])
def test_mean_activation_derivative_matches_an_independent_forward_pass(arch, rng):
    model = _model(arch, num_layers=2, init="normal", scale=1.3)
    x = rng.standard_normal((20, 5, 3))
    got = core.activation_derivative_mean(model, x)
    for l, (h, a) in enumerate(_states_and_gates(model, x)):
        want = np.mean(1 - h[1:] ** 2) if arch == "rnn" else np.mean(a[1:] > 0)
        assert got[l] == pytest.approx(want, rel=1e-12)


def test_rate_per_step_recovers_a_geometric_curve_and_skips_what_a_log_cannot_hold():
    k = np.arange(60)
    assert core.rate_per_step(3.0 * 0.57 ** k) == pytest.approx(0.57, rel=1e-12)
    assert core.rate_per_step(1e-3 * 1.265 ** k) == pytest.approx(1.265, rel=1e-12)
    y = 0.8 ** k
    y[40:] = 0.0  # underflowed: left out, not read as log 0
    y[5] = np.inf
    y[6] = np.nan
    assert core.rate_per_step(y) == pytest.approx(0.8, rel=1e-12)
    # a least-squares fit, not the end points: noise around the line averages out
    noisy = 0.6 ** k * np.exp(np.random.default_rng(1).normal(0, 0.05, k.size))
    assert core.rate_per_step(noisy) == pytest.approx(0.6, rel=5e-3)
    assert np.isnan(core.rate_per_step([1.0])) and np.isnan(core.rate_per_step([0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="one curve"):
        core.rate_per_step(np.ones((2, 3)))


def test_lyapunov_exponent_of_a_jacobian_product(rng):
    model = _model("rnn", hidden=6, init="normal", scale=0.9)
    x = rng.standard_normal((40, 1, 3))
    by_lag = core.jacobian_norms(model, x)[-1, ::-1, 0]  # lag k = 0 .. T-1
    # the same product formed directly, J_{T-1} ... J_{T-k}, with J_t = diag(1 - h_t^2) W_hh
    (h, _), = _states_and_gates(model, x)
    W = np.asarray(model.params["weight_hh_l0"], float)
    P, T = np.eye(6), x.shape[0]
    for k in range(1, 30):
        P = P @ ((1 - h[T - k, 0] ** 2)[:, None] * W)
        assert core.lyapunov_exponent(by_lag, k) == pytest.approx(np.log(np.linalg.norm(P, 2)) / k, rel=1e-7)
    assert core.lyapunov_exponent(by_lag) == pytest.approx(np.log(by_lag[-1]) / (T - 1), rel=1e-12)
    tail = by_lag.copy()
    tail[30:] = 0.0  # underflow: the default lag is the last positive one
    assert core.lyapunov_exponent(tail) == pytest.approx(np.log(by_lag[29]) / 29, rel=1e-12)
    assert np.isnan(core.lyapunov_exponent(np.array([1.0, 0.0])))
    with pytest.raises(ValueError, match="k must be"):
        core.lyapunov_exponent(by_lag, 0)


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_gate_saturation_matches_an_independent_forward_pass(arch, rng):
    model = _model(arch, num_layers=2, init="orthogonal", scale=2.5)
    x = 3.0 * rng.standard_normal((30, 4, 3))
    stats = core.gate_saturation(model, x, low=0.1, high=0.9)
    H = model.config.hidden_size
    blocks = {"i": 0, "f": 1, "o": 3} if arch == "lstm" else {"r": 0, "z": 1}
    assert stats.names == tuple(blocks)
    for l, (_, g) in enumerate(_states_and_gates(model, x)):
        vals = [g[..., b * H:(b + 1) * H] for b in blocks.values()]
        sat = [(v < 0.1) | (v > 0.9) for v in vals]
        np.testing.assert_allclose(stats.fraction[l], [s.mean() for s in sat], rtol=1e-12)
        np.testing.assert_allclose(stats.mean[l], [v.mean() for v in vals], rtol=1e-12)
        assert stats.total[l] == pytest.approx(np.mean(np.stack(sat)), rel=1e-12)
    assert np.all(stats.total > 0)  # large inputs saturate some gates: the test can see a difference
    with pytest.raises(ValueError, match="low < high"):
        core.gate_saturation(model, x, low=0.9, high=0.1)
