"""A minimal page with only the training panel and a params store (the panel's own browser tests
run against it, independently of the main layout)."""
from __future__ import annotations

from dash import Dash, dcc, html

from visualizer import jobs, limits, training_ui
from visualizer.app import ASSETS
from visualizer.urlstate import Params

PARAMS_STORE = "params-store"


def create_app(params: Params = Params(), steps: int = 60) -> Dash:
    """The training panel for ``params`` with the process's background manager."""
    app = Dash(__name__, background_callback_manager=jobs.background_manager(), assets_folder=str(ASSETS),
               serve_locally=True, update_title=None)
    app.layout = html.Div([limits.user_store(), dcc.Store(id=PARAMS_STORE, data=params.to_dict()),
                           training_ui.panel(steps)])
    limits.register_identity(app)
    training_ui.register(app, params_store=PARAMS_STORE)
    return app
