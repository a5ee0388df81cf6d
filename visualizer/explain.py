"""The maths behind each view, rendered with MathJax (``dcc.Markdown(mathjax=True)``).

Dash ships MathJax inside ``dash-core-components`` and serves it from the app itself (with
``serve_locally=True``, the default), so the equations render with no internet connection.
Each view's text (its caption and its maths) lives in its record in :mod:`visualizer.views`; this
module renders it as a collapsed "The maths" panel under the view.
Equations follow PyTorch's conventions (gate orders i, f, g, o and r, z, n).
"""
from __future__ import annotations

from dash import Input, Output, dcc, html, no_update

from . import ids, views

PANELS = {ids.GRAD_MATHS: (ids.GRAD_MATHS_SUMMARY, ids.GRAD_MATHS_BODY),
          ids.VIEW_MATHS: (ids.VIEW_MATHS_SUMMARY, ids.VIEW_MATHS_BODY)}  # panel -> (summary id, body id)


def maths(view: str, id_: str = ids.GRAD_MATHS) -> html.Details:
    """A collapsed "The maths" panel for ``view`` (a key of :data:`visualizer.views.VIEWS`), with the
    ids of ``id_`` (see :data:`PANELS`). Its MathJax body is rendered when the panel is first
    opened (a click on its summary, see :func:`register`), so the page loads no MathJax until
    someone asks for the maths."""
    summary, body_ = PANELS[id_]
    return html.Details([html.Summary("The maths", id=summary, n_clicks=0),
                         html.Div(id=body_, className="math", **{"data-view": view})],
                        id=id_, className="explain")


def view_maths_panel() -> html.Details:
    """The maths panel of the tabbed view; its text follows the open tab (see :func:`register`)."""
    return maths(views.TAB_KEYS[0], ids.VIEW_MATHS)


def body(opened, view):
    """Callback: the panel's MathJax body for ``view`` once the panel was opened (nothing before)."""
    if not opened or views.get(view) is None:
        return no_update
    return dcc.Markdown(views.get(view).maths, mathjax=True)


def grad_body(opened):
    """Callback: the body of view 1's maths panel."""
    return body(opened, views.GRAD_NORM.key)


def register(app) -> None:
    """Render the maths panels' bodies when opened; the tabbed view's follows the open tab."""
    app.callback(Output(ids.GRAD_MATHS_BODY, "children"), Input(ids.GRAD_MATHS_SUMMARY, "n_clicks"),
                 prevent_initial_call=True)(grad_body)
    app.callback(Output(ids.VIEW_MATHS_BODY, "children"), Input(ids.VIEW_MATHS_SUMMARY, "n_clicks"),
                 Input(ids.VIEW, "value"), prevent_initial_call=True)(body)
