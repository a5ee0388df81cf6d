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
    return finish_setup(app)


def finish_setup(app: Dash) -> Dash:
    """Run the setup Dash would do on the first request (``Dash._setup_server``: the bundles it
    serves, the cancel callbacks) now, in one thread, before the app serves anything.

    Dash marks that setup done before doing it, so under a threaded server (gunicorn
    ``--threads``) a request arriving meanwhile skipped it and got a 500 for Dash's own bundles:
    the page stayed on "Loading..." (plotly/dash issue 3971). Call it after the last callback
    is registered.
    """
    app._setup_server()
    return app


app = create_app()
server = app.server
