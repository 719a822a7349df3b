"""Reading Dash layout trees in tests: find a component by id, and the text a user would read."""

from __future__ import annotations


def find_by_id(component, component_id):
    """The component with this id in a layout tree, or None."""
    if isinstance(component, list | tuple):
        return next((found for item in component if (found := find_by_id(item, component_id)) is not None), None)
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    return find_by_id(children, component_id) if children is not None and not isinstance(children, str) else None


def text_of(component) -> str:
    """All the text below a component, concatenated."""
    if isinstance(component, str):
        return component
    if isinstance(component, list | tuple):
        return "".join(text_of(item) for item in component)
    children = getattr(component, "children", None)
    return text_of(children) if children is not None else ""
