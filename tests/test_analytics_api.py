"""The `analytics` block of `/api/history/<id>`: computed on demand from the stored waveform, the
same as `services.analytics` gives, served from the per-process LRU the second time, never stored."""

from __future__ import annotations

import numpy as np
import pytest

from app import create_app
from app.settings import Settings
from services.analysis import EXTENSION_KEY
from services.analytics import compute_analytics
from services.analytics.cache import ANALYTICS_CACHE, AnalyticsCache


@pytest.fixture
def app(artifacts_copy, tmp_path):
    return create_app(settings=Settings(artifacts_dir=artifacts_copy, instance_dir=tmp_path / "instance",
                                        database_url=f"sqlite:///{tmp_path / 'history.db'}"))


def test_history_item_carries_analytics_computed_once(app):
    client = app.server.test_client()
    sample = client.get("/api/samples").get_json()["samples"][0]
    posted = client.post("/predict", json={"sample_filename": sample["filename"], "sender_peer": "prosumer-a",
                                           "receiver_peer": "consumer-home"}).get_json()
    ANALYTICS_CACHE.clear()  # the process's cache may hold an analysis #1 of another test's history
    misses = ANALYTICS_CACHE.misses
    item = client.get(f"/api/history/{posted['analysis_id']}").get_json()
    expected = compute_analytics(np.asarray(item["waveform"], dtype=np.float32)).to_dict()
    assert item["analytics"] == expected
    assert set(item["analytics"]["key_figures"]) >= {"peak_ka", "dc_offset_ka", "tau_ms", "second_harmonic_ratio",
                                                     "fifth_harmonic_ratio", "i2_i1", "inception_ms", "clearing_ms"}
    assert ANALYTICS_CACHE.misses == misses + 1
    again = client.get(f"/api/history/{posted['analysis_id']}").get_json()
    assert again["analytics"] == expected and ANALYTICS_CACHE.misses == misses + 1  # from the cache
    stored = app.server.extensions[EXTENSION_KEY].store.get(posted["analysis_id"])
    assert "analytics" not in stored  # the history keeps the waveform once, no analytics


def test_cache_is_keyed_by_id_and_waveform_and_bounded():
    cache = AnalyticsCache(size=2)
    one, two = np.zeros((3, 726)), np.ones((3, 726))
    first = cache.get(one, 1)
    assert cache.get(one, 1) is first and cache.hits == 1
    assert cache.get(two, 1) is not first  # same id, another waveform: computed again
    cache.get(one, 2)
    assert len(cache) == 2 and cache.misses == 3
    cache.get(two, 1)  # still there (most recent two)
    assert cache.hits == 2
    cache.get(one, 1)  # evicted earlier: computed again
    assert cache.misses == 4
