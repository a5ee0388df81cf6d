"""Real-browser tests of the app (dash_duo + Debian chromium, headless)."""
from dataclasses import replace

import pytest
from dash.testing.wait import until

from tests.e2e.helpers import set_slider_input, toggle_checklist, traces, until_url, wait_for_traces
from visualizer import ids
from visualizer.app import create_app
from visualizer.urlstate import Params, to_query

pytestmark = pytest.mark.e2e

DEFAULT_NAMES = ["RNN", "LSTM", "GRU"]


def test_page_loads_with_both_plots_and_no_console_errors(dash_duo):
    dash_duo.start_server(create_app())
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, DEFAULT_NAMES, 100)
    dash_duo.wait_for_element(f"#{ids.VIEW_GRAPH} .js-plotly-plot .hm")  # the heatmap tab drew
    assert dash_duo.driver.execute_script("return window.location.search") == ""  # no history entry at load
    assert dash_duo.find_element(f"#{ids.INFO}").text.count("parameters") == 3
    dash_duo.wait_for_class_to_equal(f"#{ids.SCALE_FIELD}", "field field--muted")  # the PyTorch default: no scale
    assert dash_duo.find_element(f"#{ids.SCALE_FIELD} .field-hint").is_displayed()  # "Not used by ..."
    fetched = dash_duo.driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(url.startswith(dash_duo.server_url) for url in fetched), fetched  # works offline
    assert dash_duo.get_logs() == []


def test_changing_sequence_length_changes_the_number_of_points(dash_duo):
    dash_duo.start_server(create_app())
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, DEFAULT_NAMES, 100)
    set_slider_input(dash_duo, ids.SEQ_LEN, 37)
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, DEFAULT_NAMES, 37)
    heat_width = "return document.querySelector('#view-graph .js-plotly-plot')._fullData[0].x.length"
    until(lambda: dash_duo.driver.execute_script(heat_width) == 37, 10, poll=0.1)  # the heatmaps follow
    until_url(dash_duo, to_query(Params(seq_len=37)))
    assert dash_duo.get_logs() == []


def test_changing_the_architecture_set_changes_the_traces(dash_duo):
    dash_duo.start_server(create_app())
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, DEFAULT_NAMES, 100)
    toggle_checklist(dash_duo, ids.ARCH, "gru")
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "LSTM"], 100)
    toggle_checklist(dash_duo, ids.ARCH, "rnn-relu")
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "RNN-relu", "LSTM"], 100)
    dash_duo.find_element(f"#{ids.VIEW} .tab:nth-child(2)").click()  # Jacobian norms tab follows the set
    wait_for_traces(dash_duo, ids.VIEW_GRAPH, ["RNN", "RNN-relu", "LSTM"], 100)
    assert "arch=rnn,rnn-relu,lstm" in dash_duo.driver.execute_script("return window.location.search")
    assert dash_duo.get_logs() == []


def test_a_copied_url_reproduces_the_same_figures(dash_duo):
    p = Params(arch=("lstm", "gru"), seq_len=40, hidden=16, layers=2, task="sine", init="orthogonal",
               scale=1.1, seed=5, view="gates")
    dash_duo.start_server(create_app())
    dash_duo.driver.get(dash_duo.server_url + to_query(p))
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["LSTM", "GRU"], 40)
    wait_for_traces(dash_duo, ids.VIEW_GRAPH, ["LSTM: cell path ∏ f", "GRU: carry path ∏ z"], 40)
    assert dash_duo.find_element(f"#{ids.HIDDEN} input.dash-range-slider-input").get_attribute("value") == "16"
    assert dash_duo.find_element(f"#{ids.TASK}").text.startswith("Sine")
    dash_duo.wait_for_class_to_equal(f"#{ids.SCALE_FIELD}", "field")  # orthogonal x scale: the slider counts
    assert not dash_duo.find_element(f"#{ids.SCALE_FIELD} .field-hint").is_displayed()
    first = traces(dash_duo, ids.GRAD_GRAPH)
    search = dash_duo.driver.execute_script("return window.location.search")
    assert search == to_query(p)
    dash_duo.driver.get(dash_duo.server_url + "/")  # elsewhere, then back through the copied link
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, DEFAULT_NAMES, 100)
    dash_duo.wait_for_class_to_equal(f"#{ids.SCALE_FIELD}", "field field--muted")
    dash_duo.driver.get(dash_duo.server_url + "/" + search)
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["LSTM", "GRU"], 40)
    assert traces(dash_duo, ids.GRAD_GRAPH) == first
    set_slider_input(dash_duo, ids.HIDDEN, 8)  # a change writes the URL; back restores the link's state
    until_url(dash_duo, to_query(Params(**{**p.to_dict(), "arch": p.arch, "hidden": 8})))
    dash_duo.driver.back()
    until_url(dash_duo, search)
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["LSTM", "GRU"], 40)
    assert traces(dash_duo, ids.GRAD_GRAPH) == first
    assert dash_duo.get_logs() == []


def test_a_bad_url_value_shows_its_message_and_the_app_keeps_working(dash_duo):
    dash_duo.start_server(create_app())
    dash_duo.driver.get(dash_duo.server_url + "/?seq_len=99999&arch=foo,gru&hidden=lots")
    dash_duo.wait_for_contains_text(f"#{ids.MESSAGES}", "seq_len=99999 is above the maximum 2000; using 2000.")
    text = dash_duo.find_element(f"#{ids.MESSAGES}").text
    assert "arch 'foo' is unknown" in text and "hidden is not a finite number" in text
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["GRU"], 2000)
    set_slider_input(dash_duo, ids.SEQ_LEN, 20)  # a control change clears the URL messages
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["GRU"], 20)
    dash_duo.wait_for_text_to_equal(f"#{ids.MESSAGES}", "")
    assert dash_duo.get_logs() == []


def test_debug_mode_reports_no_prop_or_callback_errors(dash_duo):
    """Dash's dev tools check every prop type and the callback graph in debug mode."""
    dash_duo.start_server(create_app(), debug=True, use_reloader=False, use_debugger=True,
                          dev_tools_hot_reload=False, dev_tools_disable_version_check=True)
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, DEFAULT_NAMES, 100)
    toggle_checklist(dash_duo, ids.ARCH, "rnn-relu")
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "RNN-relu", "LSTM", "GRU"], 100)
    assert dash_duo.driver.find_elements("css selector", ".dash-fe-error__title") == []
    assert dash_duo.driver.find_elements("css selector", ".test-devtools-error-count") == []
    assert dash_duo.get_logs() == []


TRACE_META_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullData) { return null; }
return [gd._fullData.map(t => [t.meta || '', t.name]), !!gd._fullLayout.yaxis3];
"""


def test_what_a_student_reads_is_drawn_and_measured(dash_duo):
    """The landing note, the underflow strip, the fitted rate and both references on the
    Jacobians tab, and the verdict line in the caption: on the page, with the core's numbers."""
    from visualizer import compute, facts, narrative, payloads, presets
    dash_duo.start_server(create_app())
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, DEFAULT_NAMES, 100)
    until(lambda: "Open it" in dash_duo.find_element(f"#{ids.INFO}").text, 20, poll=0.2)  # the landing note
    trunc = presets.PRESETS["truncation"]
    dash_duo.driver.get(dash_duo.server_url + trunc.query)
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, DEFAULT_NAMES, 100)
    until(lambda: dash_duo.driver.execute_script(TRACE_META_JS, ids.GRAD_GRAPH)[1], 20, poll=0.2)  # zeros: strip
    assert "Open it" not in dash_duo.find_element(f"#{ids.INFO}").text  # a preset explains itself
    p = presets.PRESETS["vanishing"].params
    dash_duo.driver.get(dash_duo.server_url + to_query(replace(p, view="jacobian")))
    wait_for_traces(dash_duo, ids.VIEW_GRAPH, ["RNN"], 100)
    (item,) = payloads.jacobian_items([compute.run_key(p, "rnn")])
    names = dict(dash_duo.driver.execute_script(TRACE_META_JS, ids.VIEW_GRAPH)[0])
    assert names["fit"] == f"RNN fit: ×{narrative.num(item['rate'])} per step"
    assert "(γσ₁)" in names["reference"] and "ρ(W" in names["rho-reference"]
    key = compute.run_key(p, "rnn")
    verdict = narrative.verdict(facts.weight_facts(key), facts.jacobian_facts(key))
    until(lambda: verdict in dash_duo.find_element(f"#{ids.VIEW_CAPTION}").text, 20, poll=0.2)
    assert dash_duo.get_logs() == []
