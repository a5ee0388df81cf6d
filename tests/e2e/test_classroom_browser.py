"""Browser tests of the classroom aids: presets, exports, uploads, presentation mode, maths."""
import csv
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from dash.testing.wait import until

import core
from tests.e2e.helpers import traces, wait_for_traces
from visualizer.app import create_app
from visualizer import export, ids, lessons, presets
from visualizer.urlstate import Params, to_query

pytestmark = pytest.mark.e2e

SMALL = Params(arch=("rnn", "gru"), seq_len=16, hidden=6, batch=2, view="gates")


def settle(dash_duo, timeout=60):
    """Wait until no callback is updating anything (so the server is idle when the test ends)."""
    until(lambda: not dash_duo.driver.execute_script(
        "return document.querySelectorAll('[data-dash-is-loading=\"true\"]').length"), timeout)
    time.sleep(0.3)


def test_a_preset_applies_and_its_explanation_shows(dash_duo):
    dash_duo.start_server(create_app())
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "LSTM", "GRU"], 100)
    p = presets.PRESETS["lstm-long-memory"]
    dash_duo.select_dcc_dropdown(f"#{ids.PRESET_DROPDOWN}", value=p.title)
    shown = lessons.preset_text(p.key, p.params)[:60]
    dash_duo.wait_for_contains_text(f"#{ids.PRESET_EXPLANATION}", shown, timeout=30)
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "LSTM"], 300, timeout=60)  # every control was set
    until(lambda: dash_duo.driver.execute_script("return window.location.search") == p.query, 10)
    assert dash_duo.find_element(f"#{ids.FORGET_BIAS}").get_attribute("value") == "5"
    # changing a control away from the preset hides the explanation
    dash_duo.find_element(f"#{ids.SEED}").send_keys("1\t")
    until(lambda: dash_duo.find_element(f"#{ids.PRESET_EXPLANATION}").text == "", 30)
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def _wait_for_file(folder, suffix, timeout=60):
    """The path of the first complete file ending in ``suffix`` in ``folder``."""
    def found():
        names = [n for n in os.listdir(folder) if n.endswith(suffix)]
        return os.path.join(folder, names[0]) if names else None
    until(found, timeout, msg=f"no {suffix} file downloaded")
    return found()


def test_exports_download_files_matching_the_view(dash_duo):
    dash_duo.start_server(create_app(), )
    dash_duo.wait_for_page(url=dash_duo.server_url + "/" + to_query(SMALL))
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "GRU"], 16)
    folder = dash_duo.download_path
    dash_duo.find_element(f"#{ids.EXPORT_CSV}").click()
    rows = list(csv.DictReader(io.StringIO(Path(_wait_for_file(folder, ".csv")).read_text())))
    shown = {name: y for name, _, y in traces(dash_duo, ids.GRAD_GRAPH)}  # first 5 points per trace
    for arch, name in (("rnn", "RNN"), ("gru", "GRU")):
        values = [float(r["value"]) for r in rows if r["view"] == "grad_norm" and r["arch"] == arch]
        assert len(values) == 16
        np.testing.assert_allclose(values[:5], shown[name], rtol=1e-12)  # the file holds what is plotted
    assert {r["view"] for r in rows} == {"grad_norm", "gates"}
    dash_duo.find_element(f"#{ids.EXPORT_JSON}").click()
    doc = json.loads(Path(_wait_for_file(folder, ".json")).read_text())
    assert doc["query"] == to_query(SMALL) and set(doc["views"]) == {"grad_norm", "gates"}
    dash_duo.find_element(f"#{ids.EXPORT_HTML}").click()
    page = Path(_wait_for_file(folder, ".html", timeout=90)).read_text()
    assert page.startswith("<!DOCTYPE html>") and "bpttlab-data" in page
    assert sorted(os.listdir(folder)) == sorted(export.filename(SMALL, e) for e in ("csv", "json", "html"))
    settle(dash_duo)
    assert dash_duo.get_logs() == []


LEGEND_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
return gd && gd._fullData ? gd._fullData.filter(t => t.showlegend).map(t => t.name) : [];
"""
CURVE_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const t = gd._fullData.find(t => t.name === arguments[1]);
return [t.x.length, t.line.dash];
"""


def legend(dash_duo, graph_id):
    """Names of the traces in a graph's legend."""
    return dash_duo.driver.execute_script(LEGEND_JS, graph_id)


def _npz_file(tmp_path, name, **arrays):
    path = tmp_path / name
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return str(path)


def test_a_bad_upload_shows_its_message_and_a_good_one_plots(dash_duo, tmp_path):
    dash_duo.start_server(create_app())
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "LSTM", "GRU"], 100)
    box = dash_duo.find_element(f"#{ids.UPLOAD} input[type=file]")
    state = core.build("lstm", input_size=2, hidden_size=5, output_size=1, seed=1).state_dict()
    bad = dict(state)
    bad["weight_hh_l0"] = np.zeros((20, 4))
    box.send_keys(_npz_file(tmp_path, "bad.npz", **bad))
    dash_duo.wait_for_contains_text(f"#{ids.UPLOAD_STATUS}", "Rejected", timeout=30)
    assert "'weight_hh_l0' has shape (20, 4)" in dash_duo.find_element(f"#{ids.UPLOAD_STATUS}").text
    assert "your LSTM" not in legend(dash_duo, ids.GRAD_GRAPH)
    nan = dict(state)
    nan["bias_ih_l0"] = np.full(20, np.nan)
    box = dash_duo.find_element(f"#{ids.UPLOAD} input[type=file]")
    box.send_keys(_npz_file(tmp_path, "nan.npz", **nan))
    dash_duo.wait_for_contains_text(f"#{ids.UPLOAD_STATUS}", "NaN", timeout=30)
    box = dash_duo.find_element(f"#{ids.UPLOAD} input[type=file]")
    box.send_keys(_npz_file(tmp_path, "good.npz", **state))
    dash_duo.wait_for_contains_text(f"#{ids.UPLOAD_STATUS}", "Loaded good.npz: LSTM", timeout=30)
    # the good model joins the main plot: one more curve, dashed, one point per time step
    until(lambda: legend(dash_duo, ids.GRAD_GRAPH) == ["RNN", "LSTM", "GRU", "your LSTM"], 30)
    assert dash_duo.driver.execute_script(CURVE_JS, ids.GRAD_GRAPH, "your LSTM") == [100, "dash"]
    dash_duo.wait_for_contains_text(f"#{ids.INFO}", "Dashed: good.npz", timeout=10)
    dash_duo.find_element(f"#{ids.UPLOAD_CLEAR}").click()
    until(lambda: legend(dash_duo, ids.GRAD_GRAPH) == ["RNN", "LSTM", "GRU"], 30)
    settle(dash_duo)
    assert dash_duo.get_logs() == []


FETCH_SIZES_JS = """
window.__bodies = [];
const ofetch = window.fetch;
window.fetch = function (url, opts) {
    if (String(url).includes('_dash-update-component') && opts && typeof opts.body === 'string') {
        window.__bodies.push(opts.body.length);
    }
    return ofetch.apply(this, arguments);
};
"""


def test_page_changes_after_an_upload_send_its_digest_not_the_file(dash_duo, tmp_path, monkeypatch):
    from visualizer import classroom, shelf, weights

    dash_duo.start_server(create_app())
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "LSTM", "GRU"], 100)
    state = core.build("lstm", input_size=2, hidden_size=64, output_size=1, seed=2).state_dict()
    dash_duo.find_element(f"#{ids.UPLOAD} input[type=file]").send_keys(_npz_file(tmp_path, "big.npz", **state))
    dash_duo.wait_for_contains_text(f"#{ids.UPLOAD_STATUS}", "Loaded big.npz: LSTM", timeout=30)
    until(lambda: "your LSTM" in legend(dash_duo, ids.GRAD_GRAPH), 30)
    settle(dash_duo)
    dash_duo.driver.execute_script(FETCH_SIZES_JS)

    def sizes():
        return dash_duo.driver.execute_script("return window.__bodies.splice(0)")

    def change_seed(key, query):
        dash_duo.find_element(f"#{ids.SEED}").send_keys(key + "\t")
        until(lambda: query in dash_duo.driver.execute_script("return window.location.search"), 30)
        settle(dash_duo)

    change_seed("1", "seed=1")  # a model setting: view 1 and the upload run again
    assert "your LSTM" in legend(dash_duo, ids.GRAD_GRAPH)
    sent = sizes()
    assert sent and max(sent) < 20_000, sent  # the upload is 190 kB in base64
    # the server lost it (dropped as the oldest, or another machine): the page sends it again, once
    weights._checked.cache_clear()
    monkeypatch.setattr(shelf, "get", lambda key: None)
    change_seed("2", "seed=12")
    until(lambda: "your LSTM" in legend(dash_duo, ids.GRAD_GRAPH), 30)
    settle(dash_duo)
    sent = sizes()
    assert len([n for n in sent if n > 100_000]) == 1, sent  # the .npz is about 140 kB
    # lost again, and this time the server cannot find it: the note says what to do, nothing is re-sent
    monkeypatch.setattr(classroom.weights, "stored_weights", lambda key, fetch: (_ for _ in ()).throw(
        weights.UploadMissing("gone")))
    change_seed("3", "seed=123")
    dash_duo.wait_for_contains_text(f"#{ids.INFO}", "press Remove and upload it again", timeout=30)
    assert "your LSTM" not in legend(dash_duo, ids.GRAD_GRAPH)
    settle(dash_duo)
    sent = sizes()
    assert sent and max(sent) < 20_000, sent
    assert dash_duo.get_logs() == []


def test_presentation_mode_hides_the_controls_from_the_url(dash_duo):
    dash_duo.start_server(create_app())
    dash_duo.wait_for_page(url=dash_duo.server_url + "/?present=1")
    until(lambda: "present" in dash_duo.find_element(f"#{ids.PAGE}").get_attribute("class").split(), 30)
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "LSTM", "GRU"], 100)
    assert not dash_duo.find_element(".sidebar").is_displayed()
    assert not dash_duo.find_element(f"#{ids.SEQ_LEN}").is_displayed()
    size = dash_duo.driver.execute_script("return getComputedStyle(document.documentElement).fontSize")
    assert float(size.rstrip("px")) >= 22
    assert dash_duo.find_element(f"#{ids.PRESENT_EXIT}").is_displayed()
    dash_duo.find_element(f"#{ids.PRESENT_EXIT}").click()
    until(lambda: dash_duo.find_element(".sidebar").is_displayed(), 10)
    # one control hidden, TensorFlow-Playground style
    dash_duo.wait_for_page(url=dash_duo.server_url + "/?seq_len_hide=1&training_hide=1")
    until(lambda: "hide-seq_len" in dash_duo.find_element(f"#{ids.PAGE}").get_attribute("class"), 30)
    assert dash_duo.find_element(f"#{ids.MESSAGES}").text == ""  # display keys are not reported as unknown
    assert dash_duo.find_element(".sidebar").is_displayed()
    assert not dash_duo.find_element(f"#{ids.SEQ_LEN}").is_displayed()
    assert dash_duo.find_element(f"#{ids.HIDDEN}").is_displayed()
    assert not dash_duo.find_element(".training-panel").is_displayed()
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def test_maths_render_with_local_mathjax(dash_duo):
    dash_duo.start_server(create_app())
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "LSTM", "GRU"], 100)
    dash_duo.find_element(".explain summary").click()
    count_js = "return document.querySelectorAll('.explain mjx-container').length"
    until(lambda: dash_duo.driver.execute_script(count_js) > 3, 30)
    urls = dash_duo.driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any("mathjax" in u.lower() for u in urls)  # loaded...
    assert all(u.startswith(dash_duo.server_url) for u in urls)  # ...from this server only
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def test_a_shared_link_with_a_preset_and_presentation_mode(dash_duo):
    dash_duo.start_server(create_app())
    dash_duo.wait_for_page(url=dash_duo.server_url + "/?preset=irnn&present=1")
    p = presets.PRESETS["irnn"]
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "RNN-relu"], p.params.seq_len, timeout=60)
    shown = lessons.preset_text(p.key, p.params)[:50]
    dash_duo.wait_for_contains_text(f"#{ids.PRESET_EXPLANATION}", shown, timeout=30)
    until(lambda: "present" in dash_duo.find_element(f"#{ids.PAGE}").get_attribute("class").split(), 30)
    assert not dash_duo.find_element(".sidebar").is_displayed()
    assert dash_duo.find_element(f"#{ids.MESSAGES}").text == ""
    assert dash_duo.driver.execute_script("return window.location.search") == "?preset=irnn&present=1"  # kept short
    until(lambda: dash_duo.find_element(f"#{ids.PRESET_DROPDOWN}").text == p.title, 30)  # names the link's preset
    settle(dash_duo)
    assert dash_duo.get_logs() == []
