import numpy as np
import plotly.graph_objects as go
import pytest

from visualizer import figures
from visualizer.compute import GradFlow
from visualizer.figures import COLORS, decode


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
    for t, f in zip(traces, flows):
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
    lo, hi = fig["layout"]["yaxis"]["range"]
    bottom = next(t for t in special if t["name"].endswith("zero"))
    assert list(decode(bottom["x"])) == [3] and np.log10(decode(bottom["y"])[0]) >= lo
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
    lo, hi = main_axis["range"]
    assert hi == pytest.approx(0.3)  # the log axis covers the finite values only (max 1 + padding)
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
    for builder in (figures.grad_norm_figure, figures.jacobian_figure, figures.heatmap_figure,
                    figures.spectra_figure, figures.gates_figure, figures.connectivity_figure):
        fig = builder([])
        assert fig["data"] == [] and "Pick at least one" in fig["layout"]["annotations"][0]["text"]
        go.Figure(fig)


def series(T, lo=-3):
    m = np.logspace(lo, 0, T)[::-1]
    return {"median": m, "min": m / 2, "max": m * 2}


def test_jacobian_figure_has_reference_slope_threshold_and_verdict():
    items = [{"arch": "rnn", "name": "RNN", "band": True, **series(30), "reference": 0.9 ** np.arange(30),
              "sigma": 0.9, "verdict": "RNN: σ₁ = 0.9 < 1/γ = 1: vanishing is guaranteed"}]
    fig = figures.jacobian_figure(items)
    go.Figure(fig)
    names = [t.get("name") for t in fig["data"]]
    assert "RNN" in names and any(n and "σ₁" in n for n in names)
    assert fig["layout"]["shapes"][0]["y0"] == 1  # the 1/gamma slope-0 line
    assert any("vanishing is guaranteed" in a["text"] for a in fig["layout"]["annotations"])
    assert sum(1 for t in fig["data"] if t.get("fill") == "tonexty") == 1


def test_heatmaps_share_one_colour_scale():
    items = [{"arch": a, "name": a.upper(), "log10": np.log10(np.full((5, 4), v)), "values": np.full((5, 4), v),
              "t": np.arange(5), "bin": 1} for a, v in (("rnn", 1e-8), ("gru", 1e-2))]
    fig = figures.heatmap_figure(items)
    go.Figure(fig)
    assert [t["coloraxis"] for t in fig["data"]] == ["coloraxis", "coloraxis"]
    ca = fig["layout"]["coloraxis"]
    assert ca["cmin"] == pytest.approx(-8) and ca["cmax"] == pytest.approx(-2)
    assert decode(fig["data"][0]["z"]).shape == (4, 5)  # units x time
    rnn, gru = (decode(t["y"]) for t in fig["data"])
    assert gru.max() < rnn.min()  # the second architecture's map is drawn below the first


def test_heatmap_bands_share_one_pair_of_axes_and_hover_exact_values():
    rng = np.random.default_rng(0)
    items = []
    for a, H in (("rnn", 4), ("lstm", 3), ("gru", 4)):
        v = 10.0 ** rng.uniform(-300, 0, (6, H))
        v[2, 1] = np.inf
        items.append({"arch": a, "name": a.upper(), "log10": np.where(np.isfinite(v), np.log10(v), np.nan),
                      "values": v, "t": np.arange(6), "bin": 1})
    fig = figures.heatmap_figure(items)
    go.Figure(fig)
    assert not any(k.startswith(("xaxis2", "yaxis2")) for k in fig["layout"])
    assert all(t.get("xaxis", "x") == "x" and t.get("yaxis", "y") == "y" for t in fig["data"])
    bands = []
    for t, it in zip(fig["data"], items):
        H = it["values"].shape[1]
        cd = decode(t["customdata"])  # (units, steps, [unit, value])
        np.testing.assert_array_equal(cd[..., 1], it["values"].T)  # exact float64, inf kept
        np.testing.assert_array_equal(cd[..., 0], np.arange(1, H + 1)[:, None] * np.ones((1, 6)))
        assert t["name"] in t["hovertemplate"] and "unit %{customdata[0]}" in t["hovertemplate"]
        assert "t=%{x}" in t["hovertemplate"] and "%{customdata[1]:.6g}" in t["hovertemplate"]
        y = decode(t["y"])
        assert len(y) == H and np.all(np.diff(y) == 1)
        bands.append((y.min(), y.max()))
    assert bands[0][0] > bands[1][1] + 1 and bands[1][0] > bands[2][1] + 1  # top to bottom, empty rows between
    names = [a["text"] for a in fig["layout"]["annotations"]]
    assert [n.replace("<b>", "").replace("</b>", "") for n in names] == ["RNN", "LSTM", "GRU"]
    yaxis = fig["layout"]["yaxis"]
    assert yaxis["ticktext"].count("1") == 3 and len(yaxis["tickvals"]) == len(yaxis["ticktext"])


def test_connectivity_small_multiples():
    c = np.tril(np.ones((6, 6)))
    c[c == 0] = np.nan
    items = [{"arch": a, "name": a.upper(), "log10": np.log10(c), "values": c, "ticks": np.arange(6), "bin": 1}
             for a in ("rnn", "lstm", "gru")]
    fig = figures.connectivity_figure(items)
    go.Figure(fig)
    assert [t["xaxis"] for t in fig["data"]] == ["x", "x2", "x3"]
    assert fig["layout"]["yaxis"]["autorange"] == "reversed"


def test_spectra_figure():
    items = [{"arch": "lstm", "name": "LSTM", "weights": np.array([2.0, 1.0, 0.5]), "threshold": 1.0,
              "step_max": np.array([1.0, 0.9, np.nan]), "step_min": np.array([0.1, 0.2, np.nan])}]
    fig = figures.spectra_figure(items)
    go.Figure(fig)
    assert fig["data"][0]["xaxis"] == "x" and fig["data"][1]["xaxis"] == "x2"
    assert [s["y0"] for s in fig["layout"]["shapes"]] == [1.0, 1.0]
    assert any(t["name"].endswith("inf/NaN") for t in fig["data"])


def test_gates_figure():
    items = [{"arch": "lstm", "name": "LSTM", "label": "∏ forget gate f", "band": False, **series(10)}]
    fig = figures.gates_figure(items)
    go.Figure(fig)
    assert fig["data"][0]["name"] == "LSTM: ∏ forget gate f"


def test_typed_arrays_round_trip():
    a = np.array([[1.0, np.nan], [np.inf, -2.5]])
    np.testing.assert_array_equal(decode(figures.arr(a)), a)
    assert figures.arr(a)["shape"] == "2,2"


def test_log_axis_labels_whole_decades_in_round_steps():
    assert [figures.decade_step(s) for s in (2, 9, 10, 30, 100, 320, 2000)] == [1, 1, 2, 5, 20, 50, 100]
    fig = figures.grad_norm_figure([flow("rnn", "RNN", [1e-300, 1.0])])
    assert fig["layout"]["yaxis"]["dtick"] == 50
