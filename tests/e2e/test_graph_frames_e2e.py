"""Graphs as a class sees them: every graph is as tall as its figure, so no figure spills over the
card below it (or under the training card's buttons) through window resizes and presentation mode;
figures without data (placeholders, messages) show no modebar, figures with data do."""
import pytest
from dash.testing import errors
from dash.testing.wait import until

from tests.e2e.helpers import toggle_checklist, wait_for_traces
from visualizer import ids
from visualizer.app import create_app

pytestmark = pytest.mark.e2e

GEOMETRY_JS = """
const buttons = Array.from(document.querySelectorAll('.train-controls button'))
    .filter(b => b.offsetParent !== null).map(b => b.getBoundingClientRect());
return Array.from(document.querySelectorAll('.dash-graph')).filter(g => g.offsetParent !== null).map(g => {
    const gd = g.querySelector('.js-plotly-plot');
    const svg = gd && gd.querySelector('svg.main-svg');
    if (!gd || !gd._fullLayout || !svg) { return {id: g.id, drawn: false}; }
    const box = g.getBoundingClientRect(), plot = svg.getBoundingClientRect();
    const card = g.closest('.card').getBoundingClientRect();
    const under = buttons.some(b => b.left < plot.right && plot.left < b.right && b.top < plot.bottom
                                    && plot.top < b.bottom);
    return {id: g.id, drawn: true, box: box.height, figure: gd._fullLayout.height, spill: plot.bottom - card.bottom,
            under_buttons: under, buttons: gd.querySelectorAll('.modebar-btn').length, traces: gd.data.length};
});
"""


def geometry(dash_duo):
    return dash_duo.driver.execute_script(GEOMETRY_JS)


def settled(dash_duo, timeout=60):
    """Wait until every visible graph is drawn, as tall as its figure, inside its card and clear of the
    training buttons; the geometry then (or an AssertionError naming the graphs that are not)."""
    def ok():
        busy = dash_duo.driver.execute_script("return document.querySelectorAll('[data-dash-is-loading=\"true\"]')"
                                              ".length")
        g = geometry(dash_duo)
        return not busy and g and all(x["drawn"] and abs(x["box"] - x["figure"]) <= 1 and x["spill"] <= 1
                                      and not x["under_buttons"] for x in g)
    try:
        until(ok, timeout, poll=0.25)
    except errors.TestingTimeoutError:
        raise AssertionError(f"graphs not framed by their cards: {geometry(dash_duo)}") from None
    return geometry(dash_duo)


def test_graphs_stay_as_tall_as_their_figures_through_resizes_and_presentation_mode(dash_duo):
    dash_duo.start_server(create_app())
    dash_duo.driver.get(dash_duo.server_url + "/?preset=exploding&view=jacobian")
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "LSTM", "GRU"], 100, timeout=60)
    settled(dash_duo)
    for width, height in ((1100, 900), (1500, 1000)):  # plotly.js re-sizes every graph to its container
        dash_duo.driver.set_window_size(width, height)
        settled(dash_duo)
    dash_duo.find_element(f"#{ids.PRESENT_TOGGLE}").click()  # fonts, sidebar and figure heights change
    font_js = ("const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');"
               "return gd && gd._fullLayout ? gd._fullLayout.font.size : 0;")
    until(lambda: dash_duo.driver.execute_script(font_js, ids.VIEW_GRAPH) > 20, 60)
    tall = {g["id"]: g["figure"] for g in settled(dash_duo)}
    assert tall[ids.GRAD_GRAPH] == pytest.approx(460 * 1.4, abs=1)  # scaled figures in grown graphs
    dash_duo.driver.set_window_size(1280, 720)
    settled(dash_duo)
    dash_duo.find_element(f"#{ids.PRESENT_EXIT}").click()
    until(lambda: dash_duo.driver.execute_script(font_js, ids.VIEW_GRAPH) == 17, 60)
    settled(dash_duo)
    assert dash_duo.get_logs() == []


def test_only_figures_with_data_show_a_modebar(dash_duo):
    dash_duo.start_server(create_app())
    dash_duo.driver.get(dash_duo.server_url + "/?arch=rnn&seq_len=20&hidden=8")
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN"], 20, timeout=60)
    shown = {g["id"]: g for g in settled(dash_duo)}
    assert shown[ids.GRAD_GRAPH]["buttons"] > 0 and shown[ids.VIEW_GRAPH]["buttons"] > 0
    for graph in (ids.TRAIN_PROGRESS_GRAPH, ids.TRAIN_FLOW_GRAPH, ids.TRAIN_EVOLUTION_GRAPH):  # before a run
        assert shown[graph]["traces"] == 0 and shown[graph]["buttons"] == 0
    toggle_checklist(dash_duo, ids.ARCH, "rnn")  # nothing ticked: a message in both graphs
    until(lambda: all(geometry(dash_duo)[i]["buttons"] == 0 for i in (0, 1)), 30)
    toggle_checklist(dash_duo, ids.ARCH, "rnn")  # the same graphs with data again get their modebar back
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN"], 20, timeout=60)
    until(lambda: all(geometry(dash_duo)[i]["buttons"] > 0 for i in (0, 1)), 30)
    assert dash_duo.get_logs() == []
