"""The part-1 app with the part-2 cards added around its views, without editing part-1 files:
the harness for part 2's browser tests until the cards are integrated into layout.py."""
from __future__ import annotations

from dash import html

from visualizer import classroom, explain, ids, jobs, layout, limits, training_ui
from visualizer.app import create_app as create_part1_app

ROOT = "page"


def _find(component, class_name):
    """The first descendant with ``class_name`` in its className."""
    if class_name in str(getattr(component, "className", "") or "").split():
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else ([children] if children is not None else []):
        if hasattr(child, "children") or hasattr(child, "className"):
            found = _find(child, class_name)
            if found is not None:
                return found
    return None


def build_layout():
    """Part 1's page plus presets, maths, export, training, upload and the presentation toggle."""
    page = layout.build_layout()
    page.id = ROOT
    main = _find(page, "main")
    header = _find(page, "header")
    header.children = list(header.children) + [classroom.present_toggle()]
    cards = list(main.children)
    cards.insert(2, classroom.preset_card())
    cards.insert(4, explain.maths("grad"))
    cards.append(explain.view_maths_panel())
    cards.append(classroom.export_toolbar())
    cards.append(training_ui.panel())
    cards.append(classroom.upload_card())
    main.children = cards
    return html.Div([limits.user_store(), page])


def create_app():
    """The harness app with the process's background manager."""
    app = create_part1_app(background_callback_manager=jobs.background_manager())
    app.validation_layout = None  # part 1's layout was recorded as the validation layout
    app.layout = build_layout
    limits.register_identity(app)
    training_ui.register(app, params_store=ids.PARAMS)
    classroom.register(app, root_id=ROOT, url_id=ids.URL, params_store=ids.PARAMS, view_id=ids.VIEW,
                       steps_input=training_ui.STEPS)
    explain.register(app, view_id=ids.VIEW)
    return app
