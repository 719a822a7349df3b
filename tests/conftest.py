"""Shared pytest configuration: keep headless Chromium off the network."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_setup_options():
    """Chrome options for dash_duo: the CI machine reaches no internet, so Chromium must not try."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for flag in (
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    return options


@pytest.fixture(scope="module")
def artifacts_copy(tmp_path_factory) -> Path:
    """A private copy of the shipped artifacts per test module, so tests can plant files in its sample folder."""
    target = tmp_path_factory.mktemp("artifacts") / "artifacts"
    shutil.copytree(ROOT / "artifacts", target, ignore=shutil.ignore_patterns("*.onnx.data"))
    return target
