import threading
import time

import numpy as np
import pytest

import core
from visualizer import budget, compute, payloads
from visualizer.cache import memoize
from visualizer.urlstate import Params, parse_query, view_work


@pytest.fixture
def small():
    return Params(seq_len=20, hidden=8, batch=3)


def test_batch_summary_median_min_max_and_overflow_stays_visible():
    v = np.array([[1.0, 2.0, 4.0], [1.0, np.inf, 3.0], [np.nan, 1.0, 1.0]])
    s = payloads.batch_summary(v)
    assert s["median"][0] == 2.0 and s["min"][0] == 1.0 and s["max"][0] == 4.0
    assert s["median"][1] == np.inf
    assert np.isnan(s["median"][2])


def test_safe_log10_maps_zero_and_nonfinite_to_nan():
    out = payloads.safe_log10(np.array([100.0, 0.0, np.inf, np.nan, 1e-300, -10.0]))
    np.testing.assert_allclose(out[[0, 4, 5]], [2.0, -300.0, 1.0])
    assert np.all(np.isnan(out[1:4]))


def test_bin_max_reduces_consecutive_bins_and_ignores_partial_nan():
    a = np.arange(10.0)
    out, k = payloads.bin_max(a, 4)
    assert k == 3
    np.testing.assert_array_equal(out, [2.0, 5.0, 8.0, 9.0])
    same, k1 = payloads.bin_max(a, 10)
    assert k1 == 1 and same is not None and np.array_equal(same, a)
    m = np.array([[1.0, np.nan], [np.nan, np.nan], [3.0, 2.0], [np.nan, 5.0]])
    out, k = payloads.bin_max(m, 2, axis=0)
    np.testing.assert_array_equal(out, [[1.0, np.nan], [3.0, 5.0]])
    out, _ = payloads.bin_max(m, 1, axis=1)
    np.testing.assert_array_equal(out[:, 0], [1.0, np.nan, 3.0, 5.0])


def test_reference_slope():
    np.testing.assert_allclose(payloads.reference_slope(0.5, 4), [1, 0.5, 0.25, 0.125])


def test_jacobian_payload_fits_the_rate_and_gives_both_references_for_plain_rnns():
    from visualizer import presets
    p = presets.PRESETS["vanishing"].params
    (item,) = payloads.jacobian_items([compute.run_key(p, "rnn")])
    model, task = compute.get_model(compute.run_key(p, "rnn")), compute.get_task(compute.data_key(p))
    by_lag = np.median(core.jacobian_norms(model, task.x)[-1], axis=1)[::-1]
    k = np.arange(by_lag.size)
    slope, icpt = np.polyfit(k, np.log(by_lag), 1)  # an independent least-squares fit
    assert item["rate"] == pytest.approx(np.exp(slope), rel=1e-9)
    np.testing.assert_allclose(item["fit"], np.exp(icpt + slope * k), rtol=1e-8)
    W = model.params["weight_hh_l0"]
    rho, s1 = np.max(np.abs(np.linalg.eigvals(W))), np.linalg.norm(W, 2)
    np.testing.assert_allclose(item["rho_reference"], rho ** k, rtol=1e-9)
    np.testing.assert_allclose(item["reference"], s1 ** k, rtol=1e-9)
    (gated,) = payloads.jacobian_items([compute.run_key(p, "lstm")])
    assert gated["reference"] is None and gated["rho_reference"] is None and gated["rate"] < 1


def test_targets_slices_the_last_step_or_explains():
    sine = core.make_task("sine", 10, 2)
    y, on, note = compute.targets(sine, "last")
    assert on == "last" and y.shape == (2, 1) and note is None
    adding = core.make_task("adding", 10, 2)
    y, on, note = compute.targets(adding, "all")
    assert on == "last" and "only at the last step" in note


def test_run_key_depends_only_on_what_the_architecture_uses(small):
    a = compute.run_key(small, "rnn")
    b = compute.run_key(Params(**{**small.to_dict(), "arch": ("rnn",), "forget_bias": 2.0, "view": "gates",
                                  "clip": 1.0, "lr": 0.5}), "rnn")
    assert a == b
    assert compute.run_key(small, "lstm") != compute.run_key(Params(**{**small.to_dict(), "arch": ("lstm",),
                                                                       "forget_bias": 2.0}), "lstm")
    # the scale is ignored by the PyTorch initialiser, so it must not split the cache
    assert a == compute.run_key(Params(**{**small.to_dict(), "arch": ("rnn",), "scale": 3.0}), "rnn")
    # a truncation window as long as the sequence is full BPTT
    assert compute.run_key(Params(**{**small.to_dict(), "arch": ("rnn",), "truncate": 20}), "rnn").truncate is None


def test_match_params_gives_comparable_parameter_counts():
    p = Params(hidden=40, seq_len=10, batch=2, match_params=True)
    counts = {a: compute.get_model(compute.run_key(p, a)).num_parameters() for a in ("rnn", "lstm", "gru")}
    assert compute.run_key(p, "rnn").hidden == 40
    assert compute.run_key(p, "lstm").hidden < 40
    for a in ("lstm", "gru"):
        assert abs(counts[a] - counts["rnn"]) / counts["rnn"] < 0.1


def test_grad_flow_matches_core_bptt(small):
    key = compute.run_key(small, "gru")
    flow = compute.grad_flow(key)
    task = core.make_task("adding", 20, 3, seed=0)
    model = core.build("gru", input_size=2, hidden_size=8, output_size=1, seed=0)
    ref = core.bptt(model, task.x, task.y, loss="mse", loss_on="last")
    np.testing.assert_allclose(flow.hidden_grad_norms, ref.hidden_grad_norms)
    assert flow.name == "GRU" and flow.hidden == 8 and flow.nonfinite_step is None
    assert flow.sigma_max == pytest.approx(float(core.weight_singular_values(model)[-1][0]))


def test_impossible_task_settings_raise_value_error():
    with pytest.raises(ValueError, match="lag"):
        compute.grad_flow(compute.run_key(Params(seq_len=1), "rnn"))


def test_memoize_computes_once_for_concurrent_callers():
    calls = []

    @memoize(maxsize=2)
    def slow(key):
        calls.append(key)
        time.sleep(0.05)
        return key * 2

    threads = [threading.Thread(target=slow, args=(3,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [3]
    assert slow(1) == 2 and slow(2) == 4 and slow(3) == 6
    assert slow.cache_len() == 2
    assert calls == [3, 1, 2, 3]


def test_memoize_does_not_cache_exceptions():
    calls = []

    @memoize(maxsize=2)
    def fail(key):
        calls.append(key)
        raise ValueError("no")

    for _ in range(2):
        with pytest.raises(ValueError):
            fail(1)
    assert calls == [1, 1]


def test_jacobian_batch_caps_large_work():
    assert compute.jacobian_batch(compute.run_key(Params(), "lstm")) == Params().batch
    big = Params(seq_len=1000, hidden=256, batch=8)
    assert compute.jacobian_batch(compute.run_key(big, "lstm")) == 1
    assert 1 <= compute.jacobian_batch(compute.run_key(big, "rnn")) <= 8


def test_explosion_messages_name_the_architecture_and_step():
    p = Params(arch=("rnn-relu", "gru"), seq_len=1100, hidden=8, batch=2, init="identity", scale=2.0)
    flows = [compute.grad_flow(compute.run_key(p, a)) for a in p.arch]
    lines = payloads.explosion_messages(flows)
    assert len(lines) == 1
    assert lines[0].startswith(f"RNN-relu exploded at step {flows[0].nonfinite_step}:")


def test_view_payload_shapes(small):
    keys = [compute.run_key(small, a) for a in ("rnn", "lstm")]
    jac = payloads.jacobian_items(keys)
    assert [it["name"] for it in jac] == ["RNN", "LSTM"]
    assert jac[0]["median"].shape == (20,) and jac[0]["median"][0] == pytest.approx(1.0)  # lag 0 is the identity
    assert jac[0]["reference"][1] == pytest.approx(jac[0]["sigma"])
    spectra = payloads.spectra_items(keys)
    assert spectra[1]["weights"].shape == (8,) and spectra[1]["step_max"].shape == (20,)
    gates = payloads.gate_items(keys)
    assert gates[1]["median"][-1] == pytest.approx(1.0)
    conn = payloads.connectivity_items(keys)
    assert conn[0]["values"].shape == (20, 20) and conn[0]["bin"] == 1
    heat = payloads.heatmap_items([compute.grad_flow(k) for k in keys])
    assert heat[0]["values"].shape == (20, 8) and heat[0]["bin"] == 1


def test_large_maps_are_binned_for_display():
    p = Params(arch=("rnn",), seq_len=600, hidden=200, batch=1)
    heat = payloads.heatmap_items([compute.grad_flow(compute.run_key(p, "rnn"))])[0]
    assert heat["values"].shape[0] * heat["values"].shape[1] <= payloads.HEAT_CELLS
    assert heat["bin"] > 1 and heat["t"].shape == (heat["values"].shape[0],)


def test_sequence_note_only_when_fewer_sequences_are_used():
    small = [compute.run_key(Params(), a) for a in ("rnn", "lstm")]
    assert payloads.jacobian_note(small) is None
    big = [compute.run_key(Params(seq_len=1000, hidden=256), a) for a in ("rnn", "lstm", "gru")]
    note = payloads.jacobian_note(big)
    for key in big:
        B, lags = budget.jacobian_plan(key)
        assert B == 1 and 1 <= lags < 1000  # below one sequence: the last `lags` steps of the first
        assert f"{compute.DISPLAY_NAMES[key.arch]}: the last {lags} of 1000 steps" in note
    assert "LSTM: the last" in payloads.gates_note([big[1]])  # the gating view draws the LSTM's whole Jacobian too


def test_below_one_sequence_the_jacobian_view_shows_the_computed_lags():
    p = Params(arch=("rnn",), seq_len=600, hidden=300, batch=2)
    key = compute.run_key(p, "rnn")
    B, lags = budget.jacobian_plan(key)
    assert B == 1 and lags is not None and lags < 599
    item = payloads.jacobian_items([key])[0]
    assert item["median"].shape == (lags + 1,) and item["lags"] == lags and len(item["reference"]) == lags + 1
    direct = core.jacobian_norms(compute.get_model(key), compute.get_task(key.data).x[:, :1])[-1, :, 0]
    np.testing.assert_allclose(item["median"], direct[::-1][: lags + 1], rtol=1e-9)


def test_each_plan_fits_the_time_budget_at_the_maxima():
    """The documented maxima, after validation: every view's predicted work fits its share."""
    params, messages = parse_query("?arch=rnn,rnn-relu,lstm,gru&seq_len=2000&hidden=512&layers=4&batch=64")
    assert any("about 3 s of computation" in m for m in messages)
    assert view_work(params) <= budget.VIEW_WORK_CAP
    for key in [compute.run_key(params, a) for a in params.arch]:
        seconds, n, T, lin = budget.view_seconds(key), budget.state_size(key), key.data.seq_len, budget.lin_seconds(key)
        B, lags = budget.jacobian_plan(key)
        steps = lags or T
        assert B * steps * budget.product_seconds(key) + steps * budget.PRODUCT_STEP_SECONDS <= seconds or lags == 1
        B, lags = budget.gates_plan(key)
        if key.arch.startswith("rnn"):
            assert B * (lags or T) * key.hidden**3 / budget.EIG_RATE <= seconds
        steps = budget.spectra_count(key)
        assert steps == 2 or steps * (lin + n**3 / budget.SVD_RATE) <= seconds  # at least the first and last step
        rows, lags = compute.key_connectivity_rows(key)
        width = T if lags is None else lags + 1
        cost = width * key.layers * (2 * lin + budget.STEP_SECONDS + len(rows) * n**2 / budget.CONNECTIVITY_RATE / 2)
        assert cost <= seconds or (len(rows) <= 2 and width == 1)


def test_connectivity_within_a_window_of_input_steps_says_so():
    p = Params(arch=("lstm",), seq_len=1000, hidden=400, layers=3, batch=1)
    key = compute.run_key(p, "lstm")
    rows, lags = compute.key_connectivity_rows(key)
    assert lags is not None and lags < 999 and rows[0] >= 999 - lags and rows[-1] == 999
    item = payloads.connectivity_items([key])[0]
    assert np.all(np.isnan(item["values"][:, : (999 - lags) // item["bin"]]))
    assert np.all(np.isfinite(item["values"][-1, -(lags // item["bin"]):]))
    assert f"input steps from {999 - lags} on" in payloads.connectivity_note([key])


def test_long_sequences_analyse_evenly_spaced_step_spectra():
    p = Params(arch=("gru",), seq_len=450, hidden=4, batch=1)
    key = compute.run_key(p, "gru")
    item = payloads.spectra_items([key])[0]
    t = item["t"]
    assert len(t) == compute.SPECTRA_STEPS and t[0] == 0 and t[-1] == 449 and np.all(np.diff(t) > 0)
    task = compute.get_task(key.data)
    direct = core.step_jacobian_singular_values(compute.get_model(key), task.x, steps=t)[-1]
    np.testing.assert_array_equal(item["step_max"], direct[:, 0])
    np.testing.assert_array_equal(item["step_min"], direct[:, -1])
    key30 = compute.run_key(Params(seq_len=30, hidden=4, batch=1), "rnn")
    assert payloads.spectra_items([key30])[0]["t"].tolist() == list(range(30))


def test_step_spectra_of_large_states_use_fewer_steps_and_say_so():
    p = Params(arch=("rnn", "lstm", "gru"), seq_len=1000, hidden=256, batch=1)
    keys = [compute.run_key(p, a) for a in p.arch]
    counts = [len(compute.key_spectra_steps(k)) for k in keys]
    assert 2 <= counts[1] < counts[0] <= compute.SPECTRA_STEPS  # n = 512 (LSTM's [h; c]) costs more than 256
    assert counts == [budget.spectra_count(k) for k in keys]
    t = compute.key_spectra_steps(keys[1])
    assert t[0] == 0 and t[-1] == 999 and np.all(np.diff(t) > 0)
    note = payloads.spectra_note(keys)
    assert f"RNN {counts[0]}" in note and f"LSTM {counts[1]}" in note and f"GRU {counts[2]}" in note
    small = [compute.run_key(Params(seq_len=100, hidden=32), a) for a in ("rnn", "lstm")]
    assert [len(compute.key_spectra_steps(k)) for k in small] == [100, 100]
    assert payloads.spectra_note(small) is None


def test_long_connectivity_computes_one_output_row_per_bin():
    p = Params(arch=("gru",), seq_len=600, hidden=4, batch=1)
    key = compute.run_key(p, "gru")
    item = payloads.connectivity_items([key])[0]
    k = item["bin"]
    assert k == 3 and item["values"].shape == (200, 200)
    rows = item["row_ticks"]
    assert rows[0] == k - 1 and rows[-1] == 599 and np.all(np.diff(rows) == k)
    task = compute.get_task(key.data)
    full = core.connectivity(compute.get_model(key), task.x, batch_index=0)
    expected, _ = payloads.bin_max(full[rows], compute.CONNECTIVITY_SIDE, axis=1)
    # two matrix-product paths (all rows, then a subset; or only the subset): equal up to rounding,
    # which differs between BLAS builds
    np.testing.assert_allclose(item["values"], expected, rtol=1e-12, atol=0)
    assert item["ticks"].tolist() == list(range(0, 600, k))
    assert "one output step in 3" in payloads.connectivity_note([key])
    assert payloads.connectivity_note([compute.run_key(Params(seq_len=250), "gru")]) is None


# each memoized function of compute -> the core function doing its work
CACHED = {"get_task": "make_task", "get_model": "build", "grad_flow": "bptt",
          "weight_spectra": "weight_singular_values", "gamma_threshold": "gamma_bound",
          "jacobian_norms": "jacobian_norms",
          "step_spectra": "step_jacobian_singular_values", "gate_products": "gate_products",
          "connectivity": "connectivity", "spectral_radius": "spectral_radius"}


def test_every_memoized_function_is_checked():
    memoized = {name for name, fn in vars(compute).items() if callable(fn) and hasattr(fn, "cache_clear")}
    assert memoized == set(CACHED)


def _arrays(value):
    """The numpy arrays a cached result hands out."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, compute.GradFlow):
        return [value.hidden_grad_norms, value.hidden_grad_units]
    if isinstance(value, core.Model):
        return list(value.params.values())
    if hasattr(value, "x"):  # a task
        return [value.x, value.y]
    return []


@pytest.mark.parametrize("name", list(CACHED))
def test_a_second_call_does_not_recompute_and_results_are_read_only(name, monkeypatch):
    arch = "rnn" if name == "spectral_radius" else "lstm"  # rho(W_hh) is a plain RNN's
    key = compute.run_key(Params(arch=(arch,), seq_len=9, hidden=3, batch=2, seed=12345), arch)
    arg = key.data if name == "get_task" else key
    fn, calls = getattr(compute, name), []
    real = getattr(core, CACHED[name])

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(core, CACHED[name], counted)
    fn.cache_clear()
    first = fn(arg)
    assert len(calls) == 1
    assert fn(arg) is first and len(calls) == 1
    arrays = _arrays(first)
    assert arrays or name in ("gamma_threshold", "spectral_radius")  # plain floats
    for a in arrays:
        assert not a.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            a.flat[0] = 1.0


def test_the_one_over_gamma_line_is_drawn_for_plain_rnns_only():
    keys = [compute.run_key(Params(seq_len=12, hidden=5, batch=2), a) for a in ("rnn", "lstm", "gru")]
    assert [it["threshold"] for it in payloads.spectra_items(keys)] == [1.0, None, None]


FORWARD_ONLY = [name for name in CACHED if name != "grad_flow"]


@pytest.mark.parametrize("name", FORWARD_ONLY)
def test_forward_results_are_shared_across_backward_settings(name, monkeypatch):
    """Truncation and the scored steps change only the loss and the backward pass: the forward-only
    results are looked up, not recomputed, and equal a fresh computation under the other settings."""
    arch = "rnn" if name == "spectral_radius" else "gru"
    common = dict(arch=(arch,), seq_len=12, hidden=4, batch=3, seed=7)
    a = compute.run_key(Params(**common, truncate=None, loss_on="last"), arch)
    b = compute.run_key(Params(**common, truncate=5, loss_on="all"), arch)
    assert a != b and b.truncate == 5
    fn = getattr(compute, name)
    arg_a, arg_b = (a.data, b.data) if name == "get_task" else (a, b)
    fn.cache_clear()
    fresh_b = fn(arg_b)
    fn.cache_clear()
    calls = []
    real = getattr(core, CACHED[name])
    monkeypatch.setattr(core, CACHED[name], lambda *args, **kw: calls.append(1) or real(*args, **kw))
    first = fn(arg_a)
    assert fn(arg_b) is first and len(calls) == 1
    for x, y in zip(_arrays(first) or [first], _arrays(fresh_b) or [fresh_b], strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=0)


def test_gradients_are_not_shared_across_backward_settings():
    a = compute.run_key(Params(arch=("rnn",), seq_len=12, hidden=4, batch=3, seed=7, truncate=None), "rnn")
    b = compute.run_key(Params(arch=("rnn",), seq_len=12, hidden=4, batch=3, seed=7, truncate=5), "rnn")
    ga, gb = compute.grad_flow(a), compute.grad_flow(b)
    assert ga is not gb
    assert np.all(gb.hidden_grad_norms[-1, :6] == 0) and np.all(ga.hidden_grad_norms[-1, :6] > 0)
