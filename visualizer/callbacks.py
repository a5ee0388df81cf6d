"""Callbacks: module-level functions that only glue (parse inputs -> core via compute -> figures).

Data flow, so that each figure is built once per change:

    URL query  <->  controls        sync_state (one circular callback; validates, writes the URL)
        |
    params store (validated Params, without the open tab)
        |--> update_overview        view 1 + explosion banner + info line
        |--> update_view (+ tab)    the open tab's view (2-6) and its caption

:func:`register` attaches them to an app. The functions stay plain so tests call them directly.
"""
from __future__ import annotations

import logging

import numpy as np
from dash import Input, Output, State, ctx, html, no_update

from . import compute, figures, ids
from .layout import CAPTIONS, info_children
from .urlstate import Params, parse_query, to_query, validate

log = logging.getLogger(__name__)

FIELDS = list(ids.CONTROL_IDS)  # Params fields in control order
STORE_FIELDS = [f for f in FIELDS if f != "view"]
EXPECTED_ERRORS = (ValueError, compute.Unavailable, FloatingPointError, np.linalg.LinAlgError)


# ----------------------------------------------------------------------------- controls <-> params
def params_to_controls(p: Params) -> list:
    """Control values (in ``FIELDS`` order) showing ``p``."""
    values = []
    for name in FIELDS:
        v = getattr(p, name)
        if name == "arch":
            v = list(v)
        elif name == "match_params":
            v = ["match"] if v else []
        values.append(v)
    return values


def controls_to_raw(values) -> dict:
    """Raw values (for :func:`visualizer.urlstate.validate`) from control values in ``FIELDS`` order."""
    raw = dict(zip(FIELDS, values))
    raw["match_params"] = bool(raw.get("match_params"))
    return raw


def store_data(p: Params) -> dict:
    """What the params store holds: every field but the open tab (switching tabs recomputes nothing else)."""
    d = p.to_dict()
    d.pop("view")
    return d


def _message_list(messages):
    """The messages box contents: nothing, or one line per message."""
    if not messages:
        return []
    return [html.Div(m, className="message") for m in messages]


def sync(trigger, search, values, store):
    """Two-way sync between the URL query and the controls.

    Parameters
    ----------
    trigger : id of the input that changed (None on page load, ``ids.URL`` for the URL).
    search : the URL query. values : control values in ``FIELDS`` order. store : current store.

    Returns
    -------
    [search, store, messages, *control values] with ``no_update`` where nothing changes.
    """
    if trigger is None or trigger == ids.URL:
        params, messages = parse_query(search)
        controls = params_to_controls(params)
    else:
        params, messages = validate(controls_to_raw(values), allow_empty_arch=True)
        fixed = params_to_controls(params)
        controls = [new if new != old else no_update for new, old in zip(fixed, values)]
    query = to_query(params)
    data = store_data(params)
    return [query if query != search else no_update, data if data != store else no_update,
            _message_list(messages), *controls]


def sync_state(search, *args):
    """Callback wrapper of :func:`sync` (reads which input fired from ``ctx``)."""
    *values, store = args
    return sync(ctx.triggered_id, search, values, store)


# ----------------------------------------------------------------------------- figures
def _keys(params):
    """RunKeys of the chosen architectures (raises ValueError for impossible task settings)."""
    return [compute.run_key(params, a) for a in params.arch]


def overview(store):
    """View 1, the explosion banner and the info line for the params in ``store``.

    Returns [figure, banner children, info children].
    """
    if store is None:
        return [no_update, no_update, no_update]
    params = Params.from_dict(store)
    try:
        flows = [compute.grad_flow(k) for k in _keys(params)]
    except EXPECTED_ERRORS as e:
        return [figures.message_figure(str(e)), [], []]
    except Exception as e:  # keep serving; the message names the problem
        log.exception("view 1 failed for %s", params)
        return [figures.message_figure(f"Could not compute this configuration: {e}"), [], []]
    banner = [html.Div(line, className="banner-line") for line in compute.explosion_messages(flows)]
    note = next((f.loss_note for f in flows if f.loss_note), None)
    return [figures.grad_norm_figure(flows, truncate=params.truncate), banner, info_children(flows, note)]


VIEW_BUILDERS = {
    "jacobian": lambda keys: figures.jacobian_figure(compute.jacobian_items(keys)),
    "heatmap": lambda keys: figures.heatmap_figure(compute.heatmap_items([compute.grad_flow(k) for k in keys])),
    "spectra": lambda keys: figures.spectra_figure(compute.spectra_items(keys)),
    "gates": lambda keys: figures.gates_figure(compute.gate_items(keys)),
    "connectivity": lambda keys: figures.connectivity_figure(compute.connectivity_items(keys)),
}


def view(store, tab):
    """The open tab's figure and its caption. Returns [figure, caption]."""
    if store is None:
        return [no_update, no_update]
    tab = tab if tab in VIEW_BUILDERS else "heatmap"
    params = Params.from_dict(store)
    caption = CAPTIONS[tab]
    try:
        keys = _keys(params)
        fig = VIEW_BUILDERS[tab](keys)
        note = compute.sequence_note(keys, tab)
        caption = f"{caption} {note}" if note else caption
    except EXPECTED_ERRORS as e:
        fig = figures.message_figure(str(e))
    except Exception as e:  # keep serving; the message names the problem
        log.exception("view %s failed for %s", tab, params)
        fig = figures.message_figure(f"Could not compute this view: {e}")
    return [fig, caption]


# ----------------------------------------------------------------------------- registration
SCALE_HINT_JS = """
function(init) {
    return init === 'pytorch' ? 'field field--muted' : 'field';
}
"""


def register(app) -> None:
    """Attach every callback to ``app``."""
    controls = list(ids.CONTROL_IDS.values())
    app.callback(
        Output(ids.URL, "search"), Output(ids.PARAMS, "data"), Output(ids.MESSAGES, "children"),
        *[Output(c, "value") for c in controls],
        Input(ids.URL, "search"), *[Input(c, "value") for c in controls],
        State(ids.PARAMS, "data"),
    )(sync_state)
    app.callback(
        Output(ids.GRAD_GRAPH, "figure"), Output(ids.BANNER, "children"), Output(ids.INFO, "children"),
        Input(ids.PARAMS, "data"),
    )(overview)
    app.callback(
        Output(ids.VIEW_GRAPH, "figure"), Output(ids.VIEW_CAPTION, "children"),
        Input(ids.PARAMS, "data"), Input(ids.VIEW, "value"),
    )(view)
    app.clientside_callback(SCALE_HINT_JS, Output(ids.SCALE_FIELD, "className"), Input(ids.INIT, "value"))
