"""The shared figure look: per-view uirevision, room for the modebar, marker symbols per
architecture, presentation scaling, wrapped messages."""
import copy

import numpy as np
import plotly.graph_objects as go
import pytest

from visualizer import figures, framing, heatmaps, plotstyle, training_figures
from visualizer.plotstyle import decode


class Flow:
    def __init__(self, arch, name, norms):
        self.arch, self.name, self.hidden_grad_norms = arch, name, np.atleast_2d(norms)


def lines(T=80, archs=("rnn", "lstm", "gru")):
    return [Flow(a, a.upper(), np.logspace(-5, 0, T)) for a in archs]


def line_items(T=80, archs=("rnn", "lstm", "gru")):
    m = np.logspace(-3, 0, T)[::-1]
    return [{"arch": a, "name": a.upper(), "label": "∏", "band": True, "median": m, "min": m / 2, "max": m * 2,
             "reference": None, "sigma": None, "verdict": None} for a in archs]


def heat_items(T=20, H=4, archs=("rnn", "gru")):
    v = np.full((T, H), 1e-3)
    return [{"arch": a, "name": a.upper(), "log10": np.log10(v), "values": v, "t": np.arange(T), "bin": 1}
            for a in archs]


def conn_items(T=12, archs=("rnn", "gru")):
    c = np.tril(np.ones((T, T)))
    c[c == 0] = np.nan  # no dependence above the diagonal
    return [{"arch": a, "name": a.upper(), "log10": np.log10(c), "values": c, "ticks": np.arange(T), "bin": 1}
            for a in archs]


def all_views():
    spectra = [{"arch": "rnn", "name": "RNN", "weights": np.linspace(2, 0.1, 8), "threshold": 1.0,
                "step_max": np.full(10, 1.5), "step_min": np.full(10, 0.2), "t": None}]
    return {"grad_norm": figures.grad_norm_figure(lines()), "jacobian": figures.jacobian_figure(line_items()),
            "spectra": figures.spectra_figure(spectra), "gates": figures.gates_figure(line_items()),
            "heatmap": heatmaps.heatmap_figure(heat_items()),
            "connectivity": heatmaps.connectivity_figure(conn_items())}


def test_each_view_has_its_own_uirevision_that_follows_its_axes():
    figs = all_views()
    revs = {view: fig["layout"]["uirevision"] for view, fig in figs.items()}
    assert all(rev.startswith(view + ":") for view, rev in revs.items())
    assert len(set(revs.values())) == len(revs)  # never shared by two views
    assert figures.grad_norm_figure(lines())["layout"]["uirevision"] == revs["grad_norm"]  # same axes: zoom kept
    assert figures.grad_norm_figure(lines(T=60))["layout"]["uirevision"] != revs["grad_norm"]  # new axes: reset
    assert figures.grad_norm_figure(lines(archs=("rnn",)))["layout"]["uirevision"] != revs["grad_norm"]
    assert heatmaps.heatmap_figure(heat_items(H=6))["layout"]["uirevision"] != revs["heatmap"]


def test_heatmap_and_connectivity_fix_their_ranges_so_no_axis_state_carries_over():
    heat = heatmaps.heatmap_figure(heat_items(T=20, H=4))["layout"]
    rows = 4 + 3 + 4  # two bands and a gap of three empty rows
    assert heat["yaxis"]["range"] == [-0.5, rows - 0.5] and heat["yaxis"]["categoryarray"][0] == "GRU · unit 1"
    assert heat["xaxis"]["range"] == [-0.5, 19.5]
    conn = heatmaps.connectivity_figure(conn_items(T=12))["layout"]
    assert conn["yaxis"]["range"] == [11.5, -0.5] and conn["xaxis2"]["range"] == [-0.5, 11.5]


@pytest.mark.parametrize("view", ["grad_norm", "jacobian", "gates", "spectra", "connectivity"])
def test_the_legend_and_titles_sit_below_the_modebar(view):
    fig = all_views()[view]
    layout = fig["layout"]
    names = framing.legend_names(fig["data"])
    rows = framing.legend_rows(names)
    assert layout["margin"]["t"] >= framing.MODEBAR_ROOM + rows * framing.LEGEND_ROW
    if rows:
        legend = layout["legend"]
        assert legend["yref"] == "container" and legend["yanchor"] == "top"
        assert (1 - legend["y"]) * layout["height"] >= framing.MODEBAR_ROOM - 4 - 1e-6  # its top under the modebar
    go.Figure(fig)


def test_a_long_legend_makes_the_figure_taller_not_the_plot_smaller():
    """The Jacobians tab of RNN, LSTM and GRU names fits and bounds: 8 long entries, several rows."""
    short = figures.jacobian_figure(line_items(archs=("lstm",)))["layout"]
    items = line_items()
    for it in items:
        it.update(rate=0.9, fit=it["median"] * 1.01)
    items[0].update(reference=np.full(80, 0.5), sigma=0.3, rho_reference=np.full(80, 0.4), rho=0.3)
    fig = figures.jacobian_figure(items)
    layout = fig["layout"]
    assert framing.legend_rows(framing.legend_names(fig["data"])) > 2

    def plot_height(lay):
        return lay["height"] - lay["margin"]["t"] - lay["margin"]["b"]

    assert plot_height(layout) >= plot_height(short) - 1e-9 and layout["height"] > short["height"]
    big = framing.present_figure(fig)["layout"]
    assert plot_height(big) >= 1.4 * plot_height(short) - 1  # the height is rounded to whole px


def test_legend_rows_wrap_long_legends():
    assert framing.legend_rows([]) == 0
    assert framing.legend_rows(["RNN", "LSTM", "GRU"]) == 1
    assert framing.legend_rows([f"a long legend entry number {i}" for i in range(6)]) >= 3


def test_each_architecture_has_its_own_marker_symbol_along_its_lines():
    fig = figures.grad_norm_figure(lines(T=200))
    main = [t for t in fig["data"] if t.get("meta") == "main"]
    assert [t["marker"]["symbol"] for t in main] == ["circle", "square", "diamond"]
    marked = [np.flatnonzero(decode(t["marker"]["size"])) for t in main]
    assert all(8 <= len(m) <= plotstyle.MARKS_PER_LINE + 1 for m in marked)
    assert len({int(m[0]) for m in marked}) == 3  # offset per architecture: coinciding lines show both
    short = figures.grad_norm_figure(lines(T=30))["data"][0]
    assert np.all(decode(short["marker"]["size"]) > 0)  # short lines: every point marked
    assert fig["layout"]["legend"]["itemsizing"] == "constant"  # the legend shows the symbol


def test_presentation_scaling_enlarges_text_lines_and_markers_without_touching_the_data():
    fig = figures.jacobian_figure([{**line_items()[0], "verdict": "RNN: a note"}])
    before = copy.deepcopy(fig)
    big = framing.present_figure(fig, 1.5)
    assert fig == before  # a copy
    assert big["layout"]["font"]["size"] == pytest.approx(17 * 1.5)
    assert big["layout"]["legend"]["font"]["size"] == pytest.approx(17 * 1.5)
    assert big["layout"]["hoverlabel"]["font"]["size"] == pytest.approx(16 * 1.5)
    assert big["layout"]["margin"]["l"] == pytest.approx(fig["layout"]["margin"]["l"] * 1.5)
    main = next(i for i, t in enumerate(fig["data"]) if t.get("meta") == "main")
    assert big["data"][main]["line"]["width"] == pytest.approx(fig["data"][main]["line"]["width"] * 1.5)
    np.testing.assert_allclose(decode(big["data"][main]["marker"]["size"]),
                               decode(fig["data"][main]["marker"]["size"]) * 1.5)
    np.testing.assert_array_equal(decode(big["data"][main]["y"]), decode(fig["data"][main]["y"]))  # a copy
    go.Figure(big)


def test_messages_wrap_to_fit_a_narrow_graph():
    fig = training_figures.flow_figure([])
    text = fig["layout"]["annotations"][0]["text"]
    assert "<br>" in text and all(len(line) <= 30 for line in text.split("<br>"))
    assert plotstyle.message_figure("a < b")["layout"]["annotations"][0]["text"] == "a &lt; b"


def test_progress_axes_label_whole_decades_only():
    h = {"name": "RNN", "losses": [1.0, 0.5, 0.3], "grad_norms": [2.0, 1.5, 1.2], "steps": 3, "clipped": []}
    layout = training_figures.progress_figure({"rnn": h})["layout"]
    for key in ("yaxis", "yaxis2"):
        assert layout[key]["type"] == "log" and layout[key]["dtick"] in (1, 2, 3, 5)  # no "2", "5" minor labels


def test_every_registered_view_draws_with_a_uirevision_of_its_own_key():
    from visualizer import compute, views
    from visualizer.urlstate import Params

    p = Params(arch=("rnn", "gru"), seq_len=8, hidden=4, batch=2)
    keys = [compute.run_key(p, a) for a in p.arch]
    revs = set()
    for key, view in views.VIEWS.items():
        rev = view.figure(view.payload(keys))["layout"]["uirevision"]
        assert str(rev).startswith(key), key  # its own key (the step view names its frames its own way)
        revs.add(rev)
    assert len(revs) == len(views.VIEWS)


@pytest.mark.parametrize("special", ["zero", "overflow", "both"])
def test_heatmap_colour_scales_run_exactly_from_0_to_1(special):
    """plotly.js drops a colour scale that ends at 0.9999999999999999 and draws its default colours
    (many ranges round that way)."""
    for i in range(1, 40):
        v = np.logspace(-i * 0.4791, -0.2392241840515972, 40).reshape(10, 4)
        if special in ("zero", "both"):
            v[0, 0] = 0.0
        if special in ("overflow", "both"):
            v[1, 1] = np.inf
        with np.errstate(divide="ignore"):
            log10 = np.where(np.isfinite(v) & (v > 0), np.log10(np.where(v > 0, v, 1.0)), np.nan)
        items = [{"arch": "rnn", "name": "RNN", "log10": log10, "values": v, "t": np.arange(10), "bin": 1}]
        scale = heatmaps.heatmap_figure(items)["layout"]["coloraxis"]["colorscale"]
        positions = [p for p, _ in scale]
        assert positions[0] == 0.0 and positions[-1] == 1.0, i
        assert positions == sorted(positions), i


def strip_views():
    """Every view with labelled strips, each with both strips and a marked value at t = 0 in each."""
    low, high = np.logspace(-300, 0, 40), np.logspace(0, 300, 40)
    low[:5], high[:3] = 0.0, np.inf
    both = [{"arch": "rnn", "name": "RNN", "label": "∏", "band": False, "median": low, "min": low, "max": low,
             "whole": None}, {"arch": "rnn-relu", "name": "RNN-relu", "label": "∏", "band": False, "median": high,
                              "min": high, "max": high, "whole": None}]
    spectra = [{"arch": "rnn-relu", "name": "RNN-relu", "weights": np.array([2.0, 1.0]), "threshold": 1.0,
                "step_max": high, "step_min": low, "t": None}]
    return {"grad_norm": figures.grad_norm_figure([Flow("rnn", "RNN", low), Flow("rnn-relu", "RNN-relu", high)]),
            "jacobian": figures.jacobian_figure(both), "gates": figures.gates_figure(both),
            "spectra": figures.spectra_figure(spectra)}


def label_clearance(fig) -> dict:
    """Per strip axis, px between its row labels and the widest marker on it at the left end of its x range (a
    fractional ``ticklabelstandoff`` counts as 0: plotly.js drops it, as it does any non-integer for an integer)."""
    layout, out = fig["layout"], {}
    for key, ax in layout.items():
        if not (key.startswith("yaxis") and isinstance(ax, dict) and ax.get("type") == "category"):
            continue
        axis_id = "y" + key[5:]
        marks = [t for t in fig["data"] if t.get("yaxis") == axis_id and t.get("meta") in ("overflow", "underflow")]
        x_start = layout["xaxis" + ax["anchor"][1:]]["range"][0]
        at_start = [t for t in marks if np.min(decode(t["x"])) <= x_start]
        assert at_start, key  # the case this checks: a marker at the plot's left edge
        reach = max(t["marker"]["size"] / 2 + t["marker"]["line"]["width"] / 2 for t in at_start)
        standoff = ax["ticklabelstandoff"] if isinstance(ax["ticklabelstandoff"], int) else 0
        out[key] = standoff - reach
    return out


@pytest.mark.parametrize("factor", [framing.PRESENT_SCALE, 1.2])
@pytest.mark.parametrize("view", ["grad_norm", "jacobian", "gates", "spectra"])
def test_strip_labels_clear_the_markers_at_t0_in_presentation_mode_too(view, factor):
    fig = strip_views()[view]
    if view == "spectra":  # its x axis pads the range: the markers at t = 0 are inside it
        fig["layout"]["xaxis2"]["range"] = [0, 39]
    big = framing.present_figure(fig, factor)
    go.Figure(big)  # valid plotly: an integer stays an integer
    normal, present = label_clearance(fig), label_clearance(big)
    assert set(normal) == set(present) and len(normal) == 2
    for key, room in normal.items():
        assert room >= 6  # normal mode: a gap between the label and the marker
        assert present[key] >= room * factor - 1  # the gap grows with the labels and markers (rounded to a px)


def test_spectra_panel_titles_clear_the_strip_title_in_presentation_mode_too():
    fig = strip_views()["spectra"]
    for layout in (fig["layout"], framing.present_figure(fig)["layout"]):
        strip_title = next(a for a in layout["annotations"] if a["text"] == plotstyle.OVERFLOW_TITLE)
        panels = [a for a in layout["annotations"] if a["text"].startswith("<b>")]
        assert len(panels) == 2
        for a in panels:  # raised above the strip title's line (about 1.3 font sizes high)
            assert a["yshift"] >= 1.3 * strip_title["font"]["size"]
