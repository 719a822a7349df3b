"""Callback registration: thin glue that reads inputs, calls services and builds components.

Page callbacks use `@dash.callback` in the modules below (one per page); `app.create_app` adopts
them into every app it builds. Importing them here makes sure they exist even for an app whose
pages were not loaded yet.
"""

from __future__ import annotations

import importlib

PAGE_CALLBACK_MODULES: tuple[str, ...] = (
    "callbacks.analyze",
    "callbacks.history",
    "callbacks.analysis",
    "callbacks.network",
)


def register_callbacks(app) -> None:
    """Register the dashboard's callbacks for `app` (the page modules' @callback functions)."""
    for module in PAGE_CALLBACK_MODULES:
        importlib.import_module(module)
