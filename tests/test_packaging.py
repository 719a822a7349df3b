"""Installable: pyproject's [project] names every package and the requirements, and a wheel built from
it runs the README's portal snippet from another folder with the shipped model found beside the code."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "callbacks", "components", "services")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_project_table_names_the_packages_the_requirements_and_the_data():
    project = _pyproject()["project"]
    assert project["name"] and project["version"] and project["requires-python"] == ">=3.11"
    setuptools = _pyproject()["tool"]["setuptools"]
    assert setuptools["dynamic"]["dependencies"]["file"] == ["requirements.txt"]
    include = setuptools["packages"]["find"]["include"]
    top_level = sorted(path.parent.name for path in ROOT.glob("*/__init__.py"))
    assert [name for name in top_level if name not in ("tests", "benchmarks", "scripts")] == list(PACKAGES)
    assert all(f"{name}*" in include for name in (*PACKAGES, "artifacts"))
    data = setuptools["package-data"]
    assert "assets/*" in data["app"]
    shipped = {path.relative_to(ROOT / "artifacts").as_posix() for path in (ROOT / "artifacts").rglob("*")
               if path.is_file() and path.suffix in (".pth", ".json", ".npz", ".npy")}
    patterns = data["artifacts"]
    assert all(any(Path(name).match(pattern) for pattern in patterns) for name in shipped), shipped


@pytest.mark.slow
def test_a_built_wheel_serves_the_portal_snippet_from_any_folder(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in (*PACKAGES, "artifacts"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.onnx*"))
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, cwd=tmp_path, timeout=240)
    wheel = next((tmp_path / "dist").glob("*.whl"))
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=240)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    snippet = textwrap.dedent('''
        from flask import Flask
        from app import create_app
        from app.settings import Settings

        portal = Flask(__name__)
        app = create_app(server=portal, url_base_pathname="/grid/", settings=Settings.from_env())
        client = portal.test_client()
        samples = client.get("/grid/api/samples").get_json()["samples"]
        answer = client.post("/grid/predict", json={"sample_filename": samples[0]["filename"],
                                                   "sender_peer": "prosumer-a", "receiver_peer": "consumer-home"})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert client.get("/grid/").status_code == 200
        import app as package
        print(package.__file__, app.server.extensions["grid_event_monitor"].artifacts_dir, len(samples))
    ''')
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", snippet], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    module_file, artifacts, count = done.stdout.split()
    assert module_file.startswith(str(target)) and artifacts == str(target / "artifacts") and int(count) > 0
    assert (elsewhere / "instance" / "history.db").exists()  # the history goes to the working folder
