"""Pages and callbacks are registered explicitly, per app, with Dash's public API; real 404s."""

from __future__ import annotations

import ast
from pathlib import Path

import dash
import pytest

from app import create_app
from app.pages import PAGE_MODULES
from app.settings import Settings
from components import ids

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
GOOD = {"sender_peer": "prosumer-a", "receiver_peer": "consumer-home"}


def _app(tmp_path, prefix="/"):
    return create_app(url_base_pathname=prefix,
                      settings=Settings(artifacts_dir=ARTIFACTS, instance_dir=tmp_path / "instance"))


def test_no_dash_internals_and_no_global_callbacks():
    """No module edits dash._callback or registers with the process-global @dash.callback."""
    for folder in ("app", "callbacks", "components"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module == "dash":
                    names = {alias.name for alias in node.names}
                    assert not names & {"_callback", "callback", "clientside_callback"}, path
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "dash":
                    assert node.attr not in {"_callback", "callback", "clientside_callback"}, path


#: who may import whom: dependencies point one way (app -> callbacks -> components -> services)
FORBIDDEN_IMPORTS = {"services": ("app", "callbacks", "components", "dash"), "components": ("app", "callbacks"),
                     "callbacks": ("app",)}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN_IMPORTS))
def test_dependencies_point_one_way(layer):
    for path in (ROOT / layer).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top not in FORBIDDEN_IMPORTS[layer], f"{path.relative_to(ROOT)} imports {module}"


def test_every_page_is_in_dashs_registry_with_its_layout(tmp_path):
    _app(tmp_path)
    registered = {module.__name__: module for module in PAGE_MODULES}
    for name, module in registered.items():
        assert dash.page_registry[name]["layout"] is module.layout
    assert dash.page_registry["app.pages.analysis_detail"]["path_template"] == "/analysis/<analysis_id>"


def test_each_app_has_its_own_callbacks_bound_to_its_own_history(tmp_path):
    first, second = _app(tmp_path / "a"), _app(tmp_path / "b")
    assert first.callback_map.keys() == second.callback_map.keys() and first.callback_map
    # an analysis posted to the first app shows in its history only
    sample = first.server.test_client().get("/api/samples").get_json()["samples"][0]["filename"]
    first.server.test_client().post("/predict", json={**GOOD, "sample_filename": sample})
    assert first.server.extensions["grid_event_monitor"].store.count() == 1
    assert second.server.extensions["grid_event_monitor"].store.count() == 0
    # the History grid callback of the second app reads the second app's store
    callback_id = next(key for key in second.callback_map if f"{ids.HISTORY_GRID}.getRowsResponse" in key)
    body = {"output": callback_id, "outputs": [{"id": ids.HISTORY_GRID, "property": "getRowsResponse"},
                                               {"id": ids.HISTORY_TOTAL, "property": "children"},
                                               {"id": ids.HISTORY_CSV_LINK, "property": "href"},
                                               {"id": ids.HISTORY_NOTICE, "property": "children"}],
            "inputs": [{"id": ids.HISTORY_GRID, "property": "getRowsRequest",
                        "value": {"startRow": 0, "endRow": 10}}],
            "changedPropIds": [f"{ids.HISTORY_GRID}.getRowsRequest"], "state": []}
    for app, rows in ((second, 0), (first, 1)):
        answer = app.server.test_client().post("/_dash-update-component", json=body)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.get_json()["response"][ids.HISTORY_GRID]["getRowsResponse"]["rowCount"] == rows


@pytest.mark.parametrize("prefix", ["/", "/grid/"])
def test_unknown_pages_and_analyses_answer_404_with_a_page(tmp_path, prefix):
    app = _app(tmp_path, prefix)
    client = app.server.test_client()
    for path in ("", "history", "model", "network"):
        assert client.get(f"{prefix}{path}").status_code == 200, path
    assert client.get(f"{prefix}no-such-page").status_code == 404
    assert client.get(f"{prefix}analysis/99999").status_code == 404
    assert client.get(f"{prefix}analysis/abc").status_code == 404
    sample = client.get(f"{prefix}api/samples").get_json()["samples"][0]["filename"]
    analysis_id = client.post(f"{prefix}predict", json={**GOOD, "sample_filename": sample}).get_json()["analysis_id"]
    assert client.get(f"{prefix}analysis/{analysis_id}").status_code == 200
    assert client.get(f"{prefix}_dash-layout").status_code == 200  # Dash's own routes are untouched
    assert client.get(f"{prefix}favicon.ico", follow_redirects=True).status_code == 200
    # what the browser then shows: the registered not-found page, not Dash's bare one
    assert dash.page_registry["app.pages.not_found_404"]["layout"] is not None
    with app.server.test_request_context(f"{prefix}analysis/99999"):
        page = dash.page_registry["app.pages.analysis_detail"]["layout"](analysis_id="99999")
        assert "Analysis not found" in str(page)
        missing = dash.page_registry["app.pages.not_found_404"]["layout"]()
        assert "Page not found" in str(missing) and f"{prefix}history" in str(missing)


def _links(node) -> list[str]:
    """Every in-app href of a serialised Dash layout."""
    found: list[str] = []
    if isinstance(node, dict):
        href = node.get("props", {}).get("href") if "props" in node else None
        if isinstance(href, str) and not href.startswith("#"):
            found.append(href)
        for value in node.values():
            found += _links(value)
    elif isinstance(node, list):
        for value in node:
            found += _links(value)
    return found


def test_each_app_links_under_its_own_prefix_whatever_was_built_after_it(tmp_path):
    plain = _app(tmp_path / "a", "/")
    mounted = _app(tmp_path / "b", "/grid/")  # built last: Dash's global prefix is now /grid/
    for app, prefix in ((plain, "/"), (mounted, "/grid/")):
        hrefs = _links(app.server.test_client().get(f"{prefix}_dash-layout").get_json())
        assert {"history", "model", "network"} <= {href.rstrip("/").rsplit("/", 1)[-1] for href in hrefs}
        assert all(href.startswith(prefix) for href in hrefs), (prefix, hrefs)
        assert prefix != "/" or not any(href.startswith("/grid/") for href in hrefs)
