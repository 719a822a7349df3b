"""Callback registration: thin glue that reads inputs, calls services and builds components."""

from __future__ import annotations


def register_callbacks(app) -> None:
    """Register the app-level callbacks (page callbacks live next to their pages via @callback)."""
    return None
