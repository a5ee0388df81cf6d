"""The page: a control panel on the left; on the right the presets, the gradient-norm plot, a
tabbed second view (each with its maths), export buttons, the live-training panel and the upload
of your own weights.

Widget factories are small functions; the control values are set from the URL by a callback,
so the defaults here only matter before the first callback returns. The other cards come from
:mod:`visualizer.classroom`, :mod:`visualizer.explain` and :mod:`visualizer.training_ui`.
"""
from __future__ import annotations

from dash import dcc, html

from . import classroom, explain, ids, limits, training_ui, views
from .framing import GRAPH_CONFIG
from .plotstyle import COLORS, GLYPHS, message_figure
from .urlstate import DEFAULTS, INIT_CHOICES, OPTIMIZER_CHOICES, SPEC, TASK_CHOICES, UNSCALED_INITS, Params

ARCH_LABELS = {"rnn": "RNN (tanh)", "rnn-relu": "RNN (ReLU)", "lstm": "LSTM", "gru": "GRU"}
TASK_LABELS = {"adding": "Adding problem", "copy": "Copy / memory", "sine": "Sine prediction",
               "chars": "Next character (text)"}
INIT_LABELS = {"pytorch": "PyTorch default (uniform)", "orthogonal": "Orthogonal × scale",
               "identity": "Identity × scale (IRNN)", "normal": "Gaussian, spectral radius = scale"}


def _field(label, control, hint=None, id_=None):
    """A labelled control with an optional one-line hint."""
    children = [html.Label(label, className="field-label"), control]
    if hint:
        children.append(html.Div(hint, className="field-hint"))
    if id_ is None:
        return html.Div(children, className="field")
    return html.Div(children, className="field", id=id_)


def _range(name) -> tuple:
    """(low, high) of the Params field ``name`` (:data:`visualizer.urlstate.SPEC`, the one home of ranges)."""
    _kind, low, high = SPEC[name]
    return low, high


def _tick(v):
    """A mark's position: an int when the value is whole (``0.0`` -> ``0``)."""
    return int(v) if float(v).is_integer() else v


def _slider(name, step, value, ticks=()):
    """A Dash 4 slider over the field ``name``'s range, with marks at both ends and at ``ticks``,
    its direct-input box, updating on release."""
    low, high = _range(name)
    marks = {_tick(v): f"{v:g}" for v in (low, *ticks, high)}
    return dcc.Slider(id=ids.CONTROL_IDS[name], min=_tick(low), max=_tick(high), step=step, value=value, marks=marks,
                      updatemode="mouseup", allow_direct_input=True, className="slider")


def _number(name, value, placeholder, step="any"):
    """A number box over the field ``name``'s range that commits on blur or Enter (debounced)."""
    low, high = _range(name)
    return dcc.Input(id=ids.CONTROL_IDS[name], type="number", value=value, placeholder=placeholder, min=low, max=high,
                     step=step, debounce=True, className="number-input")


def _optional_number(name, value, placeholder):
    """A box for the field ``name``, a number that may be left empty (its placeholder says what
    empty means). A text box: dcc.Input of type "number" writes "NaN" into the page when a
    callback empties it; the server validates what is typed against the field's range and names
    the field if it is wrong."""
    return dcc.Input(id=ids.CONTROL_IDS[name], type="text", value="" if value is None else value,
                     placeholder=placeholder, debounce=True, className="number-input")


def _swatch(arch):
    """The architecture's colour and marker symbol, as on its lines."""
    return html.Span(GLYPHS[arch], className="swatch", style={"backgroundColor": COLORS[arch]},
                     **{"aria-hidden": "true"})


def _arch_option(arch):
    """A checklist option with a colour swatch matching the plots."""
    label = html.Span([_swatch(arch), ARCH_LABELS[arch]])
    return {"label": label, "value": arch}


def scale_hint() -> dict:
    """The constants of ``controls.scaleFieldClass`` (assets/controls.js): the initialisations that ignore scale."""
    return {"unscaled": list(UNSCALED_INITS)}


def controls(p: Params = DEFAULTS) -> html.Div:
    """The control panel, grouped: what to compare, data, network, initialisation, backprop, training."""
    return html.Div(className="controls", children=[
        html.H2("Compare", className="group-title"),
        dcc.Checklist(id=ids.ARCH, options=[_arch_option(a) for a in ARCH_LABELS], value=list(p.arch),
                      className="arch-checklist", inline=False),
        html.H2("Data", className="group-title"),
        _field("Task", dcc.Dropdown(id=ids.TASK, options=[{"label": TASK_LABELS[t], "value": t} for t in TASK_CHOICES],
                                    value=p.task, clearable=False, searchable=False)),
        _field("Sequence length T", _slider("seq_len", 1, p.seq_len, (500, 1000, 1500))),
        _field("Loss on", dcc.RadioItems(id=ids.LOSS_ON, options=[{"label": "last step", "value": "last"},
                                                                   {"label": "every step", "value": "all"}],
                                         value=p.loss_on, inline=True, className="radio")),
        _field("Batch size", _slider("batch", 1, p.batch, (16, 32))),
        html.H2("Network", className="group-title"),
        _field("Hidden size H", _slider("hidden", 1, p.hidden, (128, 256))),
        dcc.Checklist(id=ids.MATCH, options=[{"label": "match parameter counts (H sets the RNN's size)",
                                              "value": "match"}],
                      value=["match"] if p.match_params else [], className="match-checklist"),
        _field("Layers", _slider("layers", 1, p.layers, (2, 3))),
        html.H2("Initialisation", className="group-title"),
        _field("W_hh initialisation", dcc.Dropdown(id=ids.INIT, options=[{"label": INIT_LABELS[i], "value": i}
                                                                        for i in INIT_CHOICES],
                                                   value=p.init, clearable=False, searchable=False)),
        _field("Scale / spectral radius", _slider("scale", 0.05, p.scale, (1, 2, 3, 4)),
               hint="Not used by the PyTorch default.", id_=ids.SCALE_FIELD),
        dcc.Store(id=ids.SCALE_HINT, data=scale_hint()),
        _field("LSTM forget-gate bias", _optional_number("forget_bias", p.forget_bias, "initialiser's")),
        _field("Seed", _number("seed", p.seed, "0", 1)),
        html.H2("Backpropagation", className="group-title"),
        _field("Truncation window (steps)", _optional_number("truncate", p.truncate, "full BPTT")),
        html.Details(className="training", children=[
            html.Summary("Training settings"),
            _field("Gradient clipping (max norm)", _optional_number("clip", p.clip, "no clipping (or 0)")),
            _field("Optimiser", dcc.Dropdown(id=ids.OPTIMIZER, options=[{"label": o.upper() if o == "sgd" else "Adam",
                                                                          "value": o} for o in OPTIMIZER_CHOICES],
                                             value=p.optimizer, clearable=False, searchable=False)),
            _field("Learning rate", _number("lr", p.lr, "0.01")),
            html.Div("Used by the training panel below the views.", className="field-hint"),
        ]),
    ])


def _card(title, children, class_name="card"):
    """A titled white panel."""
    return html.Section([html.H2(title, className="card-title"), *children], className=class_name)


def _graph(id_):
    """A responsive graph with a PNG button, no Plotly logo and nothing that sends data out; blank (no
    axes, no modebar) until its first figure arrives."""
    return dcc.Graph(id=id_, config=GRAPH_CONFIG, className="graph", figure=message_figure(""))


def _loading(id_, child):
    """A "Computing..." indicator over the (dimmed) old plot, only when an update takes longer
    than a blink (large sequences and hidden sizes)."""
    spinner = html.Div([html.Div(className="spinner-ring"), html.Div("Computing…", className="spinner-text")],
                       className="spinner")
    return dcc.Loading(id=id_, children=child, delay_show=250, custom_spinner=spinner,
                       overlay_style={"visibility": "visible", "opacity": 0.45})


STEP_CONSTANTS = {"graph": ids.STEP_PLOT, "back": ids.STEP_BACK, "next": ids.STEP_NEXT, "play": ids.STEP_PLAY,
                  "pause": ids.STEP_PAUSE, "view": "steps", "duration": 900,
                  "config": GRAPH_CONFIG}  # the stepped plot's modebar: the app's (nothing sends data out)


def step_toolbar() -> html.Div:
    """The step-by-step view's figure and its Back / Play / Pause / Step buttons (shown on its tab only).

    The figure arrives in the view graph like any other; assets/stepview.js draws it into a plain div
    (with its frames) and steps it in the browser: a dcc.Graph would redraw its initial frame on every zoom."""
    def button(id_, text, label):
        return html.Button(text, id=id_, n_clicks=0, className="step-button", title=label, **{"aria-label": label})
    return html.Div(id=ids.STEP_TOOLBAR, className="step-toolbar", style={"display": "none"}, children=[
        button(ids.STEP_BACK, "◀ Back", "Previous step"),
        button(ids.STEP_PLAY, "▶ Play", "Play from here"),
        button(ids.STEP_PAUSE, "❚❚ Pause", "Pause"),
        button(ids.STEP_NEXT, "Step ▶", "Next step"),
        html.Span("or the arrow keys ← → (with shift: a whole phase; Home / End: first / last)",
                  className="field-hint"),
        html.Div(id=ids.STEP_PLOT, className="step-plot"),
        dcc.Store(id=ids.STEP_CONSTANTS, data=STEP_CONSTANTS),
        dcc.Store(id=ids.STEP_FRAME),
        dcc.Store(id=ids.STEP_KEYS),
    ])


def build_layout() -> html.Div:
    """The whole page."""
    p = DEFAULTS
    return html.Div(id=ids.PAGE, className="page", children=[
        dcc.Location(id=ids.URL, refresh=False),
        dcc.Location(id=ids.URL_WRITE, refresh=False),
        dcc.Store(id=ids.PARAMS, storage_type="memory"),
        limits.user_store(),
        html.Header(className="header", children=[
            html.H1(["bpttlab", html.Span(" — watch gradients vanish and explode through time", className="tagline")]),
            classroom.present_toggle(),
        ]),
        html.Div(className="body", children=[
            html.Aside(controls(p), className="sidebar"),
            html.Main(className="main", children=[
                html.Div(id=ids.MESSAGES, className="messages", role="status"),
                classroom.preset_card(),
                html.Div(id=ids.BANNER, className="banner", role="alert"),
                _card("How far back does the gradient reach?  ‖∂L/∂hₜ‖ at every step", [
                    _loading(ids.LOADING_MAIN, _graph(ids.GRAD_GRAPH)),
                    html.Div(id=ids.INFO, className="info"),
                    html.P(views.GRAD_NORM.caption, className="caption"),
                    explain.maths(views.GRAD_NORM.key),
                ]),
                html.Section(className="card", children=[
                    dcc.Tabs(id=ids.VIEW, value=p.view, className="tabs", children=[
                        dcc.Tab(label=v.label, value=v.key, className="tab", selected_className="tab--selected")
                        for v in views.TABS]),
                    _loading(ids.LOADING_VIEW, _graph(ids.VIEW_GRAPH)),
                    step_toolbar(),
                    html.P(id=ids.VIEW_CAPTION, className="caption"),
                    explain.view_maths_panel(),
                ]),
                classroom.export_toolbar(),
                training_ui.panel(),
                classroom.upload_card(),
            ]),
        ]),
    ])


def info_children(flows, note=None) -> list:
    """One short line per architecture: hidden size, parameter count and loss (plus a note)."""
    items = [html.Span([_swatch(f.arch),
                        html.B(f.name), f"  H={f.hidden} · {f.num_params:,} parameters · loss {f.loss:.4g}"],
                       className="info-item") for f in flows]
    if note:
        items.append(html.Span(note, className="info-item note"))
    return items
