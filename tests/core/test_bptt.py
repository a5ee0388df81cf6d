"""core.bptt against central finite differences in float64, on every architecture and option."""
import itertools

import numpy as np
import pytest

import core
from tests.core import reference

ARCHS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
T, B, I, H, O = 6, 2, 3, 3, 3
EPS = 1e-6


def make_case(arch, nonlinearity, layers, loss, loss_on, seed=0):
    rng = np.random.default_rng(seed)
    model = core.build(arch, input_size=I, hidden_size=H, output_size=O, num_layers=layers,
                       nonlinearity=nonlinearity, seed=seed)
    if nonlinearity == "relu":  # keep relu units away from their kink and the state bounded
        for k, v in model.params.items():
            model.params[k] = v * 0.8
    x = rng.standard_normal((T, B, I))
    lead = (T, B) if loss_on == "all" else (B,)
    y = rng.standard_normal((*lead, O)) if loss == "mse" else rng.integers(0, O, lead)
    return model, x, y


def assert_close(analytic, numeric):
    """Relative error of the whole array < 1e-6, and elementwise agreement."""
    analytic, numeric = np.asarray(analytic, float), np.asarray(numeric, float)
    denom = max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-12)
    assert np.linalg.norm(analytic - numeric) / denom < 1e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def boundary_states(model, x, y, loss, loss_on, truncate):
    if not truncate:
        return None
    _, states = reference.run(model, x, y, loss, loss_on)
    return states


CASES = list(itertools.product(ARCHS, [1, 2], ["mse", "cross_entropy"], ["all", "last"], [None, 2]))
IDS = [f"{a[0]}-{a[1]}-L{l}-{lo}-{on}-trunc{tr}" for a, l, lo, on, tr in CASES]
CKPT_CASES = [(*c, ck) for c in CASES for ck in (False, True)]
CKPT_IDS = [i + ("-ckpt" if ck else "") for i in IDS for ck in (False, True)]


@pytest.mark.parametrize("arch_nl,layers,loss,loss_on,truncate,checkpoint", CKPT_CASES, ids=CKPT_IDS)
def test_loss_and_parameter_gradients_match_finite_differences(arch_nl, layers, loss, loss_on, truncate, checkpoint):
    model, x, y = make_case(*arch_nl, layers, loss, loss_on)
    res = core.bptt(model, x, y, loss=loss, loss_on=loss_on, truncate=truncate, checkpoint=checkpoint)
    bnd = boundary_states(model, x, y, loss, loss_on, truncate)
    ref_loss, _ = reference.run(model, x, y, loss, loss_on, truncate, boundary=bnd)
    assert res.loss == pytest.approx(ref_loss, rel=1e-12)
    assert set(res.grads) == set(model.state_dict())
    for name, param in model.params.items():
        numeric = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            old = param[idx]
            param[idx] = old + EPS
            lp, _ = reference.run(model, x, y, loss, loss_on, truncate, boundary=bnd)
            param[idx] = old - EPS
            lm, _ = reference.run(model, x, y, loss, loss_on, truncate, boundary=bnd)
            param[idx] = old
            numeric[idx] = (lp - lm) / (2 * EPS)
        assert res.grads[name].shape == param.shape
        assert_close(res.grads[name], numeric)


def numeric_state_grads(model, x, y, loss, loss_on, truncate, kind):
    """(L, T, B, H) finite-difference dL/dh^l_t (kind 'h') or dL/dc^l_t (kind 'c')."""
    bnd = boundary_states(model, x, y, loss, loss_on, truncate)
    L = model.config.num_layers
    g = np.zeros((L, T, B, H))
    for l, t, b, j in np.ndindex(L, T, B, H):
        d = np.zeros((B, H))
        d[b, j] = EPS
        lp, _ = reference.run(model, x, y, loss, loss_on, truncate, perturb=(kind, l, t, d), boundary=bnd)
        lm, _ = reference.run(model, x, y, loss, loss_on, truncate, perturb=(kind, l, t, -d), boundary=bnd)
        g[l, t, b, j] = (lp - lm) / (2 * EPS)
    return g


@pytest.mark.parametrize("arch_nl,layers,loss,loss_on,truncate,checkpoint", CKPT_CASES, ids=CKPT_IDS)
def test_hidden_grad_norms_match_finite_differences(arch_nl, layers, loss, loss_on, truncate, checkpoint):
    model, x, y = make_case(*arch_nl, layers, loss, loss_on)
    res = core.bptt(model, x, y, loss=loss, loss_on=loss_on, truncate=truncate, checkpoint=checkpoint)
    g = numeric_state_grads(model, x, y, loss, loss_on, truncate, "h")
    assert res.hidden_grad_norms.shape == (layers, T)
    assert_close(res.hidden_grad_norms, np.sqrt(np.sum(g**2, axis=(2, 3))))
    assert_close(res.hidden_grad_units, np.sqrt(np.sum(g**2, axis=2)))
    if arch_nl[0] == "lstm":
        gc = numeric_state_grads(model, x, y, loss, loss_on, truncate, "c")
        assert_close(res.cell_grad_norms, np.sqrt(np.sum(gc**2, axis=(2, 3))))
    else:
        assert res.cell_grad_norms is None


@pytest.mark.parametrize("arch_nl", ARCHS, ids=[a + "-" + n for a, n in ARCHS])
@pytest.mark.parametrize("truncate", [None, 2])
def test_local_and_carried_gradients_split_the_total(arch_nl, truncate):
    """local (from readout / layer above) + carried (from t+1) = total, per step, as vectors."""
    model, x, y = make_case(*arch_nl, 2, "mse", "all")
    res = core.bptt(model, x, y, truncate=truncate)
    g = numeric_state_grads(model, x, y, "mse", "all", truncate, "h")
    # top layer: the local gradient is the readout's, dL_t/dh_t = dlogits_t @ W_o
    W_o = model.params["readout.weight"]
    logits = res.outputs
    dlogits = 2.0 * (logits - y) / y.size
    local_top = dlogits @ W_o
    assert_close(res.local_grad_norms[-1], np.sqrt(np.sum(local_top**2, axis=(1, 2))))
    carried_top = g[-1] - local_top
    assert_close(res.carried_grad_norms[-1], np.sqrt(np.sum(carried_top**2, axis=(1, 2))))
    assert res.carried_grad_norms[-1, -1] == 0.0
    if truncate:
        cut = np.arange(truncate - 1, T - 1, truncate)  # steps whose successor starts a new chunk
        np.testing.assert_array_equal(res.carried_grad_norms[:, cut], 0.0)


@pytest.mark.parametrize("arch_nl", ARCHS, ids=[a + "-" + n for a, n in ARCHS])
def test_whh_grad_norms_are_per_step_contributions(arch_nl):
    """Each step's dW_hh contribution, measured by freezing W_hh everywhere except at step t."""
    model, x, y = make_case(*arch_nl, 1, "mse", "all")
    res = core.bptt(model, x, y)
    W = model.params["weight_hh_l0"]
    total = np.zeros_like(W)
    for t in range(T):
        contrib = _whh_step_contribution(model, x, y, t)
        assert np.linalg.norm(contrib) == pytest.approx(res.whh_grad_norms[0, t], rel=1e-6, abs=1e-12)
        total += contrib
    assert_close(res.grads["weight_hh_l0"], total)


def _whh_step_contribution(model, x, y, t_only):
    """FD gradient of the loss w.r.t. a copy of W_hh used only at step t_only."""
    cfg, p = model.config, model.params
    W = p["weight_hh_l0"]

    def loss_with(W_t):
        h = np.zeros((B, H))
        c = np.zeros((B, H))
        hs = []
        for t in range(T):
            Wx = W_t if t == t_only else W
            a_x = x[t] @ p["weight_ih_l0"].T + p["bias_ih_l0"]
            if cfg.arch == "rnn":
                h, _ = core.cells.rnn_step_forward(a_x, h, Wx, p["bias_hh_l0"], cfg.nonlinearity)
            elif cfg.arch == "lstm":
                h, c, _ = core.cells.lstm_step_forward(a_x, h, c, Wx, p["bias_hh_l0"])
            else:
                h, _ = core.cells.gru_step_forward(a_x, h, Wx, p["bias_hh_l0"])
            hs.append(h)
        logits = np.stack(hs) @ p["readout.weight"].T + p["readout.bias"]
        return core.loss_forward_backward(logits, y, "mse")[0]

    g = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += EPS
        Wm[idx] -= EPS
        g[idx] = (loss_with(Wp) - loss_with(Wm)) / (2 * EPS)
    return g


def test_truncation_equals_detached_chunks_and_full_when_window_covers_sequence():
    model, x, y = make_case("lstm", "tanh", 2, "mse", "all")
    full = core.bptt(model, x, y)
    same = core.bptt(model, x, y, truncate=T)
    for k in full.grads:
        np.testing.assert_array_equal(full.grads[k], same.grads[k])
    cut = core.bptt(model, x, y, truncate=1)
    assert np.all(cut.carried_grad_norms == 0.0)
    assert cut.loss == full.loss


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_float32_agrees_with_float64(arch):
    model, x, y = make_case(arch, "tanh", 2, "mse", "all")
    res64 = core.bptt(model, x, y)
    m32 = model.astype(np.float32)
    res32 = core.bptt(m32, x, y)
    assert res32.grads["weight_hh_l0"].dtype == np.float32
    assert res32.hidden_grad_norms.dtype == np.float32
    assert res32.loss == pytest.approx(res64.loss, rel=1e-5)
    for k in res64.grads:
        np.testing.assert_allclose(res32.grads[k], res64.grads[k], rtol=1e-3, atol=1e-6)


def test_vanishing_gradient_stays_visible_in_float64():
    """A tiny-tanh RNN over 400 steps: early gradients far below 1e-100 are kept, not zero."""
    model = core.RNN(input_size=1, hidden_size=4, output_size=1, init="orthogonal", scale=0.3, seed=0)
    x = np.random.default_rng(0).standard_normal((400, 1, 1))
    res = core.bptt(model, x, np.zeros((1, 1)), loss_on="last")
    g = res.hidden_grad_norms[0]
    assert 0.0 < g[0] < 1e-200
    assert np.all(np.diff(np.log(g)) > 0)  # grows towards the scored step


def test_overflow_is_data_not_an_error():
    model = core.RNN(input_size=2, hidden_size=8, output_size=1, nonlinearity="relu",
                     init="identity", scale=3.0, seed=0)
    x = np.abs(np.random.default_rng(0).standard_normal((800, 2, 2))) + 1.0
    res = core.bptt(model, x, np.zeros((800, 2, 1)))
    assert res.nonfinite_step is not None and 0 < res.nonfinite_step < 800
    assert not np.isfinite(res.loss)
    assert not np.all(np.isfinite(res.hidden_grad_norms))
    # the scored outputs after the blow-up are inf, so the gradient is non-finite from the end on
    assert res.nonfinite_grad_step == 799
    assert np.all(np.isfinite(res.outputs[: res.nonfinite_step]))
    assert not np.all(np.isfinite(res.outputs[res.nonfinite_step]))


def test_finite_run_reports_no_nonfinite_step():
    model, x, y = make_case("gru", "tanh", 1, "mse", "all")
    res = core.bptt(model, x, y)
    assert res.nonfinite_step is None and res.nonfinite_grad_step is None


@pytest.mark.parametrize("arch_nl", ARCHS, ids=[a + "-" + n for a, n in ARCHS])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("truncate", [None, 5])
@pytest.mark.parametrize("loss_on", ["all", "last"])
def test_checkpointed_bptt_equals_full_bptt(rng, arch_nl, layers, truncate, loss_on):
    model = core.build(arch_nl[0], input_size=3, hidden_size=8, output_size=2, num_layers=layers,
                       nonlinearity=arch_nl[1], seed=1)
    x = rng.standard_normal((37, 3, 3))  # 37 steps: segments of 7, the last one shorter
    y = rng.standard_normal((37, 3, 2) if loss_on == "all" else (3, 2))
    full = core.bptt(model, x, y, loss_on=loss_on, truncate=truncate)
    ckpt = core.bptt(model, x, y, loss_on=loss_on, truncate=truncate, checkpoint=True)
    # the forward runs per segment (input products over fewer rows): equal up to rounding, which BLAS builds vary
    assert ckpt.loss == pytest.approx(full.loss, rel=1e-12, abs=0)
    for k in full.grads:
        np.testing.assert_allclose(ckpt.grads[k], full.grads[k], rtol=1e-12, atol=1e-15)
    for field in ("hidden_grad_norms", "local_grad_norms", "carried_grad_norms", "whh_grad_norms",
                  "hidden_grad_units", "outputs"):
        np.testing.assert_allclose(getattr(ckpt, field), getattr(full, field), rtol=1e-12, atol=1e-300)
    if arch_nl[0] == "lstm":
        np.testing.assert_allclose(ckpt.cell_grad_norms, full.cell_grad_norms, rtol=1e-12)


def test_checkpointing_holds_far_less_memory():
    model = core.LSTM(input_size=2, hidden_size=16, output_size=1)
    x = np.random.default_rng(0).standard_normal((400, 2, 2))
    full = core.bptt(model, x, np.zeros((400, 2, 1)))
    ckpt = core.bptt(model, x, np.zeros((400, 2, 1)), checkpoint=True)
    # full keeps ~400 steps of (c_prev, 4 gates, tanh c, h, 3 products for the backward pass);
    # checkpointing 20 states + 20 steps
    per_step = 2 * 16 * 8 * (1 + 4 + 1 + 1 + 3)
    assert full.memory_bytes == 400 * per_step + full.outputs.nbytes
    assert ckpt.memory_bytes < full.memory_bytes / 8
    with pytest.raises(ValueError, match="checkpoint"):
        core.bptt(model, x, np.zeros((400, 2, 1)), checkpoint="yes")
