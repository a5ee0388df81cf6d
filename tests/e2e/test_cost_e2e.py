"""The Cost tab in a real browser: it draws its measured curves and its truncation panels, and a
change of the truncation window redraws it, with no console errors."""
import pytest
from dash.testing.wait import until

from tests.e2e.helpers import until_url
from visualizer import ids
from visualizer.app import create_app
from visualizer.urlstate import Params, to_query

pytestmark = pytest.mark.e2e

COST_TRACES_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullData) { return null; }
return gd._fullData.filter(t => t.meta === arguments[1]).map(t => t.name);
"""


def test_cost_tab_draws_and_follows_the_truncation_window(dash_duo):
    params = Params(arch=("rnn", "gru"), seq_len=24, hidden=4, batch=2, task="sine", loss_on="all", truncate=6,
                    view="cost")
    dash_duo.start_server(create_app())
    dash_duo.driver.get(dash_duo.server_url + "/" + to_query(params))

    def names(meta):
        return dash_duo.driver.execute_script(COST_TRACES_JS, ids.VIEW_GRAPH, meta)

    until(lambda: names("measured") is not None and "truncated, k=6" in names("measured"), 120, poll=0.2)
    assert names("rel-error") == ["RNN", "GRU"]
    assert set(names("reference")) >= {"O(T)", "O(√T)", "O(1)"}
    box = dash_duo.find_element(f"#{ids.TRUNCATE}")
    box.clear()
    box.send_keys("3")
    box.send_keys("\t")
    until(lambda: "truncated, k=3" in (names("measured") or []), 120, poll=0.2)
    until_url(dash_duo, to_query(Params(**{**params.to_dict(), "arch": params.arch, "truncate": 3})))
    assert dash_duo.get_logs() == []
