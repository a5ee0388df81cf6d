"""What is drawn is what the figure builders built, after any sequence of clicks.

One page is driven through sequences (every tab after every other tab, preset after preset,
architectures toggled on each tab); after each step the figure plotly.js rendered
(``_fullLayout`` / ``_fullData``) is compared with the one the server-side builder returns for
the same settings: trace names and count, axis types and ranges, the heatmap's row labels.
Plotly keeps UI state between figures with the same ``uirevision``; a stale axis shows up here.
"""
import itertools
import math

import pytest
from dash.testing import errors
from dash.testing.wait import until
from selenium.webdriver.common.by import By

from tests.e2e.helpers import toggle_checklist, wait_for_traces
from visualizer import callbacks, ids, presets
from visualizer.app import create_app
from visualizer.urlstate import VIEW_CHOICES, Params, parse_query, to_query

pytestmark = pytest.mark.e2e

DRAWN_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullLayout || !gd._fullData) { return null; }
const L = gd._fullLayout, axes = {};
for (const k of Object.keys(L)) {
    if (/^[xy]axis[0-9]*$/.test(k)) {
        axes[k] = {type: L[k].type, range: L[k].range, ticks: (L[k]._vals || []).map(v => v.text)};
    }
}
return {rev: gd.layout.uirevision, names: gd._fullData.map(t => t.name === undefined ? null : t.name), axes: axes,
        colorscale: L.coloraxis ? L.coloraxis.colorscale : null,
        busy: document.querySelectorAll('[data-dash-is-loading="true"]').length};
"""


def drawn(dash_duo, graph_id):
    """The rendered figure of a graph: uirevision, trace names, and per axis type/range/tick labels."""
    return dash_duo.driver.execute_script(DRAWN_JS, graph_id)


def page_params(dash_duo) -> Params:
    """The settings the page shows, from its URL (expanded presets included)."""
    search = dash_duo.driver.execute_script("return window.location.search")
    return parse_query(presets.expand_query(search))[0]


def built(params: Params, graph_id):
    """The figure the app's builders return for ``params`` in ``graph_id``."""
    store = callbacks.store_data(params)
    if graph_id == ids.GRAD_GRAPH:
        return callbacks.overview(store)[0]
    return callbacks.view(store, params.view)[0]


def assert_drawn_as_built(dash_duo, graph_id, params, timeout=60):
    """Wait until the graph shows the built figure's uirevision, then compare what is drawn."""
    want = built(params, graph_id)
    rev = want["layout"]["uirevision"]
    try:
        until(lambda: (d := drawn(dash_duo, graph_id)) is not None and d["rev"] == rev and not d["busy"], timeout,
              poll=0.1)
    except errors.TestingTimeoutError:
        raise AssertionError(f"{graph_id}: wanted uirevision {rev} for {params}, "
                             f"drawn {drawn(dash_duo, graph_id)}") from None
    got = drawn(dash_duo, graph_id)
    names = [t.get("name", f"trace {i}") for i, t in enumerate(want["data"])]  # plotly names unnamed traces
    assert got["names"] == names, (graph_id, params.view)
    layout = want["layout"]
    for key, axis in layout.items():
        if not (key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict)):
            continue
        shown = got["axes"][key]
        if "type" in axis:
            assert shown["type"] == axis["type"], (graph_id, params.view, key)
        if axis.get("range") is not None:
            assert shown["range"] == pytest.approx(axis["range"], abs=1e-6), (graph_id, params.view, key)
        if axis.get("ticktext") is not None and axis.get("tickmode") == "array":
            assert shown["ticks"] == list(axis["ticktext"]), (graph_id, params.view, key)
    if isinstance(layout.get("coloraxis", {}).get("colorscale"), list):  # drawn as built (plotly drops a bad one)
        assert got["colorscale"] == [list(c) for c in layout["coloraxis"]["colorscale"]], (graph_id, params.view)
    return got


def tab(dash_duo, view):
    """Click the tab of ``view``."""
    dash_duo.find_element(f"#{ids.VIEW} .tab:nth-child({VIEW_CHOICES.index(view) + 1})").click()


def every_ordered_pair(keys):
    """A shortest walk through ``keys`` that moves from every key to every other key (an Euler
    circuit of the complete directed graph, Hierholzer's algorithm)."""
    out = {a: [b for b in keys if b != a] for a in keys}
    stack, walk = [keys[0]], []
    while stack:
        if out[stack[-1]]:
            stack.append(out[stack[-1]].pop())
        else:
            walk.append(stack.pop())
    return walk[::-1]


def pick_preset(dash_duo, key):
    """Choose a preset in the dropdown by its title."""
    dash_duo.find_element(f"#{ids.PRESET_DROPDOWN}").click()
    title = presets.PRESETS[key].title
    until(lambda: any(o.text == title for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]")), 10)
    next(o for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == title).click()


def test_every_tab_after_every_other_tab_then_architectures_toggled(dash_duo):
    dash_duo.start_server(create_app())
    small = Params(arch=("rnn", "lstm", "gru"), seq_len=40, hidden=12, batch=4)
    dash_duo.driver.get(dash_duo.server_url + "/?arch=rnn,lstm,gru&seq_len=40&hidden=12&batch=4")
    wait_for_traces(dash_duo, ids.GRAD_GRAPH, ["RNN", "LSTM", "GRU"], 40)
    walk = every_ordered_pair(list(VIEW_CHOICES))
    n = len(VIEW_CHOICES)
    assert len(walk) == n * (n - 1) + 1 and len(set(itertools.pairwise(walk))) == n * (n - 1)
    for i, view in enumerate(walk):
        if i:
            tab(dash_duo, view)
        got = assert_drawn_as_built(dash_duo, ids.VIEW_GRAPH, Params(**{**small.to_dict(), "arch": small.arch,
                                                                         "view": view}))
        if view == "heatmap":  # one band of rows per architecture, labelled from unit 1, right way up
            y = got["axes"]["yaxis"]
            assert y["type"] == "category" and y["range"][0] < y["range"][1]
            assert y["ticks"].count("1") == 3
        if view == "connectivity":  # step 0 at the top of every panel
            assert all(got["axes"][k]["range"][0] > got["axes"][k]["range"][1] for k in ("yaxis", "yaxis2"))
    for view in VIEW_CHOICES:  # architectures toggled on each tab: off, then on again
        tab(dash_duo, view)
        for arch, archs in (("lstm", ("rnn", "gru")), ("lstm", ("rnn", "lstm", "gru"))):
            toggle_checklist(dash_duo, ids.ARCH, arch)
            p = Params(**{**small.to_dict(), "arch": archs, "view": view})
            assert_drawn_as_built(dash_duo, ids.VIEW_GRAPH, p)
            assert_drawn_as_built(dash_duo, ids.GRAD_GRAPH, p)
    assert dash_duo.get_logs() == []


def test_preset_after_preset_draws_each_as_a_fresh_link_would(dash_duo):
    dash_duo.start_server(create_app())
    dash_duo.driver.get(dash_duo.server_url + "/?preset=clipping")
    p = presets.PRESETS["clipping"].params
    assert_drawn_as_built(dash_duo, ids.VIEW_GRAPH, p)
    until(lambda: dash_duo.find_element(f"#{ids.PRESET_DROPDOWN}").text == presets.PRESETS["clipping"].title,
          10)  # the dropdown names the preset the link opened
    order = ["truncation", "vanishing", "exploding", "irnn", "clipping", "lstm-forget-bias", "lstm-long-memory",
             "truncation", "exploding"]
    for key in order:
        pick_preset(dash_duo, key)
        p = presets.PRESETS[key].params
        got = assert_drawn_as_built(dash_duo, ids.VIEW_GRAPH, p)
        assert_drawn_as_built(dash_duo, ids.GRAD_GRAPH, p)
        assert page_params(dash_duo) == p
        assert dash_duo.find_element(f"#{ids.PRESET_DROPDOWN}").text == presets.PRESETS[key].title
        if p.view == "jacobian":  # the lag axis ends at the last lag, not past it
            assert got["axes"]["xaxis"]["range"] == pytest.approx([0, p.seq_len - 1])
    # and a control moved away from the preset empties the dropdown
    dash_duo.find_element(f"#{ids.SEED}").send_keys("1\t")
    until(lambda: dash_duo.find_element(f"#{ids.PRESET_DROPDOWN}").text != presets.PRESETS["exploding"].title,
          30)
    assert dash_duo.get_logs() == []  # no "NaN cannot be parsed" from emptied number boxes either


def test_presentation_mode_scales_the_figures_and_a_fixed_url_is_rewritten(dash_duo):
    dash_duo.start_server(create_app())
    dash_duo.driver.get(dash_duo.server_url + "/?seq_len=99999&batch=8&arch=gru&hidden=8&present=1&arch_hide=1")
    want = to_query(Params(arch=("gru",), seq_len=2000, hidden=8)) + "&present=1&arch_hide=1"
    until(lambda: dash_duo.driver.execute_script("return window.location.search") == want, 30)
    assert "2000" in dash_duo.find_element(f"#{ids.MESSAGES}").text  # the correction is still explained
    font_js = ("const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');"
               "return gd && gd._fullLayout ? [gd._fullLayout.font.size, gd._fullData[0].line.width] : null;")
    until(lambda: (dash_duo.driver.execute_script(font_js, ids.GRAD_GRAPH) or [0])[0] > 20, 60)
    size, width = dash_duo.driver.execute_script(font_js, ids.GRAD_GRAPH)
    assert size == pytest.approx(17 * 1.4) and width == pytest.approx(3.5 * 1.4)
    heading = dash_duo.driver.execute_script(
        "return getComputedStyle(document.querySelector('.sidebar .group-title')).display")
    assert heading == "none"  # arch_hide hides the "Compare" heading with the checklist
    dash_duo.find_element(f"#{ids.PRESENT_EXIT}").click()
    until(lambda: math.isclose(dash_duo.driver.execute_script(font_js, ids.GRAD_GRAPH)[0], 17), 60)
    assert dash_duo.get_logs() == []
