"""Helpers for the browser tests: read plotted data from the page, drive Dash 4 controls."""
from dash.testing.errors import TestingTimeoutError
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

GRAPH_TRACES_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullData) { return null; }
return gd._fullData.filter(t => t.meta === 'main')
    .map(t => [t.name, t.x.length, Array.from(t.y).slice(0, 5)]);
"""


def traces(dash_duo, graph_id):
    """[(name, number of points, first y values)] of the main traces of a graph (meta "main"), or None."""
    return dash_duo.driver.execute_script(GRAPH_TRACES_JS, graph_id)


def wait_for_traces(dash_duo, graph_id, names, points, timeout=30):
    """Wait until the graph shows exactly these trace names, each with ``points`` points."""
    def ok():
        got = traces(dash_duo, graph_id)
        return got is not None and [g[0] for g in got] == names and all(g[1] == points for g in got)
    try:
        until(ok, timeout, poll=0.1)
    except TestingTimeoutError:
        raise AssertionError(f"{graph_id}: wanted {names} x {points}, got {traces(dash_duo, graph_id)}") from None


def set_slider_input(dash_duo, slider_id, value):
    """Type a value into a Dash 4 slider's direct-input box and commit it (blur)."""
    box = dash_duo.find_element(f"#{slider_id} input.dash-range-slider-input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value))
    box.send_keys(Keys.TAB)


def toggle_checklist(dash_duo, checklist_id, value):
    """Click the checkbox of one option of a dcc.Checklist."""
    dash_duo.find_element(f"#{checklist_id} input[value='{value}']").click()


def until_url(dash_duo, search, timeout=10):
    """Wait until the page's query string is ``search``."""
    try:
        until(lambda: dash_duo.driver.execute_script("return window.location.search") == search, timeout, poll=0.1)
    except TestingTimeoutError:
        got = dash_duo.driver.execute_script("return window.location.search")
        raise AssertionError(f"URL query: wanted {search!r}, got {got!r}") from None
