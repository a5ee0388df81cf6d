"""Callbacks: module-level functions that only glue (parse inputs -> core via compute -> figures).

Data flow, so that a control change costs one round trip and each figure is built once:

    page load:  URL query --apply_url--> controls          (read once; back/forward reloads the page)
    controls + tab + uploaded weights --update_page-->
        view 1 + explosion banner + info line     (when a model setting or the weights changed)
        the open tab's view + its caption         (when a model setting or the tab changed)
        the URL query, the messages, the params store

One callback, not one per output: three parallel requests for one change cost more than one
(each adds Dash's bookkeeping in the page and they compete for the server's GIL on the same BPTT
runs; measured in benchmarks/bench_app_latency.py). To set the app's state from another
callback (presets, uploads), output new control values; the URL follows by itself.
:func:`register` attaches everything to an app; the functions stay plain so tests call them.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from urllib.parse import quote

import numpy as np
from dash import ClientsideFunction, Input, Output, State, callback_context, html, no_update

from . import (classroom, compute, explain, facts, framing, ids, limits, narrative, payloads, presets, training_ui,
               views)
from .layout import info_children
from .plotstyle import message_figure
from .urlstate import DEFAULTS, Params, query_pairs, to_query, validate

log = logging.getLogger(__name__)

FIELDS = list(ids.CONTROL_IDS)  # Params fields in control order (the tab last)
STORE_FIELDS = [f for f in FIELDS if f != "view"]
TRAINING_FIELDS = ("clip", "optimizer", "lr", "steps")  # used by training only: changing them redraws nothing here
VIEW_FIELDS = [f for f in STORE_FIELDS if f not in TRAINING_FIELDS]
EXPECTED_ERRORS = (ValueError, FloatingPointError, np.linalg.LinAlgError)


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
        elif v is None:
            v = ""  # an empty number box (None would make dcc.Input show "NaN" after a number)
        values.append(v)
    return values


def controls_to_raw(values) -> dict:
    """Raw values (for :func:`visualizer.urlstate.validate`) from control values in ``FIELDS`` order."""
    raw = dict(zip(FIELDS, values, strict=False))
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


def apply_url(pathname, search):
    """Page load: the control values (in ``FIELDS`` order) showing the URL's validated state
    (``?preset=<key>`` expands to that preset's settings, see :func:`visualizer.presets.expand_query`)."""
    params, _ = presets.parse_query(search)
    return params_to_controls(params)


def display_query(search) -> str:
    """The display flags of a query (``present``, ``<name>_hide``) as ``&key=value`` pairs to keep."""
    pairs = query_pairs(search) or []
    keep = [(k, v) for k, v in pairs if k.strip().lower() == "present" or k.strip().lower().endswith("_hide")]
    return "".join(f"&{quote(k, safe='_')}={quote(v, safe='')}" for k, v in keep)


def url_and_messages(values, current_search):
    """[query, messages, store] for control values (``FIELDS`` order) and the URL now shown.

    While the controls show what the URL says, the URL is left alone (no history entry at page
    load) and its messages stay visible, unless the URL needed corrections: then the address bar
    gets the corrected, canonical query (display flags kept) beside the messages saying what was
    corrected. After a change the canonical query is written and only messages about the controls
    remain.
    """
    params, messages = validate(controls_to_raw(values), allow_empty_arch=True)
    shown, url_messages = presets.parse_query(current_search)
    if params == shown:
        fixed = to_query(params) + display_query(current_search) if url_messages else no_update
        return [fixed, _message_list(url_messages + messages), store_data(params)]
    return [to_query(params), _message_list(messages), store_data(params)]


# ----------------------------------------------------------------------------- figures
def _keys(params):
    """RunKeys of the chosen architectures (raises ValueError for impossible task settings)."""
    return [compute.run_key(params, a) for a in params.arch]


def overview(store, upload=None):
    """View 1, the explosion banner and the info line for the params in ``store``; ``upload``
    (the weights store, see :mod:`visualizer.classroom`) adds an uploaded model's curve, dashed,
    on the same axis.

    Returns [figure, banner children, info children].
    """
    if store is None:
        return [no_update, no_update, no_update]
    params = Params.from_dict(store)
    view1 = views.GRAD_NORM
    try:
        payload = view1.payload(_keys(params))
        uploaded, upload_note = classroom.flow_of_upload(params, upload)
    except EXPECTED_ERRORS as e:
        return [message_figure(str(e)), [], []]
    except Exception as e:  # keep serving; the message names the problem
        log.exception("view 1 failed for %s", params)
        return [message_figure(f"Could not compute this configuration: {e}"), [], []]
    flows = list(payload.flows)
    banner = [html.Div(line, className="banner-line") for line in payloads.explosion_messages(flows)]
    note = next((f.loss_note for f in flows if f.loss_note), None)
    if uploaded:
        payload = replace(payload, flows=(*payload.flows, uploaded))
    info = info_children(flows, note) + ([html.Span(upload_note, className="info-item note")] if upload_note else [])
    return [classroom.mark_uploaded(view1.figure(payload)), banner, info + landing_children(params)]


LANDING_NEXT = "lstm-long-memory"  # the preset a first visit is pointed to when everything vanishes


def landing_children(params) -> list:
    """The computed note under view 1 when every chosen network vanishes and no preset is open
    (the first visit), with a link to a preset that shows the contrast."""
    if presets.matching(params) is not None:
        return []
    nxt = presets.get(LANDING_NEXT)
    text = narrative.landing_note([facts.grad_facts(k) for k in _keys(params)], nxt.title, nxt.params.forget_bias)
    if text is None:
        return []
    return [html.Span([text, " ", html.A("Open it →", href=f"?preset={nxt.key}", className="landing-link")],
                      className="info-item note landing-note")]


def view(store, tab):
    """The open tab's figure and its caption. Returns [figure, caption]."""
    if store is None:
        return [no_update, no_update]
    v = views.get(tab)
    v = v if v is not None and v.tab else views.get(DEFAULTS.view)
    params = Params.from_dict(store)
    caption = v.caption
    try:
        keys = _keys(params)
        fig = v.figure(views.payload_of(v, keys, params))
        note = v.note(keys)
        caption = f"{caption} {note}" if note else caption
    except EXPECTED_ERRORS as e:
        fig = message_figure(str(e))
    except Exception as e:  # keep serving; the message names the problem
        log.exception("view %s failed for %s", v.key, params)
        fig = message_figure(f"Could not compute this view: {e}")
    return [fig, caption]


# ----------------------------------------------------------------------------- the page callback
WEIGHTS = "weights"  # the name :func:`page` gives a change of the uploaded weights
PRESENT = "present"  # ... and a change of presentation mode


def page(values, upload=None, search="", changed=None, present=False):
    """Everything a change redraws, computed once: [view 1 figure, banner, info, tab figure,
    caption, query, messages, params store], ``no_update`` for what ``changed`` leaves alone.

    ``values``: control values in ``FIELDS`` order (the tab last); ``upload``: the weights store;
    ``search``: the query now shown; ``changed``: names of the fields that
    changed (``WEIGHTS`` for the upload, ``PRESENT`` for presentation mode), None for all (page
    load); ``present``: draw the figures for a projector (:func:`visualizer.framing.present_figure`).
    """
    changed = set(FIELDS) | {WEIGHTS} if changed is None else set(changed)
    model = bool(changed & set(VIEW_FIELDS))
    params, _ = validate(controls_to_raw(values), allow_empty_arch=True)
    store = store_data(params)
    out = [no_update] * 8
    tab = views.get(params.view)
    first = bool(model or changed & {WEIGHTS, PRESENT})
    second = bool(model or changed & {"view", PRESENT} or (tab is not None and changed & set(tab.uses)))
    if first and second:  # both at once: NumPy releases the GIL in its heavy loops, so two cores share the work
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(view, store, params.view)
            out[0:3] = overview(store, upload)
            out[3:5] = pending.result()
    elif first:
        out[0:3] = overview(store, upload)
    elif second:
        out[3:5] = view(store, params.view)
    if present:
        scales = (framing.PRESENT_SCALE, (tab and tab.present_scale) or framing.PRESENT_SCALE)
        out[0], out[3] = (framing.present_figure(f, k) if isinstance(f, dict) else f
                          for f, k in zip((out[0], out[3]), scales, strict=True))
    if changed - {WEIGHTS, PRESENT}:
        out[5:8] = url_and_messages(values, search)
    return out


def _changed_fields(triggered) -> set:
    """Field names (or WEIGHTS) of the triggering inputs in Dash's ``ctx.triggered`` format."""
    by_id = {c: f for f, c in ids.CONTROL_IDS.items()} | {ids.WEIGHTS_STORE: WEIGHTS, ids.PRESENT_STORE: PRESENT}
    names = {by_id.get(t["prop_id"].rsplit(".", 1)[0]) for t in triggered or []}
    return None if not names or None in names else names


def update_page(*args):
    """Callback: :func:`page` from the control values (``FIELDS`` order), the weights store (the
    checked upload's digest, never the file: see :mod:`visualizer.shelf`), presentation mode and
    the query now shown."""
    *values, meta, present, search = args
    return page(values, meta, search, _changed_fields(callback_context.triggered), bool(present))


# ----------------------------------------------------------------------------- registration
def register(app) -> None:
    """Attach every callback to ``app``."""
    controls = [ids.CONTROL_IDS[f] for f in FIELDS]
    app.callback(*[Output(c, "value") for c in controls],
                 Input(ids.URL, "pathname"), State(ids.URL, "search"))(apply_url)
    app.callback(Output(ids.GRAD_GRAPH, "figure"), Output(ids.BANNER, "children"), Output(ids.INFO, "children"),
                 Output(ids.VIEW_GRAPH, "figure"), Output(ids.VIEW_CAPTION, "children"),
                 Output(ids.URL_WRITE, "search"), Output(ids.MESSAGES, "children"), Output(ids.PARAMS, "data"),
                 *[Input(c, "value") for c in controls], Input(ids.WEIGHTS_STORE, "data"),
                 Input(ids.PRESENT_STORE, "data"),
                 State(ids.URL_WRITE, "search"))(update_page)
    app.clientside_callback(ClientsideFunction("controls", "scaleFieldClass"), Output(ids.SCALE_FIELD, "className"),
                            Input(ids.INIT, "value"), State(ids.SCALE_HINT, "data"))
    # each graph as tall as its figure (a resize would otherwise collapse it: assets/graphs.js)
    app.clientside_callback(ClientsideFunction("graphs", "fit"), Output(ids.GRAD_GRAPH, "style"),
                            Input(ids.GRAD_GRAPH, "figure"))
    # the step-by-step view: its frames come with the figure; assets/stepview.js steps them in the browser
    app.clientside_callback(ClientsideFunction("stepview", "buttons"), Output(ids.STEP_FRAME, "data"),
                            Input(ids.STEP_BACK, "n_clicks"), Input(ids.STEP_NEXT, "n_clicks"),
                            Input(ids.STEP_PLAY, "n_clicks"), Input(ids.STEP_PAUSE, "n_clicks"),
                            State(ids.STEP_CONSTANTS, "data"), prevent_initial_call=True)
    app.clientside_callback(ClientsideFunction("stepview", "keys"), Output(ids.STEP_KEYS, "data"),
                            Input(ids.STEP_CONSTANTS, "data"))
    app.clientside_callback(ClientsideFunction("stepview", "render"), Output(ids.STEP_TOOLBAR, "style"),
                            Output(ids.VIEW_GRAPH, "style"), Input(ids.VIEW_GRAPH, "figure"),
                            Input(ids.VIEW, "value"), Input(ids.PRESENT_STORE, "data"),
                            State(ids.STEP_CONSTANTS, "data"))
    # presets, export, uploads and presentation mode; the maths panels; live training
    limits.register_identity(app)
    classroom.register(app)
    explain.register(app)
    training_ui.register(app, params_store=ids.PARAMS, present_store=ids.PRESENT_STORE)
