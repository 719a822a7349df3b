"""Embedding in a Flask portal under a prefix, settings, and building several apps in one process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import Flask

from app import create_app, normalise_prefix
from app.__main__ import parse_args
from app.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
GOOD = {"sender_peer": "prosumer-a", "receiver_peer": "consumer-home"}


def _portal() -> Flask:
    portal = Flask("portal")

    @portal.get("/")
    def home():
        return "portal home"

    @portal.post("/upload")
    def upload():
        from flask import request

        return {"received": len(request.get_data())}

    return portal


def _settings(tmp_path) -> Settings:
    return Settings(artifacts_dir=ARTIFACTS, instance_dir=tmp_path / "instance")


def _callback_outputs(client, prefix: str) -> set[str]:
    response = client.get(f"{prefix}_dash-dependencies")
    assert response.status_code == 200
    return {entry["output"] for entry in response.get_json()}


def test_embedded_dashboard_and_api_live_under_the_prefix(tmp_path):
    portal = _portal()
    app = create_app(server=portal, url_base_pathname="/grid/", settings=_settings(tmp_path))
    assert app.server is portal
    client = portal.test_client()

    assert client.get("/").get_data(as_text=True) == "portal home"
    big = b"x" * (2 * 1024 * 1024)
    assert client.post("/upload", data=big).get_json() == {"received": len(big)}  # our 1 MB limit stays ours

    index = client.get("/grid/")
    assert index.status_code == 200
    html = index.get_data(as_text=True)
    config = json.loads(re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', html).group(1))
    assert config["requests_pathname_prefix"] == "/grid/" and config["url_base_pathname"] == "/grid/"
    assert config["disable_version_check"] is True and config["serve_locally"] is True
    resources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/grid/assets/bootstrap.min.css" in {url.split("?")[0] for url in resources}
    assert resources and all(url.startswith("/grid/") for url in resources), resources  # nothing from the internet
    assert client.get("/grid/assets/bootstrap.min.css").status_code == 200
    assert client.get("/grid/_dash-layout").status_code == 200
    assert client.get("/grid/_dash-dependencies").status_code == 200

    samples = client.get("/grid/api/samples").get_json()["samples"]
    response = client.post("/grid/predict", json={**GOOD, "sample_filename": samples[0]["filename"]})
    assert response.status_code == 200
    analysis_id = response.get_json()["analysis_id"]
    assert client.get(f"/grid/api/history/{analysis_id}").status_code == 200
    assert client.get("/grid/api/health").status_code == 200
    assert client.post("/predict", json=GOOD).status_code in (404, 405)  # nothing leaks to the portal root
    assert client.post("/grid/predict", data=b"{", content_type="application/json").status_code == 400
    too_big = client.post("/grid/predict", data=big, content_type="application/json")
    assert too_big.status_code == 413 and "error" in too_big.get_json()


def test_several_apps_in_one_process_each_get_every_callback(tmp_path):
    first = create_app(settings=_settings(tmp_path / "a"))
    first_client = first.server.test_client()
    first_outputs = _callback_outputs(first_client, "/")
    assert first_client.get("/").status_code == 200

    second = create_app(settings=_settings(tmp_path / "b"))
    embedded = create_app(server=_portal(), url_base_pathname="/grid/", settings=_settings(tmp_path / "c"))
    second_outputs = _callback_outputs(second.server.test_client(), "/")
    embedded_outputs = _callback_outputs(embedded.server.test_client(), "/grid/")
    assert first_outputs == second_outputs == embedded_outputs
    assert _callback_outputs(first_client, "/") == first_outputs  # the first app kept its callbacks
    assert first.server.extensions["grid_event_monitor"].store is not second.server.extensions[
        "grid_event_monitor"
    ].store


def test_settings_come_from_environment_and_flags(tmp_path):
    env = {
        "GEM_HOST": "0.0.0.0",
        "GEM_PORT": "9000",
        "GEM_ARTIFACTS_DIR": str(tmp_path / "art"),
        "GEM_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "GEM_INSTANCE_DIR": str(tmp_path / "inst"),
        "GEM_DEBUG": "true",
    }
    settings = Settings.from_env(env)
    assert settings.host == "0.0.0.0" and settings.port == 9000 and settings.debug is True
    assert settings.artifacts_dir == (tmp_path / "art").resolve()
    assert settings.resolved_database_url == env["GEM_DATABASE_URL"]
    overridden = Settings.from_env(env, port=9100, database_url=None)
    assert overridden.port == 9100 and overridden.database_url == env["GEM_DATABASE_URL"]
    default = Settings.from_env({"GEM_INSTANCE_DIR": str(tmp_path / "inst")})
    assert default.resolved_database_url == f"sqlite:///{(tmp_path / 'inst').resolve() / 'history.db'}"
    assert default.artifacts_dir == (ROOT / "artifacts").resolve()
    with pytest.raises(SettingsError, match="GEM_PORT"):
        Settings.from_env({"GEM_PORT": "eighty"})
    with pytest.raises(SettingsError, match="port"):
        Settings(port=70000)
    args = parse_args(["--host", "0.0.0.0", "--port", "8100", "--artifacts", "x", "--database-url", "sqlite://"])
    assert (args.host, args.port, args.artifacts_dir, args.database_url) == ("0.0.0.0", 8100, "x", "sqlite://")
    flagged = Settings.from_env({"GEM_PORT": "9000"}, **vars(parse_args(["--port", "8100", "--debug"])))
    assert flagged.port == 8100 and flagged.debug is True  # a flag wins over its variable


def test_first_start_creates_the_sqlite_history_in_the_instance_folder(tmp_path):
    create_app(settings=_settings(tmp_path))
    assert (tmp_path / "instance" / "history.db").exists()


@pytest.mark.parametrize(("given", "expected"), [("/", "/"), ("", "/"), ("grid", "/grid/"), ("/grid", "/grid/"),
                                                 ("/ops/grid/", "/ops/grid/")])
def test_url_prefixes_are_normalised(given, expected):
    assert normalise_prefix(given) == expected


def test_no_internet_links_in_the_served_assets():
    for path in (ROOT / "app" / "assets").glob("*.css"):
        text = path.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text, path.name
