"""The "BPTT step by step" tab in a real browser: play, step back and forth, and what each phase draws."""
import math

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from visualizer import export, ids, presets, stepview, unrolled
from visualizer.app import create_app
from visualizer.stepview import fmt

pytestmark = pytest.mark.e2e

STATE = """
const gd = document.getElementById(arguments[0]);
if (!gd || !gd._fullLayout || !gd._fullLayout.sliders || !gd._transitionData) { return null; }
const d = gd._fullData, nb = arguments[1];
return {active: gd._fullLayout.sliders[0].active, frames: gd._transitionData._frames.length,
        title: gd._fullLayout.title.text.replace(/<br>/g, ' '),
        edges: d.slice(0, nb).map(t => (t.x || []).filter(v => v !== null).length / 2),  // segments
        h: Array.from(d[nb].text || []), loss: Array.from(d[nb + 2].text || []),
        bars: Array.from(d[d.length - 1 - (arguments[2] - 1)].y || []).map(v => v === null ? null : Number(v)),
        range: gd._fullLayout.xaxis.range,
        graphHidden: getComputedStyle(document.getElementById(arguments[3])).display === 'none'};
"""


def state(dash_duo, n_static):
    return dash_duo.driver.execute_script(STATE, ids.STEP_PLOT, unrolled.DECADES + 1, n_static + 4, ids.VIEW_GRAPH)


def wait_frame(dash_duo, n_static, active, timeout=10):
    until(lambda: (state(dash_duo, n_static) or {}).get("active") == active, timeout, poll=0.05)
    return state(dash_duo, n_static)


def press(dash_duo, *keys, shift=False):
    chain = ActionChains(dash_duo.driver)
    if shift:
        chain = chain.key_down(Keys.SHIFT)
    for k in keys:
        chain = chain.send_keys(k)
    if shift:
        chain = chain.key_up(Keys.SHIFT)
    chain.perform()


def test_play_step_back_and_forth_through_every_phase(dash_duo):
    preset = presets.PRESETS["bptt-steps"]
    p = stepview.payload(preset.params)  # what the page must show, from the core
    w, T = p.walk, p.T
    fig = unrolled.step_figure(p)
    n_static = len(fig["data"]) - len(fig["frames"][0]["data"])
    dash_duo.start_server(create_app())
    dash_duo.driver.get(dash_duo.server_url + "/?preset=bptt-steps")
    until(lambda: state(dash_duo, n_static) is not None, 30, poll=0.1)
    s = state(dash_duo, n_static)
    assert s["frames"] == len(fig["frames"]) and s["active"] == 0 and s["graphHidden"]
    assert s["h"] == [""] * T and sum(s["edges"]) == 0  # nothing computed yet
    # forward: Step fills the states left to right
    dash_duo.find_element(f"#{ids.STEP_NEXT}").click()
    dash_duo.find_element(f"#{ids.STEP_NEXT}").click()
    s = wait_frame(dash_duo, n_static, 2)
    assert s["h"][:2] == [fmt(stepview.rms(w.h[0, t])) for t in range(2)] and s["h"][2:] == [""] * (T - 2)
    assert s["title"].startswith("Forward, step 1")
    dash_duo.find_element(f"#{ids.STEP_BACK}").click()
    s = wait_frame(dash_duo, n_static, 1)
    assert s["h"][1:] == [""] * (T - 1)
    # shift+→ jumps to the losses: every step's loss, from the core
    dash_duo.find_element("body").click()
    press(dash_duo, Keys.ARROW_RIGHT, shift=True)
    s = wait_frame(dash_duo, n_static, T + 1)
    assert s["loss"] == [fmt(v) for v in w.step_losses] and fmt(w.loss) in s["title"]
    # → : the backward pass starts at the last step, all of it local; then right to left
    press(dash_duo, Keys.ARROW_RIGHT)
    s = wait_frame(dash_duo, n_static, T + 2)
    assert s["h"] == [""] * (T - 1) + [fmt(w.hidden_grad_norms[0, T - 1])]
    assert s["title"].startswith(f"Backward starts at the last step {T - 1}")
    assert sum(s["edges"]) == 1  # the local edge y -> h at the last step
    press(dash_duo, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    s = wait_frame(dash_duo, n_static, T + 5)
    back = T - 4
    assert s["h"] == [""] * back + [fmt(v) for v in w.hidden_grad_norms[0, back:]]
    assert sum(s["edges"]) == 4 + 3  # four local edges, three carried edges
    bars = s["bars"]
    assert all(v is None for v in bars[:back])
    assert bars[back:] == pytest.approx(w.contributions.shares[0, back:].tolist(), rel=1e-12)
    press(dash_duo, Keys.ARROW_LEFT)
    s = wait_frame(dash_duo, n_static, T + 4)
    assert s["h"][back] == ""  # one step back: step `back` not reached yet
    # Play runs the frames by itself; Pause stops it
    dash_duo.find_element(f"#{ids.STEP_PLAY}").click()
    until(lambda: state(dash_duo, n_static)["active"] >= T + 6, 10, poll=0.05)
    dash_duo.find_element(f"#{ids.STEP_PAUSE}").click()
    stopped = state(dash_duo, n_static)["active"]
    dash_duo.driver.implicitly_wait(0)
    until(lambda: state(dash_duo, n_static)["active"] == stopped, 3, poll=0.2)
    # End: the next forward pass after the (clipped) update, with the new loss
    press(dash_duo, Keys.END)
    s = wait_frame(dash_duo, n_static, len(fig["frames"]) - 1)
    assert s["loss"] == [fmt(v) for v in w.next_step_losses]
    assert f"from {fmt(w.loss)} to {fmt(w.next_loss)}" in s["title"]
    press(dash_duo, Keys.ARROW_LEFT, shift=True)  # back to the start of the next forward pass
    press(dash_duo, Keys.ARROW_LEFT, shift=True)  # the update, clipping shown as a rescale
    s = wait_frame(dash_duo, n_static, 2 * T + 3)
    assert s["title"].startswith("Clipping") and fmt(w.clip_scale) in s["title"]
    # another tab gives the view graph back; the step tab draws again on return
    dash_duo.find_element(f"#{ids.VIEW} .tab:nth-child(1)").click()
    until(lambda: dash_duo.driver.execute_script(
        f"return getComputedStyle(document.getElementById('{ids.VIEW_GRAPH}')).display") != "none", 10)
    press(dash_duo, Keys.ARROW_RIGHT)  # no stepped figure on this tab: the key does nothing (and no error)
    assert dash_duo.get_logs() == []


def test_too_long_a_sequence_gets_a_message_naming_the_field(dash_duo):
    dash_duo.start_server(create_app())
    dash_duo.driver.get(dash_duo.server_url + "/?arch=gru&seq_len=500&view=steps")
    until(lambda: "Sequence length T = 500" in dash_duo.driver.execute_script(
        f"const gd = document.querySelector('#{ids.VIEW_GRAPH} .js-plotly-plot');"
        "return gd && gd._fullLayout ? gd._fullLayout.annotations.map(a => a.text).join(' ') : ''"), 30, poll=0.1)
    assert dash_duo.driver.execute_script(
        f"return getComputedStyle(document.getElementById('{ids.STEP_TOOLBAR}')).display") == "none"
    assert dash_duo.get_logs() == []


ACTIVE = """
const gd = document.getElementById(arguments[0]);
return gd && gd._fullLayout && gd._fullLayout.sliders && gd._transitionData ? gd._fullLayout.sliders[0].active : null;
"""


def test_the_html_report_steps_with_the_arrow_keys(dash_duo, tmp_path):
    params = presets.PRESETS["bptt-steps"].params
    starts = [i for i, (_, _, label) in enumerate(unrolled.frame_plan(stepview.payload(params))) if label]
    report = tmp_path / "report.html"
    report.write_text(export.report(params), encoding="utf-8")
    dash_duo.driver.get(report.as_uri())  # from disk: no app, no server
    active = lambda: dash_duo.driver.execute_script(ACTIVE, export.STEPPED_DIV)  # noqa: E731
    until(lambda: active() == 0, 30, poll=0.1)
    dash_duo.find_element("body").click()
    press(dash_duo, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    until(lambda: active() == 2, 10, poll=0.05)
    press(dash_duo, Keys.ARROW_LEFT)
    until(lambda: active() == 1, 10, poll=0.05)
    press(dash_duo, Keys.ARROW_RIGHT, shift=True)  # a whole phase: to the losses
    until(lambda: active() == next(s for s in starts if s > 1), 10, poll=0.05)
    press(dash_duo, Keys.END)
    until(lambda: active() == len(unrolled.frame_plan(stepview.payload(params))) - 1, 10, poll=0.05)
    assert dash_duo.get_logs() == []


FIT_JS = """
const bar = document.getElementById(arguments[0]), plot = document.getElementById(arguments[1]);
bar.scrollIntoView({block: 'start'});
const b = bar.getBoundingClientRect(), p = plot.getBoundingClientRect();
return {inner: window.innerHeight, top: b.top, above: p.top - b.top, bottom: p.bottom,
        height: plot._fullLayout ? plot._fullLayout.height : null};
"""


def test_in_presentation_mode_the_step_buttons_and_figure_fit_the_window(dash_duo):
    dash_duo.driver.set_window_size(1280, 900)
    dash_duo.start_server(create_app())
    dash_duo.driver.get(dash_duo.server_url + "/?preset=bptt-steps&present=1")
    until(lambda: dash_duo.driver.execute_script(ACTIVE, ids.STEP_PLOT) == 0, 60, poll=0.1)
    until(lambda: dash_duo.driver.execute_script(FIT_JS, ids.STEP_TOOLBAR, ids.STEP_PLOT)["height"] < 1000, 30)
    fit = dash_duo.driver.execute_script(FIT_JS, ids.STEP_TOOLBAR, ids.STEP_PLOT)
    room = fit["inner"] - fit["above"] - 8
    assert room >= 500  # this window leaves the figure more than its smallest height
    assert fit["height"] == pytest.approx(room, abs=1)  # as tall as the window allows (built: 900 px x 1.2)
    assert fit["top"] == pytest.approx(0, abs=1) and fit["bottom"] <= fit["inner"]  # buttons and figure at once
    assert dash_duo.get_logs() == []


GEOMETRY_JS = """
const bar = document.getElementById(arguments[0]), plot = document.getElementById(arguments[1]);
if (!plot._fullLayout || !plot._fullLayout.meta) { return null; }
const b = bar.getBoundingClientRect(), p = plot.getBoundingClientRect();
const buttons = Array.from(bar.querySelectorAll('.step-button')).map(e => e.getBoundingClientRect());
const menu = plot.querySelector('.updatemenu-container').getBoundingClientRect();
const rail = plot.querySelector('.slider-rail-rect').getBoundingClientRect();
return {inner: window.innerHeight, above: p.top - b.top, buttonsBottom: Math.max(...buttons.map(r => r.bottom)),
        plotTop: p.top, height: plot._fullLayout.height, width: plot._fullLayout.width, divWidth: p.width,
        least: plot._fullLayout.meta.min_height, menuRight: menu.right, railLeft: rail.left,
        present: document.querySelector('.present') !== null};
"""


def test_the_step_figure_refits_after_a_resize_and_a_presentation_toggle(dash_duo):
    driver = dash_duo.driver
    dash_duo.start_server(create_app())
    driver.get(dash_duo.server_url + "/?preset=bptt-steps&present=1")
    chrome = driver.execute_script("return window.outerHeight - window.innerHeight")

    def viewport(width, height):
        driver.set_window_size(width, height + chrome)

    def geometry():
        return driver.execute_script(GEOMETRY_JS, ids.STEP_TOOLBAR, ids.STEP_PLOT)

    def room(g):  # the window's room under the step buttons
        return math.floor(g["inner"] - g["above"] - 8)

    def settles(want):  # the height drawn once the page has re-fitted, and the plot as wide as its div
        def ok():
            g = geometry()
            return g is not None and g["height"] == want(g) and abs(g["width"] - g["divWidth"]) <= 1
        until(ok, 20, poll=0.1)
        return geometry()

    viewport(1280, 900)
    until(lambda: driver.execute_script(ACTIVE, ids.STEP_PLOT) == 0, 60, poll=0.1)
    g = settles(room)
    assert g["present"] and g["height"] > g["least"]
    viewport(1280, 577)  # a laptop letterboxed for a projector: less room than the figure needs
    g = settles(lambda g: g["least"])  # its least readable height, and the page scrolls
    assert g["inner"] - g["above"] - 8 < g["least"] < 900
    viewport(1280, 577)
    for height in (600, 650, 700, 760):  # a burst of resize events: one re-fit at the end
        viewport(1100, height)
    g = settles(room)
    assert g["inner"] == 760 and g["height"] > g["least"]
    assert g["buttonsBottom"] <= g["plotTop"] + 1  # the step buttons above the figure, not over it
    assert g["menuRight"] <= g["railLeft"]  # the ▶ / ❚❚ buttons left of the slider
    dash_duo.find_element(f"#{ids.PRESENT_EXIT}").click()  # out of presentation mode: the figure as built
    g = settles(lambda g: 900)
    assert not g["present"]
    dash_duo.find_element(f"#{ids.PRESENT_TOGGLE}").click()  # and back: fitted to this window again
    g = settles(room)
    assert g["present"] and g["inner"] == 760
    assert dash_duo.get_logs() == []
