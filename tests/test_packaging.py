"""The wheel ships the data and the loader side by side: planner/catalog.py (the loader module) must not be shadowed
by a data package of the same name, which only shows in a non-editable install."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_catalog_data_without_shadowing_the_loader(tmp_path):
    # build from a clean copy: setuptools reuses a stale build/ folder in the source tree
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                             ".pytest_cache", ".hypothesis"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(tmp_path)],
                   check=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("inference_planner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "planner/catalog.py" in names
    assert not any(n.startswith("planner/catalog/") for n in names)
    for data in ("accelerators.toml", "perf.toml", "calibration/fit.toml", "models/llama-3.1-70b.json",
                 "engines/vllm.toml"):
        assert f"planner/data/{data}" in names
    assert {"planner/schema/plan.schema.json", "planner/py.typed"} <= names
