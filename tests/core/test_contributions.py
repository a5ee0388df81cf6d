"""core.contributions and core.walkthrough against finite differences (float64) and against core.bptt."""
import itertools

import numpy as np
import pytest

import core
from core import contributions
from core.contributions import step_contributions, step_losses, whh_contribution_map
from core.walkthrough import cell_carried_norms, cut_steps, sequence_states, walkthrough
from tests.core.reference import untied_step_losses

ARCHS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
T, B, I, H, O = 5, 2, 2, 3, 2
EPS = 1e-6


def make_case(arch, nonlinearity, layers, loss, loss_on="all", seed=0, T=T):
    rng = np.random.default_rng(seed)
    model = core.build(arch, input_size=I, hidden_size=H, output_size=O, num_layers=layers,
                       nonlinearity=nonlinearity, seed=seed)
    if nonlinearity == "relu":  # keep relu units away from their kink and the state bounded
        model.params = {k: v * 0.8 for k, v in model.params.items()}
    x = rng.standard_normal((T, B, I))
    lead = (T, B) if loss_on == "all" else (B,)
    y = rng.standard_normal((*lead, O)) if loss == "mse" else rng.integers(0, O, lead)
    return model, x, y


def numeric_map(model, x, y, loss, loss_on, truncate):
    """(L, T, T, G*H, H) central differences of L_t with respect to the copy of W_hh used at step s."""
    bnd = untied_step_losses(model, x, y, loss, loss_on)[1] if truncate else None
    L = model.config.num_layers
    n = x.shape[0]
    out = np.zeros((L, n, n, *model.params["weight_hh_l0"].shape))
    for l, s in itertools.product(range(L), range(n)):
        W = model.params[f"weight_hh_l{l}"]
        for idx in np.ndindex(W.shape):
            Wp, Wm = W.copy(), W.copy()
            Wp[idx] += EPS
            Wm[idx] -= EPS
            lp = untied_step_losses(model, x, y, loss, loss_on, truncate, {(l, s): Wp}, bnd)[0]
            lm = untied_step_losses(model, x, y, loss, loss_on, truncate, {(l, s): Wm}, bnd)[0]
            out[(l, slice(None), s, *idx)] = (lp - lm) / (2 * EPS)
    return out


def assert_close(analytic, numeric):
    """Relative error of the whole array < 1e-6, and elementwise agreement."""
    denom = max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-12)
    assert np.linalg.norm(analytic - numeric) / denom < 1e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


CASES = list(itertools.product(ARCHS, [1, 2], ["mse", "cross_entropy"], [None, 2]))
IDS = [f"{a[0]}-{a[1]}-L{l}-{lo}-trunc{tr}" for a, l, lo, tr in CASES]


@pytest.mark.parametrize("arch_nl,layers,loss,truncate", CASES, ids=IDS)
def test_map_matches_finite_differences_of_untied_weights(arch_nl, layers, loss, truncate):
    model, x, y = make_case(*arch_nl, layers, loss)
    cmap = whh_contribution_map(model, x, y, loss, "all", truncate, keep_matrices=True)
    numeric = numeric_map(model, x, y, loss, "all", truncate)
    assert_close(cmap.matrices, numeric)
    np.testing.assert_allclose(cmap.norms, np.linalg.norm(numeric, axis=(3, 4)), rtol=1e-5, atol=1e-9)
    np.testing.assert_array_equal(cmap.rows, np.arange(T))


@pytest.mark.parametrize("arch_nl", ARCHS, ids=[f"{a}-{n}" for a, n in ARCHS])
def test_map_with_loss_on_last_step_matches_finite_differences(arch_nl):
    model, x, y = make_case(*arch_nl, 1, "mse", loss_on="last")
    cmap = whh_contribution_map(model, x, y, "mse", "last", keep_matrices=True)
    np.testing.assert_array_equal(cmap.rows, [T - 1])
    assert_close(cmap.matrices, numeric_map(model, x, y, "mse", "last", None)[:, T - 1 :])


@pytest.mark.parametrize("arch_nl,layers,truncate", itertools.product(ARCHS, [1, 2], [None, 3]))
def test_map_sums_to_bptt_per_step_contributions_and_weight_gradient(arch_nl, layers, truncate):
    model, x, y = make_case(*arch_nl, layers, "mse", T=9)
    res = core.bptt(model, x, y, "mse", "all", truncate)
    cmap = whh_contribution_map(model, x, y, "mse", "all", truncate, keep_matrices=True)
    per_step = cmap.matrices.sum(axis=1)  # (L, T, G*H, H): summed over the loss steps
    np.testing.assert_allclose(np.linalg.norm(per_step, axis=(2, 3)), res.whh_grad_norms, rtol=1e-10, atol=1e-14)
    for l in range(layers):
        np.testing.assert_allclose(per_step[l].sum(axis=0), res.grads[f"weight_hh_l{l}"], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("truncate", [None, 3])
def test_map_is_causal_and_truncation_cuts_the_paths(truncate):
    model, x, y = make_case("gru", "tanh", 1, "mse", T=10)
    norms = whh_contribution_map(model, x, y, truncate=truncate).norms[0]
    t, s = np.indices(norms.shape)
    assert np.all(norms[s > t] == 0)  # the loss at step t does not depend on later steps
    reach = (s <= t) if truncate is None else (s <= t) & (s >= (t // truncate) * truncate)
    reach &= s > 0  # step 0 multiplies W_hh by h_{-1} = 0: it adds nothing to dL/dW_hh
    assert np.all(norms[reach] > 0)
    assert np.all(norms[~reach] == 0)


def test_subsampled_rows_and_small_chunks_equal_the_full_map(monkeypatch):
    model, x, y = make_case("lstm", "tanh", 2, "cross_entropy", T=11)
    full = whh_contribution_map(model, x, y, "cross_entropy")
    rows = [0, 4, 5, 10]
    sub = whh_contribution_map(model, x, y, "cross_entropy", rows=rows)
    np.testing.assert_allclose(sub.norms, full.norms[:, rows], rtol=1e-12, atol=1e-16)
    monkeypatch.setattr(contributions, "CHUNK_ROWS", 3)
    chunked = whh_contribution_map(model, x, y, "cross_entropy")
    np.testing.assert_allclose(chunked.norms, full.norms, rtol=1e-12, atol=1e-16)


def test_map_bounds_its_work_and_names_the_argument():
    model, x, y = make_case("rnn", "tanh", 1, "mse", T=contributions.MAX_ROWS + 1)
    with pytest.raises(ValueError, match="rows must be given"):
        whh_contribution_map(model, x, y)
    for bad in ([3, 2], [], [0, T + 100], [-1], [0.5]):
        with pytest.raises(ValueError, match="rows must be increasing"):
            whh_contribution_map(model, x, y, rows=bad)
    assert whh_contribution_map(model, x, y, rows=[0, 64]).norms.shape == (1, 2, 65)


@pytest.mark.parametrize("arch_nl,truncate,loss_on", itertools.product(ARCHS, [None, 2], ["all", "last"]))
def test_step_contributions_add_up_to_bptt_weight_gradient(arch_nl, truncate, loss_on):
    model, x, y = make_case(*arch_nl, 2, "mse", loss_on=loss_on, T=7)
    res = core.bptt(model, x, y, "mse", loss_on, truncate)
    sc = step_contributions(model, x, y, "mse", loss_on, truncate)
    np.testing.assert_allclose(sc.norms, res.whh_grad_norms, rtol=1e-10, atol=1e-14)
    for l in range(2):
        g = res.grads[f"weight_hh_l{l}"]
        np.testing.assert_allclose(sc.grad[l], g, rtol=1e-10, atol=1e-14)
        assert sc.total[l] == pytest.approx(np.linalg.norm(g), rel=1e-10)
    np.testing.assert_allclose(sc.shares.sum(axis=1), sc.total, rtol=1e-10)  # the stacked bars reach the total
    np.testing.assert_allclose(sc.running[:, 0], sc.total, rtol=1e-10)
    np.testing.assert_allclose(sc.running[:, -1], sc.norms[:, -1], rtol=1e-10)
    assert np.all(sc.shares <= sc.norms * (1 + 1e-12))  # a projection is never longer than the vector


@pytest.mark.parametrize("layers,truncate,loss_on", [(1, None, "all"), (2, None, "all"), (2, 2, "all"),
                                                     (1, None, "last")])
def test_cell_path_gradient_matches_finite_differences(layers, truncate, loss_on):
    model, x, y = make_case("lstm", "tanh", layers, "mse", loss_on=loss_on)
    carried, total = cell_carried_norms(model, x, y, "mse", loss_on, truncate)
    res = core.bptt(model, x, y, "mse", loss_on, truncate)
    np.testing.assert_allclose(total, res.cell_grad_norms, rtol=1e-10, atol=1e-15)  # the same backward pass
    bnd = untied_step_losses(model, x, y, "mse", loss_on)[1] if truncate else None
    numeric = np.zeros((layers, T))
    for l, t in itertools.product(range(layers), range(T - 1)):  # dL/dc_t with h_t held: the cell path only
        g = np.zeros((B, H))
        for b, j in np.ndindex(B, H):
            d = np.zeros((B, H))
            d[b, j] = EPS
            lp, lm = (untied_step_losses(model, x, y, "mse", loss_on, truncate, boundary=bnd,
                                         perturb=("c-only", l, t, sign * d))[0].sum() for sign in (1, -1))
            g[b, j] = (lp - lm) / (2 * EPS)
        numeric[l, t] = np.linalg.norm(g)
    np.testing.assert_allclose(carried, numeric, rtol=1e-6, atol=1e-10)
    assert np.all(carried[:, -1] == 0)
    assert cell_carried_norms(core.build("gru", input_size=I, hidden_size=H, output_size=O), x, y,
                              "mse", loss_on) == (None, None)


@pytest.mark.parametrize("loss,loss_on", [("mse", "all"), ("mse", "last"), ("cross_entropy", "all")])
def test_step_losses_sum_to_the_bptt_loss(loss, loss_on):
    model, x, y = make_case("gru", "tanh", 1, loss, loss_on=loss_on)
    res = core.bptt(model, x, y, loss, loss_on)
    got = step_losses(res.outputs, y, loss, loss_on)
    assert got.sum() == pytest.approx(res.loss, rel=1e-12)
    if loss_on == "last":
        assert np.all(got[:-1] == 0)
    else:
        assert got[2] == pytest.approx(core.loss_forward_backward(res.outputs[2], y[2], loss)[0] / T, rel=1e-12)


@pytest.mark.parametrize("arch_nl", ARCHS, ids=[f"{a}-{n}" for a, n in ARCHS])
def test_sequence_states_equal_the_bptt_forward(arch_nl):
    model, x, y = make_case(*arch_nl, 2, "mse")
    hs, cs, outputs = sequence_states(model, x)
    res = core.bptt(model, x, y)
    np.testing.assert_allclose(outputs, res.outputs, rtol=1e-12, atol=1e-14)
    top, _ = core.layer_forward(model.config.arch, model.config.nonlinearity, x, *(
        model.params[f"{n}_l0"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
    np.testing.assert_allclose(hs[0], top, rtol=1e-12, atol=1e-14)
    assert (cs is None) == (arch_nl[0] != "lstm")
    if cs is not None:  # h = o * tanh(c) bounds |h| by |tanh(c)|
        assert np.all(np.abs(hs) <= np.abs(np.tanh(cs)) + 1e-15)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("clip", [None, 0.05, 1e6])
def test_walkthrough_applies_one_clipped_step_and_runs_the_next_forward(optimizer, clip):
    model, x, y = make_case("lstm", "tanh", 1, "mse", T=6)
    w = walkthrough(model, x, y, optimizer=optimizer, lr=0.1, clip=clip, sample=1)
    res = core.bptt(model, x, y)
    norm = core.global_norm(res.grads)
    assert w.grad_norm == pytest.approx(norm, rel=1e-12)
    assert w.clipped == (clip is not None and clip < norm)
    grads = res.grads
    if w.clipped:
        assert w.clip_scale == pytest.approx(clip / (norm + 1e-6), rel=1e-12)
        grads = {k: g * w.clip_scale for k, g in grads.items()}
        assert core.global_norm(grads) == pytest.approx(clip, rel=1e-4)
    else:
        assert w.clip_scale == 1.0
    step = core.sgd_step if optimizer == "sgd" else core.adam_step
    expected = step(model.params, grads, None, lr=0.1)[0]
    for k, v in expected.items():
        np.testing.assert_allclose(w.params_after[k], v, rtol=1e-12, atol=1e-15)
    dW = expected["weight_hh_l0"] - model.params["weight_hh_l0"]
    assert w.whh_update_norms[0] == pytest.approx(np.linalg.norm(dW), rel=1e-12)
    after = model.copy()
    after.params = expected
    nxt = core.bptt(after, x, y)
    assert w.next_loss == pytest.approx(nxt.loss, rel=1e-10)
    np.testing.assert_allclose(w.next_outputs, nxt.outputs[:, 1], rtol=1e-10)
    assert w.loss == pytest.approx(res.loss, rel=1e-12)
    np.testing.assert_allclose(w.outputs, res.outputs[:, 1], rtol=1e-12)
    np.testing.assert_allclose(w.local_grad_norms, res.local_grad_norms, rtol=1e-12)
    np.testing.assert_allclose(w.carried_grad_norms, res.carried_grad_norms, rtol=1e-12)
    assert w.h.shape == (1, 6, H) and w.c.shape == (1, 6, H)
    if optimizer == "sgd" and clip is None:  # a small plain gradient step lowers the loss
        assert w.next_loss < w.loss


def test_walkthrough_reports_truncation_cuts_and_validates_its_arguments():
    model, x, y = make_case("rnn", "tanh", 1, "mse", T=7)
    w = walkthrough(model, x, y, truncate=3)
    np.testing.assert_array_equal(w.cut_steps, [3, 6])
    assert w.carried_grad_norms[0, 2] == 0 and w.carried_grad_norms[0, 5] == 0  # nothing carried across a cut
    np.testing.assert_array_equal(cut_steps(7, None), [])
    for kw, field in [({"optimizer": "rmsprop"}, "optimizer"), ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"),
                      ({"sample": B}, "sample"), ({"clip": -1.0}, "max_norm")]:
        with pytest.raises(ValueError, match=field):
            walkthrough(model, x, y, **kw)


def test_exploding_network_is_data_not_an_error():
    model = core.build("rnn", input_size=I, hidden_size=H, output_size=O, nonlinearity="relu", init="identity",
                       scale=5.0, seed=0)
    x = np.full((600, B, I), 50.0)
    y = np.zeros((600, B, O))
    w = walkthrough(model, x, y, rows=[0, 599])
    assert not np.isfinite(w.loss) or not np.isfinite(w.grad_norm)
    np.testing.assert_array_equal(w.params_after["weight_hh_l0"], model.params["weight_hh_l0"])  # no update
    assert w.contribution_map.norms.shape == (1, 2, 600)
