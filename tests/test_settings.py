"""One Settings: every GEM_* variable read once, in one table, which is the README's table."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest

from app import create_app
from app.settings import SETTINGS, Settings, SettingsError, markdown_table
from callbacks.analyze import AnalyzeRequest, analyze_page_update
from components import ids
from services.analysis import EXTENSION_KEY

ROOT = Path(__file__).resolve().parents[1]
#: Flask config keys of the app (not environment variables)
CONFIG_KEYS = {"GEM_SETTINGS", "GEM_URL_PREFIX"}
#: files outside app/ that may read os.environ for a GEM_* variable: none (the inference service
#: takes InferenceOptions built by Settings)
PENDING_ENV_READS: set[str] = set()


def _code_files():
    for folder in ("app", "callbacks", "components", "services"):
        yield from (ROOT / folder).rglob("*.py")
    yield ROOT / "gunicorn.conf.py"


def test_readme_configuration_table_is_the_settings_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme


def test_every_gem_variable_in_the_code_is_a_setting():
    known = {setting.variable for setting in SETTINGS} | CONFIG_KEYS
    for path in _code_files():
        for name in re.findall(r"\bGEM_[A-Z0-9_]+\b", path.read_text(encoding="utf-8")):
            assert name in known, f"{path.relative_to(ROOT)} uses {name}, which is not in app.settings.SETTINGS"


def test_only_settings_reads_the_environment_for_gem_variables():
    readers = set()
    for path in _code_files():
        text = path.read_text(encoding="utf-8")
        if re.search(r"environ(\.get)?\s*[\[(]\s*['\"A-Z_]*GEM_|environ\.get\(ENV_|os\.environ if environ", text):
            readers.add(path.relative_to(ROOT).as_posix())
    assert readers <= {"app/settings.py"} | PENDING_ENV_READS, readers


def test_every_setting_parses_from_its_variable(tmp_path):
    env = {"GEM_PORT": "9001", "GEM_DEBUG": "yes", "GEM_MAX_UPLOAD_BYTES": "2048", "GEM_P2P_SHARE": "0.4",
           "GEM_CACHE_DIR": str(tmp_path / "cache"), "GEM_WORKER_CLASS": "gthread", "GEM_WARMUP": "0",
           "GEM_BACKEND": "torch", "GEM_DATABASE_URL": "  "}
    settings = Settings.from_env(env)
    assert (settings.port, settings.debug, settings.max_upload_bytes, settings.p2p_share) == (9001, True, 2048, 0.4)
    assert settings.cache_dir == tmp_path / "cache" and settings.worker_class == "gthread"
    assert settings.warmup is False and settings.inference_backend == "torch" and settings.database_url is None
    assert settings.bind_address == "127.0.0.1:9001" and settings.watch_relay_connection is None
    assert Settings.from_env({"GEM_WATCH_RELAY_CONNECTION": " delta_tied "}).watch_relay_connection == "delta_tied"
    for variable, value, message in (("GEM_WORKERS", "two", "GEM_WORKERS"), ("GEM_WARMUP", "maybe", "GEM_WARMUP"),
                                     ("GEM_BACKEND", "tensorflow", "GEM_BACKEND"),
                                     ("GEM_MAX_BODY_BYTES", "0", "GEM_MAX_BODY_BYTES"),
                                     ("GEM_WATCH_RELAY_CONNECTION", "wye", "unknown relay_connection 'wye'")):
        with pytest.raises(SettingsError, match=message):
            Settings.from_env({variable: value})


def test_one_upload_limit_for_the_dashboard_and_the_api(tmp_path):
    settings = Settings(artifacts_dir=ROOT / "artifacts", instance_dir=tmp_path, max_upload_bytes=64 * 1024)
    app = create_app(settings=settings)
    client = app.server.test_client()
    huge = b"0" * (settings.max_upload_bytes + 300 * 1024)
    form = {"sender_peer": "prosumer-a", "receiver_peer": "consumer-home"}
    answer = client.post("/api/predict-file", data={**form, "file": (io.BytesIO(huge), "x.csv")},
                         content_type="multipart/form-data")
    assert answer.status_code == 413 and "error" in answer.get_json()
    with app.server.test_request_context("/"):
        context = app.server.extensions[EXTENSION_KEY]
        encoded = "data:text/csv;base64," + base64.b64encode(b"0" * (settings.max_upload_bytes + 10)).decode()
        outputs = analyze_page_update(AnalyzeRequest(trigger=ids.UPLOAD, upload_contents=encoded,
                                                     upload_filename="x.csv", sender="prosumer-a",
                                                     receiver="consumer-home", transfer_kw=5), context)
    assert "too large" in str(outputs["alert"]) and "0.0625 MB" in str(outputs["alert"])


def test_tariffs_come_from_the_settings_and_reach_the_pages_and_the_impact(tmp_path):
    from callbacks.network import network_update
    from services.grid import Tariffs

    env = {"GEM_FEED_IN_TARIFF": "0.04", "GEM_RETAIL_TARIFF": "0.24", "GEM_CURRENCY": "EUR"}
    tariffs = Settings.from_env(env).tariffs()
    assert tariffs.p2p_price_per_kwh == pytest.approx(0.14) and tariffs.currency == "EUR"
    assert Settings.from_env({}).tariffs() == Tariffs()
    with pytest.raises(SettingsError, match="GEM_RETAIL_TARIFF must be a number"):
        Settings.from_env({"GEM_RETAIL_TARIFF": "cheap"})
    with pytest.raises(SettingsError, match="feed-in <= retail"):
        Settings.from_env({"GEM_FEED_IN_TARIFF": "0.5", "GEM_RETAIL_TARIFF": "0.2"})
    settings = Settings.from_env({**env, "GEM_P2P_SHARE": "1"}, artifacts_dir=ROOT / "artifacts", instance_dir=tmp_path)
    app = create_app(settings=settings)
    context = app.server.extensions[EXTENSION_KEY]
    assert context.grid.tariffs.p2p_price_per_kwh == pytest.approx(0.24)
    assert "0.240 EUR/kWh" in str(network_update("prosumer-a", "ev-hub", 10.0, context.grid)["summary"])
    sample = context.samples()[0]["filename"]
    analysis = context.analyze_sample(sample, sender="prosumer-a", receiver="ev-hub", transfer_kw=10.0)
    assert analysis.impact["energy"]["currency"] == "EUR"  # the impact report prices with the settings' tariffs
    assert analysis.impact["transfer"]["price_per_kwh"] == pytest.approx(0.24)
