"""The README's measured figures must be the ones the repository's own commands produced."""
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_calibration_table_matches_fit_toml():
    """Every error row of catalog/calibration/fit.toml (written by `python -m planner.perf.calibrate --write`) is
    in the README, formatted as the command prints it, and so are the fitted kernel fractions."""
    from planner.perf.calibrate import format_table

    fit = tomllib.loads((ROOT / "catalog/calibration/fit.toml").read_text())
    readme = (ROOT / "README.md").read_text()
    assert format_table(fit["error"]) in readme
    f = fit["fitted"]
    assert f"HBM efficiency {f['hbm_efficiency']:.2f}, decode FLOP efficiency {f['flops_efficiency']:.2f}" in readme
    assert f"{f['layer_overhead_s'] * 1e6:.0f} µs per layer" in readme


def test_python_api_example_runs(tmp_path, monkeypatch):
    """The README's procurement example is real code: run it as written, in a scratch folder."""
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Python API.*?```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert len(list(tmp_path.glob("report-*.html"))) == 3
    assert all("vllm serve" in p.read_text() for p in tmp_path.glob("launch-*.sh"))
