"""The stepping logic of assets/stepview.js, run in node on tables of inputs and expected outputs."""
from tests.visualizer.clientside import NO_UPDATE, run_cases


def run(cases):
    """Results of ``stepview.fn(*args)`` for each ``[fn, args]``, run in node."""
    return run_cases(("graphs.js", "stepview.js"), "stepview", [(fn, args) for fn, args in cases])


STARTS = [0, 1, 13, 14, 26, 27, 28]  # start, forward, losses, backward, sum, update, next (T = 12: 40 frames)
TARGET = [
    # (current, action, n, starts) -> frame shown
    ((0, "next", 40, STARTS), 1),
    ((5, "next", 40, STARTS), 6),
    ((39, "next", 40, STARTS), 39),  # stays on the last frame
    ((5, "back", 40, STARTS), 4),
    ((0, "back", 40, STARTS), 0),  # stays on the first frame
    ((17, "first", 40, STARTS), 0),
    ((17, "last", 40, STARTS), 39),
    ((5, "phase-next", 40, STARTS), 13),
    ((13, "phase-next", 40, STARTS), 14),
    ((28, "phase-next", 40, STARTS), 39),  # no later phase: the end
    ((20, "phase-back", 40, STARTS), 14),
    ((14, "phase-back", 40, STARTS), 13),
    ((0, "phase-back", 40, STARTS), 0),
    ((5, "phase-next", 40, [99, -1, 2.5, 13]), 13),  # starts outside the frames are ignored
    ((5, "phase-next", 40, None), 39),
    ((99, "back", 40, STARTS), 38),  # a current index past the end is clamped first
    ((None, "next", 40, STARTS), 1),  # no slider state yet: from frame 0
    ((3, "jump", 40, STARTS), 3),  # unknown actions do nothing
    ((3, "next", 0, STARTS), 0),  # no frames
]

KEYS = [
    # (key, shift, tag, editable, role) -> action
    (("ArrowRight", False, "DIV", False, None), "next"),
    (("ArrowLeft", False, "BODY", False, None), "back"),
    (("ArrowRight", True, "DIV", False, None), "phase-next"),
    (("ArrowLeft", True, "DIV", False, None), "phase-back"),
    (("Home", False, "DIV", False, None), "first"),
    (("End", False, "DIV", False, None), "last"),
    (("ArrowRight", False, "BUTTON", False, None), "next"),  # after clicking Step the button keeps the focus
    (("ArrowRight", False, "INPUT", False, None), None),  # typing in a number box moves the caret, not the frames
    (("ArrowLeft", False, "textarea", False, None), None),
    (("ArrowRight", False, "SELECT", False, None), None),
    (("ArrowRight", False, "DIV", True, None), None),  # contenteditable
    (("ArrowRight", False, "DIV", False, "slider"), None),  # a Dash 4 slider thumb moves with the arrows
    (("ArrowLeft", False, "BUTTON", False, "tab"), None),  # the view tabs
    (("ArrowRight", False, "INPUT", False, "radio"), None),
    (("ArrowLeft", False, "DIV", False, "Option"), None),  # dropdown options
    (("ArrowRight", False, "DIV", False, "button"), "next"),
    (("a", False, "DIV", False, None), None),
    (("ArrowUp", False, "DIV", False, None), None),
]


def test_target_table():
    assert run([["target", list(args)] for args, _ in TARGET]) == [want for _, want in TARGET]


def test_key_table():
    assert run([["keyAction", list(args)] for args, _ in KEYS]) == [want for _, want in KEYS]


C = {"graph": "view-graph", "back": "b-id", "next": "n-id", "play": "p-id", "pause": "q-id", "view": "steps"}
BUTTONS = [
    # (triggering prop id, constants) -> action
    (("b-id.n_clicks", C), "back"),
    (("n-id.n_clicks", C), "next"),
    (("p-id.n_clicks", C), "play"),
    (("q-id.n_clicks", C), "pause"),
    (("other.n_clicks", C), None),
    (("", C), None),
    (("b-id.n_clicks", None), None),  # no constants store yet
    ((None, C), None),
]


def test_button_table():
    assert run([["buttonAction", list(args)] for args, _ in BUTTONS]) == [want for _, want in BUTTONS]


STEPPED = {"data": [], "layout": {"sliders": [{"name": "phase"}]}, "frames": [{"name": "0"}]}
MESSAGE = {"data": [], "layout": {"annotations": [{"text": "Sequence length T = 500 is longer ..."}]}}
SHOW, HIDE = {}, {"display": "none"}
PLACEMENT = [
    # (view graph figure, open tab, constants) -> [toolbar + stepped plot style, view graph style]
    ((STEPPED, "steps", C), [SHOW, HIDE]),
    ((MESSAGE, "steps", C), [HIDE, SHOW]),  # an error message stays in the view graph
    ((STEPPED, "heatmap", C), [HIDE, SHOW]),  # another tab (its figure not yet arrived)
    (({**STEPPED, "frames": []}, "steps", C), [HIDE, SHOW]),
    (({**STEPPED, "layout": {"sliders": [{"name": "window"}]}}, "steps", C), [HIDE, SHOW]),
    ((None, "steps", C), [HIDE, SHOW]),
    ((STEPPED, "steps", None), [HIDE, SHOW]),
    (({**MESSAGE, "layout": {"height": 480}}, "heatmap", C), [HIDE, {"height": "480px"}]),  # as tall as its figure
    (({**STEPPED, "layout": {"height": 900, "sliders": []}}, "steps", C), [HIDE, {"height": "900px"}]),
]


def test_placement_table():
    assert run([["placement", list(args)] for args, _ in PLACEMENT]) == [want for _, want in PLACEMENT]


def test_button_callback_without_a_trigger_changes_nothing():
    assert run([["buttons", [None, None, None, None, C]], ["buttons", [1, 0, 0, 0, None]]]) == [
        NO_UPDATE, NO_UPDATE]


FIT = [
    # (built height, room under the buttons, presentation mode) -> height drawn
    ((1080, 650, True), 650),  # a projector: buttons and figure in the window at once
    ((1080, 2000, True), 1080),  # never taller than built
    ((1080, 300, True), 500),  # never below FIT_MIN: the network stays readable (the page scrolls)
    ((1080, 300, True, 640), 640),  # nor below the least height the figure says keeps it readable
    ((1080, 700, True, 640), 700),
    ((600, 300, True, 640), 600),  # a least height above the figure's own: as built
    ((1080, 300, True, None), 500),
    ((1080, 300, False, 640), 1080),
    ((1080, 650, False), 1080),  # the page as built outside presentation mode
    ((1080, None, True), 1080),
    ((1080, -5, True), 1080),
    ((None, 650, True), None),
]


def test_fit_height_table():
    assert run([["fitHeight", list(args)] for args, _ in FIT]) == [want for _, want in FIT]
