"""The Dash app: :func:`create_app` builds one, ``server`` is the WSGI app for gunicorn.

Everything is served from this machine (``serve_locally``; CSS from ``assets/``, system fonts,
Dash's own JS bundles), so the app works with no internet connection.
"""
from __future__ import annotations

from pathlib import Path

from dash import Dash

from . import callbacks, envelope, jobs, layout

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def create_app(**dash_kwargs) -> Dash:
    """A new, fully wired app. Keyword arguments go to :class:`dash.Dash`; the background
    callbacks (training) run on :func:`visualizer.jobs.background_manager` unless
    ``background_callback_manager`` is given."""
    options = dict(title="bpttlab", update_title=None, serve_locally=True, assets_folder=str(ASSETS),
                   compress=False)
    options.update(dash_kwargs)
    if options.get("background_callback_manager") is None:
        options["background_callback_manager"] = jobs.background_manager()
    app = Dash(__name__, **options)
    app.layout = layout.build_layout
    callbacks.register(app)
    envelope.install(app)
    return app


app = create_app()
server = app.server
