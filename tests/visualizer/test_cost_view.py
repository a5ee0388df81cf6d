"""The Cost view: its numbers come from the core methods, its memory from each method's model."""
import numpy as np
import plotly.graph_objects as go
import pytest

import core
from core import checkpointing as ck
from core.rtrl import memory_model as rtrl_memory
from visualizer import budget, callbacks, compute, cost, cost_figures, export, series, tradeoff, urlstate, views
from visualizer.plotstyle import decode

SMALL = urlstate.Params(arch=("rnn", "lstm", "gru"), seq_len=30, hidden=4, batch=2, task="sine", loss_on="all",
                        truncate=5, view="cost")


@pytest.fixture(scope="module")
def small():
    """The payload of SMALL, with time bounds that a loaded machine cannot reach (whole batch, every window)."""
    keys = [compute.run_key(SMALL, a) for a in SMALL.arch]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tradeoff, "TRADEOFF_SECONDS", 1e6)
        tradeoff.tradeoff.cache_clear()
        pl = cost.payload(keys)
    yield keys, pl
    tradeoff.tradeoff.cache_clear()


def test_the_sweep_spans_the_apps_sequence_lengths():
    assert cost.T_MIN == 4 and urlstate.SPEC["seq_len"][2] == cost.T_MAX
    grid = cost.t_grid()
    assert grid[0] == cost.T_MIN and grid[-1] == cost.T_MAX and len(grid) <= cost.T_POINTS


def test_every_point_is_the_methods_memory_model(small):
    _keys, pl = small
    key = pl.sweep.key
    cfg = cost._model(key).config
    assert [c.method for c in pl.sweep.curves] == list(cost.METHODS)
    for c in pl.sweep.curves:
        assert c.measured[0]  # the shortest sequence is always measured
        for T, mem, rec in zip(c.T, c.memory, c.recomputed, strict=True):
            assert mem == cost.memory_model(c.method, cfg, int(T), key.batch, key.window), (c.method, T)
            assert rec == cost.recomputed_model(c.method, int(T))
    bptt = pl.sweep.curves[0]
    assert bptt.memory[-1] == ck.bptt_memory_model(cfg, cost.T_MAX, key.batch)
    assert pl.sweep.curves[-1].memory[0] == rtrl_memory(cfg, key.batch)


def test_unmeasured_times_continue_the_last_measured_one_by_the_work_model(monkeypatch):
    monkeypatch.setattr(cost, "MEASURE_SECONDS", 0.0)
    key = cost.SweepKey("lstm", 1, 8, 1, 1, 2, 5, "all")
    cost.method_curve.cache_clear()
    try:
        full = cost.method_curve((key, "bptt"))
        rtrl = cost.method_curve((key, "rtrl"))
    finally:
        cost.method_curve.cache_clear()
    assert full.measured.tolist() == [True] + [False] * (len(full.T) - 1)
    cfg = cost._model(key).config
    w = [ck.work_model(cfg, int(T), 2, "bptt") for T in full.T]
    np.testing.assert_allclose(full.seconds[1:], full.seconds[0] * np.array(w[1:]) / w[0], rtol=1e-12)
    assert not rtrl.measured.any()  # even its first point would exceed a zero budget: all from the model
    from core.rtrl import flops_model
    np.testing.assert_allclose(rtrl.seconds, [budget.rtrl_seconds(flops_model(cfg, int(T), 2), int(T), 1)
                                              for T in rtrl.T], rtol=1e-12)


def test_truncation_numbers_are_the_cores(small):
    keys, pl = small
    for key, t in zip(keys, pl.tradeoffs, strict=True):
        task, model = compute.get_task(key.data), compute.get_model(key)
        y, loss_on, _ = compute.targets(task, key.data.loss_on)
        full = core.bptt(model, task.x, y, loss=task.loss, loss_on=loss_on)
        assert 5 in t.windows  # the app's window is among those compared
        i = list(t.windows).index(5)
        trunc = core.bptt(model, task.x, y, loss=task.loss, loss_on=loss_on, truncate=5)
        a = np.concatenate([trunc.grads[k].ravel() for k in full.grads])
        b = np.concatenate([full.grads[k].ravel() for k in full.grads])
        assert t.rel_error[i] == pytest.approx(np.linalg.norm(a - b) / np.linalg.norm(b), rel=1e-9)
        assert t.cosine[i] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), rel=1e-9)
        assert t.rel_error[0] > 1e-3 and t.rel_error[-1] < 1e-12  # k = 1 is biased, k = T is full BPTT
        assert np.all((t.cosine > -1 - 1e-12) & (t.cosine < 1 + 1e-12))
        assert {e[0] for e in t.exact} == {"budget", "sqrt", "rtrl"}
        for _method, _label, mem, err, _how in t.exact:
            assert err < 1e-12 and mem > 0
        assert t.full_memory == ck.bptt_memory_model(model.config, 30, 2)
        assert t.sequences == 2 and t.T == 30  # the whole batch and sequence
        np.testing.assert_array_equal(t.windows, tradeoff.windows_for(30, tradeoff.WINDOWS, 5))


def test_agreement_of_identical_and_opposite_gradients():
    g = {"a": np.array([1.0, 2.0]), "b": np.array([[3.0]])}
    assert tradeoff.agreement(g, g) == (pytest.approx(1.0), 0.0)
    neg = {k: -v for k, v in g.items()}
    c, e = tradeoff.agreement(neg, g)
    assert c == pytest.approx(-1.0) and e == pytest.approx(2.0)
    zero = {k: np.zeros_like(v) for k, v in g.items()}
    c, e = tradeoff.agreement(g, zero)
    assert np.isnan(c) and np.isnan(e)  # no reference direction: not a number to show


def test_agreement_matches_the_flattened_definition_without_flattened_copies():
    import tracemalloc
    rng = np.random.default_rng(3)
    ref = {f"w{i}": rng.standard_normal((300, 400)) for i in range(8)}
    g = {k: v + 1e-3 * rng.standard_normal(v.shape) for k, v in ref.items()}
    a, b = (np.concatenate([np.ravel(d[k]) for k in ref]) for d in (g, ref))
    tracemalloc.start()
    c, e = tradeoff.agreement(g, ref)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert c == pytest.approx(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), rel=1e-12)
    assert e == pytest.approx(np.linalg.norm(a - b) / np.linalg.norm(b), rel=1e-9)
    assert peak <= 3 * ref["w0"].nbytes < a.nbytes  # a few of one parameter's temporaries, no flattened copy
    bad = {**g, "w5": np.full((300, 400), np.inf)}
    assert all(np.isnan(tradeoff.agreement(bad, ref)))


def test_the_figure_draws_the_payloads_numbers(small):
    _keys, pl = small
    fig = cost_figures.cost_figure(pl)
    go.Figure(fig)
    measured = [t for t in fig["data"] if t.get("meta") == "measured" and t["yaxis"] == "y"]
    assert len(measured) == len(pl.sweep.curves)
    for trace, c in zip(measured, pl.sweep.curves, strict=True):
        np.testing.assert_array_equal(decode(trace["y"]), c.memory[c.measured] / 2**20)
        np.testing.assert_array_equal(decode(trace["x"]), c.T[c.measured])
    model = [t for t in fig["data"] if t.get("meta") == "model"]
    assert all("cost model" in t["name"] and t["line"]["dash"] == "dash" for t in model)
    errors = [t for t in fig["data"] if t.get("meta") == "rel-error"]
    for trace, t in zip(errors, pl.tradeoffs, strict=True):
        np.testing.assert_array_equal(decode(trace["customdata"]), t.rel_error)
    refs = {t["name"] for t in fig["data"] if t.get("meta") == "reference"}
    assert {"O(T)", "O(√T)", "O(1)"} <= refs


def test_the_caption_reads_its_numbers_from_the_payload(small):
    keys, pl = small
    text = cost.note(keys)
    full = pl.sweep.curves[0]
    assert cost._mib(full.memory[-1]) in text
    bud = pl.sweep.curves[3]
    assert f"recompute {int(bud.recomputed[-1])} steps" in text
    assert f"{ck.recomputed_steps(cost.T_MAX, cost.BUDGET_STATES - 1)} steps" in text
    for t in pl.tradeoffs:
        assert f"{t.name}: relative error" in text and f"cosine {t.cosine[0]:.3f}" in text


def test_several_layers_have_every_method():
    p = urlstate.Params(arch=("gru",), seq_len=10, hidden=3, batch=1, layers=2, task="sine", loss_on="all",
                        view="cost")
    keys = [compute.run_key(p, "gru")]
    pl = cost.payload(keys)
    assert [c.method for c in pl.sweep.curves] == list(cost.METHODS)
    rtrl = next(e for e in pl.tradeoffs[0].exact if e[0] == "rtrl")
    assert rtrl[3] < 1e-12 and rtrl[2] == rtrl_memory(compute.model_of(keys[0]).config, 1)
    go.Figure(cost_figures.cost_figure(pl))


def test_the_tab_the_exports_and_the_report_carry_the_view(small):
    params = SMALL
    fig, caption = callbacks.view(callbacks.store_data(params), "cost")
    assert caption.startswith(views.VIEWS["cost"].caption) and "Timings:" in caption
    assert any(t.get("meta") == "frontier" for t in fig["data"])
    exported = export.view_series(params)
    names = {s.quantity for s in exported if s.view == "cost"}
    assert {"bptt_memory_bytes", "rtrl_seconds", "truncated_relative_error", "budget_relative_error"} <= names
    assert "cost" in export.to_csv(exported)
    assert views.VIEWS["cost"].title in export.report(params)
    assert cost.payload([]) is None and cost.note([]) is None and series.cost_series(None, []) == []


def test_an_exploding_network_is_data_not_a_crash():
    p = urlstate.Params(arch=("rnn-relu", "gru"), seq_len=300, hidden=8, batch=2, task="adding",
                        init="identity", scale=3.0, view="cost")
    keys = [compute.run_key(p, a) for a in p.arch]
    pl = cost.payload(keys)
    relu = pl.tradeoffs[0]
    assert not np.all(np.isfinite(relu.rel_error))
    fig = cost_figures.cost_figure(pl)
    go.Figure(fig)
    trace = next(t for t in fig["data"] if t.get("meta") == "rel-error" and t["name"] == "RNN-relu")
    drawn = decode(trace["y"])
    assert np.all(np.isnan(drawn[np.isnan(relu.rel_error)]))  # a gap, never a point at the bottom
    assert "RNN-relu: its gradients overflowed" in cost.note(keys)
    assert np.all(np.isfinite(pl.tradeoffs[1].rel_error))


def test_a_tight_time_bound_compares_fewer_sequences_and_steps_and_says_so(monkeypatch):
    p = urlstate.Params(arch=("lstm",), seq_len=400, hidden=8, batch=4, task="sine", loss_on="all", view="cost")
    keys = [compute.run_key(p, "lstm")]
    monkeypatch.setattr(tradeoff, "TRADEOFF_SECONDS", 1e-6)
    tradeoff.tradeoff.cache_clear()
    try:
        t = tradeoff.tradeoff(keys[0])
        text = cost.note(keys)
    finally:
        tradeoff.tradeoff.cache_clear()
    assert t.sequences == 1 and t.T == 2 and t.T_full == 400 and len(t.windows) == 2  # k = 1, 2 of 2 steps
    assert "on the first 1 of 4 sequences and their first 2 steps" in text
    assert all(e[3] < 1e-12 for e in t.exact)


def test_windows_are_log_spaced_and_include_the_chosen_one():
    np.testing.assert_array_equal(tradeoff.windows_for(100, 3, None), [1, 10, 100])
    np.testing.assert_array_equal(tradeoff.windows_for(100, 3, 7), [1, 7, 10, 100])
    np.testing.assert_array_equal(tradeoff.windows_for(100, 3, 500), [1, 10, 100])  # beyond T: not a window


def test_the_view_for_a_given_model_in_a_notebook():
    from visualizer import notebook

    model = core.GRU(input_size=2, hidden_size=3, output_size=1)
    x = np.random.default_rng(0).standard_normal((16, 2, 2))
    fig = notebook.figure("cost", model, x)
    assert any(t.meta == "frontier" for t in fig.data)
    exported = notebook.series("cost", model, x)
    assert {s.arch for s in exported} == {"gru"}


def test_a_new_window_re_measures_only_the_truncated_curve(monkeypatch):
    monkeypatch.setattr(cost, "MEASURE_SECONDS", 0.0)
    key = cost.SweepKey("rnn", 1, 3, 1, 1, 1, 5, "all")
    a = cost.sweep(key)
    b = cost.sweep(cost.SweepKey("rnn", 1, 3, 1, 1, 1, 7, "all"))
    for ca, cb in zip(a.curves, b.curves, strict=True):
        assert (ca is cb) == (ca.method != "window")
    assert b.curves[1].label == "truncated, k=7"


@pytest.mark.parametrize("query", [
    "?arch=rnn,rnn-relu,lstm,gru&seq_len=2000&hidden=512&layers=4&batch=64",  # the documented maxima
    "?arch=gru,lstm&seq_len=2000&hidden=512&layers=4&batch=64",
    "?arch=rnn,lstm&seq_len=2000&hidden=256&batch=64",
    "?arch=rnn,rnn-relu,lstm,gru&seq_len=2000&hidden=64&batch=64",
    "?arch=lstm&seq_len=500&hidden=128&batch=16&truncate=7",
])
def test_the_planned_work_fits_the_views_seconds(query):
    params, _ = urlstate.parse_query(query)
    keys = [compute.run_key(params, a) for a in params.arch]
    sk = cost.sweep_key(keys[0])
    cfg = cost._model(sk).config
    assert cost.sweep_seconds(cfg, sk.batch, sk.layers, sk.window) <= cost.MEASURE_SECONDS + 1e-12 or all(
        n <= 1 for n in cost.sweep_plan(cfg, sk.batch, sk.layers, sk.window).values())  # or only the shortest T
    shares = tradeoff.shares(keys)
    assert sum(shares) <= tradeoff.ARCHS * tradeoff.TRADEOFF_SECONDS + 1e-12
    for key, share in zip(keys, shares, strict=True):
        nb, steps, count, _tp = tradeoff.tradeoff_plan(*tradeoff.sizes(key), share)
        assert 1 <= nb <= params.batch and 2 <= steps <= params.seq_len and 3 <= count <= tradeoff.WINDOWS
        assert tradeoff.tradeoff_seconds(*tradeoff.sizes(key), share) <= share + 1e-12 or (nb, steps) == (1, 2)
    assert cost.planned_seconds(keys) <= budget.VIEW_SECONDS


def test_the_plan_grows_with_the_seconds_it_is_given():
    cfg = core.build("lstm", input_size=1, hidden_size=64, output_size=1).config
    small = tradeoff.tradeoff_plan(cfg, 2000, 16, None, 0.05)
    large = tradeoff.tradeoff_plan(cfg, 2000, 16, None, 50.0)
    assert small[:2] < large[:2] and large[:3] == (16, 2000, tradeoff.WINDOWS)
    assert tradeoff.comparison_seconds(cfg, 16, 2000, tradeoff.windows_for(2000, tradeoff.WINDOWS, None)) <= 50.0
    plan = cost.sweep_plan(cfg, 1, 1)
    assert plan["bptt"] >= plan["sqrt"] >= 1 and plan["rtrl"] <= plan["bptt"]
