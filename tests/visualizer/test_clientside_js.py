"""The browser-side callbacks in assets/*.js, run in node on tables of inputs and expected outputs."""
import re

import dash
import numpy as np
import pytest
from dash import dcc

import core
from tests.visualizer.clientside import ASSETS, NO_UPDATE, functions, run_cases
from visualizer import callbacks, classroom, ids, layout, urlstate, weights
from visualizer.app import create_app

NU = NO_UPDATE
MB = 2**20


def data_url(n_base64: int) -> str:
    """An upload as the browser hands it over: a data URL with ``n_base64`` base64 characters."""
    return "data:application/octet-stream;base64," + "A" * n_base64


def accepted(contents, filename):
    return [{"contents": contents, "filename": filename}, f"Checking {filename}…", "upload-status", NU]


def rejected(message):
    return [None, f"Rejected: {message}", "upload-status error", None]


LIMIT = classroom.upload_limits()  # what the page's weights-limits-store holds (20 MB)
ONE_MB = {"max_bytes": MB}
AT_1MB = data_url(1398102)  # floor(1398102 * 3 / 4) = 1048576 bytes: exactly the limit
OVER_1MB = data_url(1398104)  # 1048578 bytes

CHECK_UPLOAD = [
    # (contents, filename, limits) -> [pending store, status text, status class, weights store]
    ((None, None, LIMIT), [NU, NU, NU, NU]),  # the upload was cleared
    (("", "w.npz", LIMIT), [NU, NU, NU, NU]),
    ((data_url(8), "w.npz", LIMIT), accepted(data_url(8), "w.npz")),
    ((OVER_1MB, "x.npz", LIMIT), accepted(OVER_1MB, "x.npz")),
    ((AT_1MB, "x.npz", ONE_MB), accepted(AT_1MB, "x.npz")),
    ((OVER_1MB, "x.npz", ONE_MB), rejected("the file is 1.0 MB, larger than the 1 MB limit.")),
    ((data_url(8), "w.npz", {"max_bytes": 5}), rejected("the file is 0.0 MB, larger than the 0 MB limit.")),
    ((data_url(8), "w.npz", {"max_bytes": 6}), accepted(data_url(8), "w.npz")),  # 8 base64 chars = 6 bytes
    # no limits store (or a forged one): nothing is rejected here, the server checks every upload
    ((OVER_1MB, "x.npz", None), accepted(OVER_1MB, "x.npz")),
    ((OVER_1MB, "x.npz", {"max_bytes": "1"}), accepted(OVER_1MB, "x.npz")),
]


def test_check_upload_table():
    cases = [("checkUpload", args) for args, _ in CHECK_UPLOAD]
    assert run_cases("classroom.js", "classroom", cases) == [want for _, want in CHECK_UPLOAD]


@pytest.mark.parametrize("meta, style", [(None, {"display": "none"}),
                                         ({"filename": "w.npz", "summary": "LSTM"}, {})])
def test_remove_button_shows_only_with_an_upload(meta, style):
    assert run_cases("classroom.js", "classroom", [("removeButtonStyle", [meta])]) == [style]


def test_remove_upload_clears_file_pending_status_and_store():
    # outputs: upload contents, filename, pending store, status text, status class, weights store
    assert run_cases("classroom.js", "classroom", [("removeUpload", [1])]) == [[None, None, None, "", "upload-status",
                                                                               None]]


def test_the_limits_store_carries_the_server_limit():
    stores = [c for c in classroom.upload_card().children if isinstance(c, dcc.Store) and c.id == ids.UPLOAD_LIMITS]
    assert [s.data for s in stores] == [{"max_bytes": weights.MAX_BYTES, "missing": classroom.MISSING,
                                         "pending": ids.UPLOAD_PENDING}]


D = "ab" * 32
PENDING = {"contents": data_url(8), "filename": "w.npz"}
LOST_NOTE = [{"type": "Span", "props": {"children": classroom.LOST.format(name="w.npz", what=classroom.RESENDING)}}]
RESEND_UPLOAD = [
    # (info children, weights store, pending store, limits) -> pending store
    ((LOST_NOTE, {"digest": D}, PENDING, LIMIT), {**PENDING, "resent": D}),  # lost: send it again
    ((LOST_NOTE, {"digest": D}, {**PENDING, "resent": D}, LIMIT), NU),  # ... once
    ((LOST_NOTE, {"digest": "cd" * 32}, {**PENDING, "resent": D}, LIMIT), {**PENDING, "resent": "cd" * 32}),
    (([{"props": {"children": "Dashed: w.npz"}}], {"digest": D}, PENDING, LIMIT), NU),  # found: nothing to do
    ((LOST_NOTE, None, PENDING, LIMIT), NU),  # removed meanwhile
    ((LOST_NOTE, {"digest": D}, None, LIMIT), NU),
    ((LOST_NOTE, {"digest": D}, {"filename": "w.npz"}, LIMIT), NU),
    ((LOST_NOTE, {"digest": 5}, PENDING, LIMIT), NU),
    ((LOST_NOTE, {"digest": D}, PENDING, None), NU),  # no (or a forged) limits store: never resend
    ((LOST_NOTE, {"digest": D}, PENDING, {"missing": ""}), NU),
    ((None, {"digest": D}, PENDING, LIMIT), NU),
]


def test_resend_upload_table():
    cases = [("resendUpload", args) for args, _ in RESEND_UPLOAD]
    assert run_cases("classroom.js", "classroom", cases) == [want for _, want in RESEND_UPLOAD]


HINT = layout.scale_hint()  # what the page's scale-hint-store holds
MUTED, PLAIN = "field field--muted", "field"

SCALE_FIELD_CLASS = [
    # (init, constants) -> class of the scale slider's field
    *[((init, HINT), MUTED if init in urlstate.UNSCALED_INITS else PLAIN) for init in urlstate.INIT_CHOICES],
    (("pytorch", HINT), MUTED),
    (("orthogonal", {"unscaled": ["orthogonal", "identity"]}), MUTED),
    (("pytorch", {"unscaled": []}), PLAIN),
    ((None, HINT), PLAIN),  # no value yet
    (("PyTorch", HINT), PLAIN),  # names are case-sensitive, as in the URL
    # no store (or a forged one): nothing is muted, the slider stays usable
    (("pytorch", None), PLAIN),
    (("pytorch", {"unscaled": "pytorch"}), PLAIN),
    (("pytorch", {}), PLAIN),
]


def test_scale_field_class_table():
    cases = [("scaleFieldClass", args) for args, _ in SCALE_FIELD_CLASS]
    assert run_cases("controls.js", "controls", cases) == [want for _, want in SCALE_FIELD_CLASS]


def test_the_scale_hint_store_carries_the_initialisations_that_ignore_scale():
    stores = [c for c in layout.controls().children if isinstance(c, dcc.Store) and c.id == ids.SCALE_HINT]
    assert [s.data for s in stores] == [{"unscaled": ["pytorch"]}]


@pytest.mark.parametrize("init", urlstate.INIT_CHOICES)
def test_the_muted_initialisations_are_the_ones_the_core_builds_without_scale(init):
    """What the hint says is true: the scale changes no weight under a muted initialisation, and W_hh under
    every other one."""
    a, b = (core.build("rnn", input_size=2, hidden_size=4, output_size=1, init=init, scale=s) for s in (0.5, 3.0))
    same = [name for name, w in a.params.items() if np.array_equal(w, b.params[name])]
    assert (same == list(a.params)) == (init in urlstate.UNSCALED_INITS), same


def test_the_scale_hint_is_a_function_of_an_asset():
    app = dash.Dash(__name__)
    callbacks.register(app)
    [hint] = [c for c in app._callback_list if c["output"] == f"{ids.SCALE_FIELD}.className"]
    assert hint["clientside_function"] == {"namespace": "controls", "function_name": "scaleFieldClass"}


def test_classroom_has_no_javascript_in_python_strings():
    app = dash.Dash(__name__)
    classroom.register(app)
    inline = [c["output"] for c in app._callback_list
              if (c.get("clientside_function") or {}).get("namespace") == "_dashprivate_clientside_funcs"]
    assert inline == []


def test_every_clientside_function_of_the_app_is_defined_in_an_asset():
    """Each ``ClientsideFunction(ns, fn)`` the app registers is a function of the one asset that defines
    ``window.dash_clientside.<ns>`` (inline JavaScript strings are not checked here)."""
    used = {}
    for c in create_app()._callback_list:
        f = c.get("clientside_function")
        if f and f["namespace"] != "_dashprivate_clientside_funcs":
            used.setdefault(f["namespace"], set()).add(f["function_name"])
    assert {"classroom", "controls"} <= set(used)
    for namespace, names in used.items():
        defines = re.compile(rf"dash_clientside\.{namespace}\s*=(?!=)")  # another asset may call it
        homes = [p.name for p in sorted(ASSETS.glob("*.js")) if defines.search(p.read_text())]
        assert len(homes) == 1, (namespace, homes)
        assert names <= set(functions(homes[0], namespace)), namespace


@pytest.mark.parametrize("class_name, present", [("page", False), ("page present", True),
                                                 ("page hide-arch present", True), ("page presentation", False),
                                                 (None, False), ("", False)])
def test_presentation_mode_is_read_from_the_page_class(class_name, present):
    assert run_cases("classroom.js", "classroom", [("isPresent", [class_name])]) == [present]


GRAPH_FIT = [
    # figure -> the style of its graph (as tall as the figure, so a resize cannot collapse it)
    ({"data": [], "layout": {"height": 460}}, {"height": "460px"}),
    ({"data": [], "layout": {"height": 644.0}}, {"height": "644px"}),
    ({"data": [], "layout": {}}, {}),
    ({"data": []}, {}),
    (None, {}),
    ({"layout": {"height": "460"}}, {}),  # forged or odd values give the default style
    ({"layout": {"height": -5}}, {}),
    ({"layout": {"height": None}}, {}),
]


def test_graph_fit_table():
    assert run_cases("graphs.js", "graphs", [("fit", [fig]) for fig, _ in GRAPH_FIT]) == [w for _, w in GRAPH_FIT]
