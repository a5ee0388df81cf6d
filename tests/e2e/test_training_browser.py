"""Browser test of live training: start, progress, pause, step, resume, reset and cancel."""
import re
import time

import pytest
from dash.testing import errors
from dash.testing.wait import until

from visualizer.app import create_app
from visualizer import ids, training
from visualizer.urlstate import Params, to_query

pytestmark = pytest.mark.e2e

PARAMS = Params(arch=("rnn", "lstm"), seq_len=60, hidden=32, batch=4)
STEPS = 600

NAMES_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
return gd && gd._fullData ? gd._fullData.filter(t => t.showlegend && t.meta !== 'reference').map(t => t.name) : null;
"""


POINTS_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
return gd && gd._fullData ? gd._fullData.filter(t => t.showlegend && t.meta !== 'reference')
    .map(t => (t.y || []).filter(v => v !== null && v !== undefined).length) : null;
"""


def points(dash_duo, graph_id):
    """The number of values each architecture's trace in a graph's legend shows."""
    return dash_duo.driver.execute_script(POINTS_JS, graph_id) or []


def names(dash_duo, graph_id):
    """Names of the architectures' traces shown in a graph's legend (reference lines aside)."""
    return dash_duo.driver.execute_script(NAMES_JS, graph_id) or []


def status(dash_duo) -> str:
    return dash_duo.find_element(f"#{ids.TRAIN_STATUS_LINE}").text


def step_of(text: str) -> int:
    m = re.match(r"Step (\d+) / (\d+)", text)
    return int(m.group(1)) if m else -1


def wait(dash_duo, condition, timeout):
    """until() that reports the status line and the message under the buttons when it times out
    (a refused or failed start says why there)."""
    try:
        until(condition, timeout)
    except errors.TestingTimeoutError:
        message = dash_duo.find_element(f"#{ids.TRAIN_MESSAGE}").text
        raise AssertionError(f"timed out; status line: {status(dash_duo)!r}; message: {message!r}") from None


SLIDER_JS = """
const root = document.getElementById(arguments[0]);
const thumb = root && root.querySelector('[role=slider]');
const off = !!root && (!!root.querySelector('[data-disabled]')
                       || (!!thumb && thumb.getAttribute('aria-disabled') === 'true'));
return root && {disabled: off,
                min: thumb && Number(thumb.getAttribute('aria-valuemin')),
                max: thumb && Number(thumb.getAttribute('aria-valuemax')),
                boxes: root.querySelectorAll('input').length, html: root.outerHTML.slice(0, 2000)};
"""


def slider(dash_duo) -> dict:
    """The snapshot slider as rendered: disabled, its range, how many value boxes it shows."""
    return dash_duo.driver.execute_script(SLIDER_JS, ids.TRAIN_SLIDER)


def click(dash_duo, id_):
    wait(dash_duo, lambda: dash_duo.find_element(f"#{id_}").is_enabled(), 30)
    dash_duo.find_element(f"#{id_}").click()


def test_training_starts_pauses_steps_resumes_resets_and_cancels(dash_duo):
    dash_duo.start_server(create_app())
    dash_duo.wait_for_page(url=dash_duo.server_url + "/" + to_query(PARAMS))
    box = dash_duo.find_element(f"#{ids.STEPS}")
    box.clear()
    box.send_keys(f"{STEPS}\t")
    wait(dash_duo, lambda: dash_duo.find_element(f"#{ids.TRAIN_BAR}").get_attribute("max") == str(STEPS), 10)
    before = slider(dash_duo)  # no run yet: nothing to choose, so the slider is off and shows no number
    assert before["disabled"] and before["boxes"] == 0 and before["min"] <= before["max"], before

    # start: progress arrives while the job runs
    click(dash_duo, ids.TRAIN_PLAY)
    wait(dash_duo, lambda: "(training)" in status(dash_duo) and step_of(status(dash_duo)) > 0, 60)
    wait(dash_duo, lambda: names(dash_duo, ids.TRAIN_PROGRESS_GRAPH) == ["RNN", "LSTM"], 30)
    wait(dash_duo, lambda: names(dash_duo, ids.TRAIN_FLOW_GRAPH) == ["RNN", "LSTM"], 30)
    first = step_of(status(dash_duo))
    wait(dash_duo, lambda: step_of(status(dash_duo)) > first, 30)
    assert not dash_duo.find_element(f"#{ids.TRAIN_PLAY}").is_enabled()  # running
    assert int(float(dash_duo.find_element(f"#{ids.TRAIN_BAR}").get_attribute("value"))) > 0

    # pause: the job is cancelled and the step stops moving
    click(dash_duo, ids.TRAIN_PAUSE)
    wait(dash_duo, lambda: "(paused)" in status(dash_duo), 10)
    wait(dash_duo, lambda: dash_duo.find_element(f"#{ids.TRAIN_PLAY}").is_enabled(), 10)
    paused = step_of(status(dash_duo))
    time.sleep(2)
    assert step_of(status(dash_duo)) == paused < STEPS

    # step: exactly one more recorded snapshot, then it stops again
    every = training.record_every(STEPS)
    click(dash_duo, ids.TRAIN_STEP)
    target = (paused // every + 1) * every
    wait(dash_duo, lambda: step_of(status(dash_duo)) == target and "(paused)" in status(dash_duo), 60)

    # resume to the end: the run continues exactly (same losses as one uninterrupted run)
    click(dash_duo, ids.TRAIN_PLAY)
    wait(dash_duo, lambda: "(done)" in status(dash_duo), 300)
    assert step_of(status(dash_duo)) == STEPS
    whole = training.run_job(None, PARAMS, STEPS, STEPS)
    shown = dict(re.findall(r"(RNN|LSTM) loss ([0-9.e+-]+)", status(dash_duo)))
    for arch, name in (("rnn", "RNN"), ("lstm", "LSTM")):
        assert float(shown[name]) == pytest.approx(whole["archs"][arch]["losses"][-1], rel=1e-2)
    slider_max = int(dash_duo.find_element(f"#{ids.TRAIN_SLIDER} [role=slider]").get_attribute("aria-valuemax"))
    assert slider_max == STEPS
    after = slider(dash_duo)
    assert not after["disabled"] and after["min"] <= after["max"] == STEPS, after
    dash_duo.wait_for_element(f"#{ids.TRAIN_EVOLUTION_GRAPH} .js-plotly-plot .hm")  # the heatmap of all snapshots

    # reset: everything cleared
    click(dash_duo, ids.TRAIN_RESET)
    wait(dash_duo, lambda: status(dash_duo) == "Ready.", 10)
    wait(dash_duo, lambda: names(dash_duo, ids.TRAIN_PROGRESS_GRAPH) == [], 30)
    wait(dash_duo, lambda: slider(dash_duo)["disabled"], 10)

    # cancel: Reset while a job runs stops it for good
    click(dash_duo, ids.TRAIN_PLAY)
    wait(dash_duo, lambda: "(training)" in status(dash_duo), 60)
    click(dash_duo, ids.TRAIN_RESET)
    wait(dash_duo, lambda: status(dash_duo) == "Ready.", 10)
    time.sleep(2)
    assert status(dash_duo) == "Ready."
    wait(dash_duo, lambda: dash_duo.find_element(f"#{ids.TRAIN_PLAY}").is_enabled(), 10)
    assert dash_duo.get_logs() == []


def test_a_quick_pause_after_reset_keeps_the_loss_curves(dash_duo):
    # Reset -> ▶ -> ❚❚ while the run is still before its first recorded snapshot: the paused card
    # shows the losses so far (a redraw from a record without snapshots once emptied the figure)
    dash_duo.start_server(create_app())
    dash_duo.wait_for_page(url=dash_duo.server_url + "/" + to_query(PARAMS))
    for _ in range(3):
        click(dash_duo, ids.TRAIN_RESET)
        wait(dash_duo, lambda: status(dash_duo) == "Ready.", 10)
        click(dash_duo, ids.TRAIN_PLAY)
        wait(dash_duo, lambda: "(training)" in status(dash_duo), 60)
        click(dash_duo, ids.TRAIN_PAUSE)
        wait(dash_duo, lambda: "(paused)" in status(dash_duo), 10)
        wait(dash_duo, lambda: dash_duo.find_element(f"#{ids.TRAIN_PLAY}").is_enabled(), 10)
        time.sleep(2)
        assert step_of(status(dash_duo)) > 0
        assert names(dash_duo, ids.TRAIN_PROGRESS_GRAPH) == ["RNN", "LSTM"], status(dash_duo)
        shown = points(dash_duo, ids.TRAIN_PROGRESS_GRAPH)
        assert len(shown) == 2 and min(shown) > 0, (status(dash_duo), shown)
    assert dash_duo.get_logs() == []
