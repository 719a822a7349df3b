"""Batch ("/batch"): an archive of records, or a server folder the administrator allowed, analysed
at once in the background with a progress bar, records/s, time left and Cancel; then its summary,
the results table, the rejected records and a CSV."""

from __future__ import annotations

from pathlib import Path

from dash import dcc, html

from app.context import analysis_context, model_status
from components import ids
from components.batch import batch_controls, progress_panel
from components.cards import model_banner

PAGE = {"path": "/batch", "name": "Batch", "title": "Batch - Grid Event Monitor", "order": 2}
#: subfolders listed under each allowed root (the folder chooser stays short)
MAX_LISTED_FOLDERS = 200


def allowed_folders(roots: tuple[Path, ...]) -> list[str]:
    """The allowed roots and their subfolders one level down (no hidden ones, links not followed)."""
    folders: list[str] = []
    for root in roots:
        if not root.is_dir():
            continue
        folders.append(str(root))
        try:
            children = sorted(child for child in root.iterdir()
                              if child.is_dir() and not child.is_symlink() and not child.name.startswith("."))
        except OSError:
            continue
        folders.extend(str(child) for child in children[:MAX_LISTED_FOLDERS])
    return folders


def layout(**_query) -> html.Div:
    settings = analysis_context().settings
    return html.Div(
        [
            model_banner(model_status()),
            html.Div([html.H1("Batch analysis", className="h4 mb-0"),
                      html.Div("Every record of an archive or a folder classified into the history under one batch id.",
                               className="text-muted small")], className="mb-3"),
            batch_controls(allowed_folders(settings.batch_root_paths()), settings.max_upload_bytes / 2**20,
                           settings.max_batch_bytes / 2**20),
            html.Div(id=ids.BATCH_MESSAGE, role="status"),
            progress_panel(),
            dcc.Store(id=ids.BATCH_STORE),
            html.Div(id=ids.BATCH_RESULT),
        ],
        id=ids.BATCH_PAGE,
    )
