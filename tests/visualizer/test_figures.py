import numpy as np
import plotly.graph_objects as go
import pytest

from visualizer import figures, heatmaps, plotstyle
from visualizer.compute import GradFlow
from visualizer.plotstyle import COLORS, decode


def flow(arch, name, norms, H=3):
    norms = np.atleast_2d(np.asarray(norms, dtype=float))
    L, T = norms.shape
    return GradFlow(arch=arch, name=name, hidden=H, num_params=10, loss=0.5, hidden_grad_norms=norms,
                    hidden_grad_units=np.ones((L, T, H)), nonfinite_step=None, nonfinite_grad_step=None,
                    sigma_max=0.9, loss_note=None)


def named(fig):
    return [t for t in fig["data"] if t.get("showlegend", True) and t["type"] == "scatter"]


def test_grad_norm_traces_are_named_and_have_one_point_per_step():
    T = 50
    flows = [flow("rnn", "RNN", np.logspace(-20, 0, T)), flow("rnn-relu", "RNN-relu", np.logspace(-5, 0, T)),
             flow("lstm", "LSTM", np.logspace(-3, 0, T)), flow("gru", "GRU", np.logspace(-2, 0, T))]
    fig = figures.grad_norm_figure(flows)
    go.Figure(fig)  # valid plotly
    traces = named(fig)
    assert [t["name"] for t in traces] == ["RNN", "RNN-relu", "LSTM", "GRU"]
    for t, f in zip(traces, flows, strict=False):
        assert len(decode(t["x"])) == T and len(decode(t["y"])) == T
        np.testing.assert_array_equal(decode(t["y"]), f.hidden_grad_norms[-1])
        assert t["line"]["color"] == COLORS[f.arch]
        assert "%{y:.6g}" in t["hovertemplate"]


def test_one_shared_absolute_log_axis_covers_every_trace():
    fig = figures.grad_norm_figure([flow("rnn", "RNN", [1e-30, 1e-10, 1.0]), flow("lstm", "LSTM", [0.1, 0.5, 1.0])])
    y = fig["layout"]["yaxis"]
    assert y["type"] == "log"
    lo, hi = y["range"]
    assert lo <= -30 and hi >= 0
    assert "yaxis2" not in fig["layout"]


def test_nonfinite_and_zero_values_become_hoverable_markers():
    norms = np.array([np.nan, np.inf, 1e-3, 0.0, 1.0])
    fig = figures.grad_norm_figure([flow("rnn", "RNN", norms)])
    main, *special = fig["data"]
    y = decode(main["y"])
    assert len(y) == 5 and np.isnan(y[[0, 1, 3]]).all() and y[2] == 1e-3
    top = next(t for t in special if t["name"].endswith("inf/NaN"))
    assert list(decode(top["x"])) == [0, 1] and top["customdata"] == ["NaN", "inf"]
    assert top["yaxis"] == "y2" and top["y"] == ["RNN", "RNN"]  # in the overflow strip, not on the log axis
    assert "%{customdata}" in top["hovertemplate"]
    bottom = next(t for t in special if t["name"].endswith(": 0"))
    assert list(decode(bottom["x"])) == [3] and bottom["yaxis"] == "y3"  # in the underflow strip
    go.Figure(fig)


def test_exploded_steps_are_marked_in_a_labelled_strip_above_the_log_axis():
    T = 8
    rnn = np.logspace(-3, 0, T)
    rnn[:3] = [np.nan, np.inf, np.inf]
    lstm = np.vstack([np.logspace(-2, 0, T), np.logspace(-1, 0, T)])  # 2 layers
    lstm[0, 5] = np.nan  # the lower layer only
    gru = np.logspace(-1, 0, T)  # finite: no row in the strip
    fig = figures.grad_norm_figure([flow("rnn", "RNN", rnn), flow("lstm", "LSTM", lstm), flow("gru", "GRU", gru)])
    go.Figure(fig)
    layout = fig["layout"]
    main_axis, strip = layout["yaxis"], layout["yaxis2"]
    assert main_axis["type"] == "log" and strip["type"] == "category"  # still one log axis
    assert strip["domain"][0] > main_axis["domain"][1]  # the strip lies above the plot area
    assert strip["tickvals"] == ["RNN", "LSTM"] and strip["categoryarray"] == ["LSTM", "RNN"]  # RNN on top
    assert any("overflow" in a["text"] and "inf" in a["text"] and "NaN" in a["text"] for a in layout["annotations"])
    marks = [t for t in fig["data"] if t.get("meta") == "overflow"]
    assert {t["name"] for t in marks} == {"RNN: inf/NaN", "LSTM · layer 1: inf/NaN"}
    for t in fig["data"]:
        if t.get("yaxis", "y") == "y":  # nothing on the log axis is placed at a value for inf/NaN
            assert np.all(np.isfinite(decode(t["y"])) | np.isnan(decode(t["y"])))
            assert "inf/NaN" not in t["name"]
    rnn_marks = next(t for t in marks if t["name"] == "RNN: inf/NaN")
    assert list(decode(rnn_marks["x"])) == [0, 1, 2] and rnn_marks["customdata"] == ["NaN", "inf", "inf"]
    assert rnn_marks["y"] == ["RNN"] * 3 and rnn_marks["yaxis"] == "y2" and rnn_marks["xaxis"] == "x"
    assert rnn_marks["marker"]["symbol"][0] != rnn_marks["marker"]["symbol"][1]  # NaN and inf look different
    main = next(t for t in fig["data"] if t["name"] == "RNN")
    y = decode(main["y"])
    assert np.isnan(y[:3]).all() and np.isfinite(y[3:]).all()  # a gap in the curve, no value drawn
    assert main_axis["range"][1] == pytest.approx(0.3)  # the log axis covers the finite values only (max 1 + padding)
    lstm_marks = next(t for t in marks if t["name"].startswith("LSTM"))
    assert list(decode(lstm_marks["x"])) == [5] and lstm_marks["y"] == ["LSTM"]


def test_no_overflow_strip_without_nonfinite_values():
    fig = figures.grad_norm_figure([flow("rnn", "RNN", [1e-3, 0.0, 1.0])])
    assert "yaxis2" not in fig["layout"] and not any(t.get("meta") == "overflow" for t in fig["data"])


def test_lower_layers_are_dotted_and_named_by_layer():
    fig = figures.grad_norm_figure([flow("gru", "GRU", [[1e-3, 1.0], [1e-2, 1.0]])])
    names = [t["name"] for t in fig["data"]]
    assert names == ["GRU", "GRU · layer 1"]
    assert fig["data"][1]["line"]["dash"] == "dot"


def test_truncation_lines():
    fig = figures.grad_norm_figure([flow("rnn", "RNN", np.ones(10))], truncate=3)
    assert [s["x0"] for s in fig["layout"]["shapes"]] == [2.5, 5.5, 8.5]


def test_empty_selection_shows_a_message():
    for builder in (figures.grad_norm_figure, figures.jacobian_figure, heatmaps.heatmap_figure,
                    figures.spectra_figure, figures.gates_figure, heatmaps.connectivity_figure):
        fig = builder([])
        assert fig["data"] == [] and "Pick at least one" in fig["layout"]["annotations"][0]["text"]
        go.Figure(fig)


def series(T, lo=-3):
    m = np.logspace(lo, 0, T)[::-1]
    return {"median": m, "min": m / 2, "max": m * 2}


def test_jacobian_figure_has_fit_references_and_nothing_over_the_data():
    k = np.arange(30)
    items = [{"arch": "rnn", "name": "RNN", "band": True, **series(30), "rate": 0.79, "fit": 0.79 ** k,
              "reference": 1.3 ** k, "sigma": 1.3, "rho_reference": 0.8 ** k, "rho": 0.8}]
    fig = figures.jacobian_figure(items)
    go.Figure(fig)
    names = {t.get("meta"): t.get("name") for t in fig["data"]}
    assert names["main"] == "RNN" and names["fit"] == "RNN fit: ×0.79 per step"
    # the range tops at max * 10^0.3 = 10^0.6; 1.3^k passes it after k = 5 (1.3^6 = 4.8): said in the legend
    assert "(γσ₁)<sup>k</sup> = 1.3<sup>k</sup>" in names["reference"]
    assert names["reference"].endswith("(off scale beyond k = 5)")
    assert "ρ(W<sub>hh</sub>)<sup>k</sup> = 0.8<sup>k</sup>" in names["rho-reference"]
    assert "off scale" not in names["rho-reference"]  # 0.8^29 = 1.5e-3 is inside the range
    assert fig["layout"]["shapes"][0]["y0"] == 1  # the norm-1 line
    assert not fig["layout"].get("annotations")  # no text box over the lines
    assert fig["layout"]["xaxis"]["range"] == [0, 29]
    assert sum(1 for t in fig["data"] if t.get("fill") == "tonexty") == 1
    gated = figures.jacobian_figure([{**items[0], "arch": "lstm", "name": "LSTM", "reference": None,
                                      "rho_reference": None}])
    assert {t.get("meta") for t in gated["data"]} >= {"main", "fit"}
    assert not {"reference", "rho-reference"} & {t.get("meta") for t in gated["data"]}


def test_heatmaps_share_one_colour_scale():
    items = [{"arch": a, "name": a.upper(), "log10": np.log10(np.full((5, 4), v)), "values": np.full((5, 4), v),
              "t": np.arange(5), "bin": 1} for a, v in (("rnn", 1e-8), ("gru", 1e-2))]
    fig = heatmaps.heatmap_figure(items)
    go.Figure(fig)
    assert [t["coloraxis"] for t in fig["data"]] == ["coloraxis"]  # one map holds both architectures
    ca = fig["layout"]["coloraxis"]
    assert ca["cmin"] == pytest.approx(-8) and ca["cmax"] == pytest.approx(-2)
    z = decode(fig["data"][0]["z"])
    assert z.shape[1] == 5 and z.shape[0] > 8  # units (and the empty rows between bands) x time
    np.testing.assert_allclose(z[:4], -2, rtol=1e-6)  # the second architecture's band is below the first
    np.testing.assert_allclose(z[-4:], -8, rtol=1e-6)


def _heat_items(shapes, T=6, seed=0):
    rng = np.random.default_rng(seed)
    items = []
    for a, H in shapes:
        v = 10.0 ** rng.uniform(-300, 0, (T, H))
        items.append({"arch": a, "name": a.upper(), "values": v, "t": np.arange(T), "bin": 1})
    return items


def _with_log10(items):
    for it in items:
        v = it["values"]
        it["log10"] = np.where(np.isfinite(v) & (v > 0), np.log10(np.where(v > 0, v, 1.0)), np.nan)
    return items


def test_heatmap_bands_are_one_trace_on_one_pair_of_axes_with_exact_hover():
    items = _with_log10(_heat_items([("rnn", 4), ("lstm", 3), ("gru", 4)]))
    fig = heatmaps.heatmap_figure(items)
    go.Figure(fig)
    assert len(fig["data"]) == 1 and not any(k.startswith(("xaxis2", "yaxis2")) for k in fig["layout"])
    trace = fig["data"][0]
    rows, cd, z = trace["y"], decode(trace["customdata"]), decode(trace["z"])
    assert cd.shape == z.shape == (len(rows), 6)
    for it in items:  # each architecture's rows: named, exact float64 values, unit 1 at the bottom
        H = it["values"].shape[1]
        first = rows.index(f"{it['name']} · unit 1")
        assert rows[first:first + H] == [f"{it['name']} · unit {u}" for u in range(1, H + 1)]
        np.testing.assert_array_equal(cd[first:first + H], it["values"].T)
    assert rows.index("RNN · unit 1") > rows.index("LSTM · unit 3") > rows.index("GRU · unit 4")  # top to bottom
    gaps = [i for i, r in enumerate(rows) if "unit" not in r]
    assert gaps and np.isnan(z[gaps]).all() and trace["hoverongaps"] is False  # empty rows have no hover
    assert not np.isnan(np.delete(z, gaps, axis=0)).any()  # every unit's cell has a colour and a hover
    assert trace["hovertemplate"].startswith("%{y}, t=%{x}: %{customdata:.6g}")
    names = [a["text"].replace("<b>", "").replace("</b>", "") for a in fig["layout"]["annotations"]]
    assert names == ["RNN", "LSTM", "GRU"]
    y = fig["layout"]["yaxis"]
    assert y["type"] == "category" and y["ticktext"].count("1") == 3 and len(y["tickvals"]) == len(y["ticktext"])
    assert all(v in rows for v in y["tickvals"])


def test_heatmap_zero_and_nonfinite_cells_get_labelled_colours_of_their_own():
    items = _heat_items([("rnn", 3), ("gru", 3)])
    items[0]["values"][1, 2] = np.inf
    items[0]["values"][2, 2] = np.nan
    items[1]["values"][0, 0] = 0.0
    fig = heatmaps.heatmap_figure(_with_log10(items))
    go.Figure(fig)
    ca = fig["layout"]["coloraxis"]
    z, rows = decode(fig["data"][0]["z"]), fig["data"][0]["y"]
    cd = decode(fig["data"][0]["customdata"])
    r = rows.index("RNN · unit 3")
    assert z[r, 1] == pytest.approx(ca["cmax"]) and z[r, 2] == pytest.approx(ca["cmax"])
    assert np.isinf(cd[r, 1]) and np.isnan(cd[r, 2])  # the hover shows inf / nan
    g = rows.index("GRU · unit 1")
    assert z[g, 0] == pytest.approx(ca["cmin"]) and cd[g, 0] == 0
    finite = [np.log10(it["values"][np.isfinite(it["values"]) & (it["values"] > 0)]) for it in items]
    lo, hi = min(f.min() for f in finite), max(f.max() for f in finite)
    assert ca["cmin"] < lo - 1 and ca["cmax"] > hi + 1  # the slots lie outside the finite values' range
    bar = ca["colorbar"]
    assert bar["ticktext"][0] == "0" and bar["ticktext"][-1] == "inf/NaN"
    assert ca["cmin"] < bar["tickvals"][0] < lo and hi < bar["tickvals"][-1] < ca["cmax"]
    colours = [c for _, c in ca["colorscale"]]
    assert colours[0] == colours[1] != colours[2] and colours[-1] == colours[-2] != colours[-3]


def test_heatmap_bands_binned_differently_share_one_pair_of_axes():
    items = _with_log10(_heat_items([("rnn", 4), ("lstm", 2)]))
    items[1]["values"] = items[1]["values"][::2]
    items[1]["t"], items[1]["bin"] = np.arange(0, 6, 2), 2
    fig = heatmaps.heatmap_figure(_with_log10(items))
    go.Figure(fig)
    assert len(fig["data"]) == 2 and all("xaxis" not in t and "yaxis" not in t for t in fig["data"])
    rnn, lstm = fig["data"]
    assert decode(lstm["y"]).max() < decode(rnn["y"]).min() - 1
    cd = decode(lstm["customdata"])
    np.testing.assert_array_equal(cd[..., 1], items[1]["values"].T)
    np.testing.assert_array_equal(cd[:, 0, 0], [1, 2])
    assert "unit %{customdata[0]}" in lstm["hovertemplate"]
    assert "max over 2 steps" in fig["layout"]["annotations"][1]["text"]


def test_connectivity_small_multiples():
    c = np.tril(np.ones((6, 6)))
    c[c == 0] = np.nan
    items = [{"arch": a, "name": a.upper(), "log10": np.log10(c), "values": c, "ticks": np.arange(6), "bin": 1}
             for a in ("rnn", "lstm", "gru")]
    fig = heatmaps.connectivity_figure(items)
    go.Figure(fig)
    assert [t["xaxis"] for t in fig["data"]] == ["x", "x2", "x3"]
    assert fig["layout"]["yaxis"]["range"] == [5.5, -0.5]  # step 0 at the top, every row whole


def test_spectra_figure():
    items = [{"arch": "lstm", "name": "LSTM", "weights": np.array([2.0, 1.0, 0.5]), "threshold": 1.0,
              "step_max": np.array([1.0, 0.9, np.nan]), "step_min": np.array([0.1, 0.2, np.nan])}]
    fig = figures.spectra_figure(items)
    go.Figure(fig)
    assert fig["data"][0]["xaxis"] == "x" and fig["data"][1]["xaxis"] == "x2"
    assert [s["y0"] for s in fig["layout"]["shapes"] if s["type"] == "line"] == [1.0, 1.0]
    assert any(t["name"].endswith("inf/NaN") for t in fig["data"])


def test_spectra_marks_inf_nan_and_zeros_in_labelled_strips_as_the_other_views_do():
    dead = np.array([1.0, 0.5, 0.0, 0.0, np.nan])  # a singular step, then overflow
    items = [{"arch": "rnn-relu", "name": "RNN-relu", "weights": np.array([2.0, 1.0]), "threshold": 1.0,
              "step_max": np.array([2.0, 1.5, 1.0, 0.0, np.inf]), "step_min": dead, "t": np.arange(0, 10, 2)},
             {"arch": "gru", "name": "GRU", "weights": np.array([1.0, 0.5]), "threshold": None,
              "step_max": np.full(5, 0.9), "step_min": np.full(5, 0.1), "t": np.arange(0, 10, 2)}]
    fig = figures.spectra_figure(items)
    go.Figure(fig)
    layout = fig["layout"]
    over, under, main = layout["yaxis3"], layout["yaxis4"], layout["yaxis2"]
    assert over["tickvals"] == ["RNN-relu"] and under["tickvals"] == ["RNN-relu"]  # the GRU is finite and nonzero
    assert over["anchor"] == under["anchor"] == "x2" and layout["xaxis2"]["anchor"] == "y4"
    assert under["domain"][1] < main["domain"][0] < main["domain"][1] < over["domain"][0]
    assert layout["yaxis"].get("domain", [0, 1]) == [0, 1]  # the left panel keeps its height
    marks = {t["name"]: t for t in fig["data"] if t.get("meta") in ("overflow", "underflow")}
    assert list(decode(marks["RNN-relu σ<sub>max</sub>: inf/NaN"]["x"])) == [8]
    assert marks["RNN-relu σ<sub>max</sub>: inf/NaN"]["customdata"] == ["inf"]
    assert marks["RNN-relu σ<sub>min</sub>: inf/NaN"]["customdata"] == ["NaN"]
    assert list(decode(marks["RNN-relu σ<sub>max</sub>: 0"]["x"])) == [6]
    assert list(decode(marks["RNN-relu σ<sub>min</sub>: 0"]["x"])) == [4, 6]
    assert {t["yaxis"] for t in marks.values() if t["meta"] == "overflow"} == {"y3"}
    assert {t["yaxis"] for t in marks.values() if t["meta"] == "underflow"} == {"y4"}
    notes = " ".join(a["text"] for a in layout["annotations"])
    assert "inf" in notes and "NaN" in notes and "exactly 0" in notes and "singular" in notes
    for t in fig["data"]:  # on the log axis: finite positive values or gaps only, no marker at a made-up value
        if t.get("yaxis") == "y2":
            y = decode(t["y"])
            assert np.all((np.isfinite(y) & (y > 0)) | np.isnan(y)) and t.get("meta") != "zero"
    clean = figures.spectra_figure([items[1]])
    assert "yaxis3" not in clean["layout"] and "yaxis4" not in clean["layout"]


def test_gates_figure_shows_the_gated_path_and_the_whole():
    items = [{"arch": "rnn", "name": "RNN", "label": "‖J‖", "band": False, **series(10), "whole": None},
             {"arch": "lstm", "name": "LSTM", "label": "cell path ∏ f", "band": False, **series(10),
              "whole": np.logspace(2, 0, 10)}]
    fig = figures.gates_figure(items)
    go.Figure(fig)
    names = [(t["name"], t.get("meta")) for t in fig["data"] if t.get("meta") in ("main", "whole")]
    assert names == [("RNN: ‖J‖", "main"), ("LSTM: cell path ∏ f", "main"),
                     ("LSTM: whole ‖∂s<sub>T−1</sub>/∂s<sub>t</sub>‖", "whole")]
    assert fig["layout"]["yaxis"]["range"][1] >= 2  # the axis holds the whole norm too (10^2)


def test_typed_arrays_round_trip():
    a = np.array([[1.0, np.nan], [np.inf, -2.5]])
    np.testing.assert_array_equal(decode(plotstyle.arr(a)), a)
    assert plotstyle.arr(a)["shape"] == "2,2"


def test_log_axis_labels_whole_decades_in_round_steps():
    assert [plotstyle.decade_step(s) for s in (2, 9, 10, 30, 100, 320, 2000)] == [1, 1, 2, 5, 20, 50, 100]
    fig = figures.grad_norm_figure([flow("rnn", "RNN", [1e-300, 1.0])])
    assert fig["layout"]["yaxis"]["dtick"] == 50


@pytest.mark.parametrize("view", ["jacobian", "gates"])
def test_jacobian_and_gates_views_mark_overflow_in_the_strip_not_on_the_log_axis(view):
    exploded = np.logspace(0, 3, 12)
    exploded[8:] = [np.inf, np.inf, np.nan, np.nan]
    items = [{"arch": "rnn-relu", "name": "RNN-relu", "label": "∏ ‖J‖", "band": True, "median": exploded,
              "min": exploded, "max": exploded, "reference": None, "sigma": None, "verdict": None},
             {"arch": "lstm", "name": "LSTM", "label": "cell path ∏ f", "band": False, **series(12),
              "reference": None, "sigma": None, "verdict": None}]
    fig = (figures.jacobian_figure if view == "jacobian" else figures.gates_figure)(items)
    go.Figure(fig)
    layout = fig["layout"]
    assert layout["yaxis"]["type"] == "log" and layout["yaxis2"]["type"] == "category"
    assert layout["yaxis2"]["domain"][0] > layout["yaxis"]["domain"][1] and layout["yaxis2"]["tickvals"] == ["RNN-relu"]
    marks = [t for t in fig["data"] if t.get("meta") == "overflow"]
    assert len(marks) == 1 and list(decode(marks[0]["x"])) == [8, 9, 10, 11]
    assert marks[0]["customdata"] == ["inf", "inf", "NaN", "NaN"] and marks[0]["yaxis"] == "y2"
    for t in fig["data"]:
        if t.get("yaxis", "y") == "y":  # on the log axis: finite values or gaps only
            assert np.all(np.isfinite(decode(t["y"])) | np.isnan(decode(t["y"])))
    at_one = [s["y0"] for s in layout.get("shapes", []) if s.get("y0") == 1]
    at_one += [t["y"][0] for t in fig["data"] if t.get("meta") == "threshold"]
    assert at_one == [1]  # the reference line at 1 is still there
    finite = figures.gates_figure([items[1]])
    assert "yaxis2" not in finite["layout"]


def _flow(name, arch, norms):
    from visualizer.compute import GradFlow
    norms = np.atleast_2d(np.asarray(norms, dtype=float))
    return GradFlow(arch=arch, name=name, hidden=3, num_params=10, loss=0.1, hidden_grad_norms=norms,
                    hidden_grad_units=norms[..., None], nonfinite_step=None, nonfinite_grad_step=None,
                    sigma_max=1.0, loss_note=None)


@pytest.mark.parametrize("truncate", [None, 5])
def test_view1_labels_exact_zeros_in_an_underflow_strip(truncate):
    y = np.logspace(-300, 0, 12)
    y[:4] = 0.0  # underflowed (or cut by truncation): tiny, not zero
    fig = figures.grad_norm_figure([_flow("RNN", "rnn", y), _flow("GRU", "gru", np.logspace(-2, 0, 12))],
                                   truncate=truncate)
    go.Figure(fig)
    layout = fig["layout"]
    strip = layout["yaxis3"]
    assert strip["tickvals"] == ["RNN"] and strip["domain"][1] < layout["yaxis"]["domain"][0]
    assert layout["xaxis"]["anchor"] == "y3"  # the time axis sits under the strip
    marks = [t for t in fig["data"] if t.get("meta") == "underflow"]
    assert len(marks) == 1 and list(decode(marks[0]["x"])) == [0, 1, 2, 3] and marks[0]["yaxis"] == "y3"
    title = " ".join(a["text"] for a in layout["annotations"])
    assert "exactly 0" in title and "not zero" in title
    assert ("truncation" in title) == bool(truncate)
    assert ("truncation" in marks[0]["hovertemplate"]) == bool(truncate)
    for t in fig["data"]:  # nothing drawn at a made-up value of the log axis
        if t.get("yaxis", "y") == "y" and t.get("name", "").startswith("RNN"):
            assert not t.get("name", "").endswith(": zero")
    clean = figures.grad_norm_figure([_flow("GRU", "gru", np.logspace(-2, 0, 12))])
    assert "yaxis3" not in clean["layout"]


def test_view1_with_both_strips():
    y = np.logspace(-300, 0, 12)
    y[:2] = 0.0
    z = np.logspace(0, 300, 12)
    z[:2] = np.inf
    fig = figures.grad_norm_figure([_flow("RNN", "rnn", y), _flow("RNN-relu", "rnn-relu", z)])
    go.Figure(fig)
    lo, hi = fig["layout"]["yaxis"]["domain"]
    assert fig["layout"]["yaxis3"]["domain"][1] < lo < hi < fig["layout"]["yaxis2"]["domain"][0]


@pytest.mark.parametrize("view", ["jacobian", "gates"])
def test_jacobian_and_gates_views_with_both_strips_keep_the_plot_between_them(view):
    underflowed = np.logspace(0, -300, 12)
    underflowed[9:] = 0.0
    exploded = np.logspace(0, 300, 12)
    exploded[10:] = np.inf
    items = [{"arch": "rnn", "name": "RNN", "label": "‖J‖", "band": False, "median": underflowed,
              "min": underflowed, "max": underflowed, "whole": None},
             {"arch": "rnn-relu", "name": "RNN-relu", "label": "‖J‖", "band": False, "median": exploded,
              "min": exploded, "max": exploded, "whole": None}]
    fig = (figures.jacobian_figure if view == "jacobian" else figures.gates_figure)(items)
    go.Figure(fig)
    layout = fig["layout"]
    lo, hi = layout["yaxis"]["domain"]  # the log axis' lowest tick never sits on the underflow strip's row label
    assert layout["yaxis3"]["domain"][1] + 0.05 < lo < hi < layout["yaxis2"]["domain"][0]


@pytest.mark.parametrize("view", ["jacobian", "gates"])
def test_jacobian_and_gates_views_put_exact_zeros_in_the_underflow_strip(view):
    underflowed = np.logspace(0, -300, 12)
    underflowed[9:] = 0.0
    items = [{"arch": "rnn", "name": "RNN", "label": "‖J‖", "band": False, "median": underflowed,
              "min": underflowed, "max": underflowed, "whole": None},
             {"arch": "lstm", "name": "LSTM", "label": "cell path ∏ f", "band": False, **series(12), "whole": None}]
    fig = (figures.jacobian_figure if view == "jacobian" else figures.gates_figure)(items)
    go.Figure(fig)
    layout = fig["layout"]
    assert layout["yaxis3"]["tickvals"] == ["RNN"] and layout["xaxis"]["anchor"] == "y3"
    marks = [t for t in fig["data"] if t.get("meta") == "underflow"]
    assert len(marks) == 1 and list(decode(marks[0]["x"])) == [9, 10, 11]
    assert not any(t["name"].endswith(": zero") for t in fig["data"] if t["name"].startswith("RNN"))
    assert "yaxis3" not in (figures.jacobian_figure if view == "jacobian" else figures.gates_figure)(
        [items[1]])["layout"]
