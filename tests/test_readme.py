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
    fit = tomllib.loads((ROOT / "catalog/calibration/fit.toml").read_text())
    readme = (ROOT / "README.md").read_text()
    fitted = re.search(r"\| H100 \+ H200 FP8 \(60 rows, fitted\) \| ([\d.]+) % \| ([\d.]+) % \|", readme)
    held = re.search(r"\| B200 \+ GB200 FP4 \(40 rows, held out\) \| ([\d.]+) % \| ([\d.]+) % \|", readme)
    assert fitted and held, "README calibration table not found"
    e = fit["error"]
    assert float(fitted.group(1)) == round(100 * e["fit_median_abs"], 1)
    assert float(fitted.group(2)) == round(100 * e["fit_worst_abs"], 1)
    assert float(held.group(1)) == round(100 * e["held_out_median_abs"], 1)
    assert float(held.group(2)) == round(100 * e["held_out_worst_abs"], 1)
    f = fit["fitted"]
    assert f"HBM efficiency {f['hbm_efficiency']:.2f}" in readme
    assert f"FLOP efficiency {f['flops_efficiency']:.2f}" in readme


def test_python_api_example_runs(tmp_path, monkeypatch):
    """The README's procurement example is real code: run it as written, in a scratch folder."""
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Python API.*?```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert len(list(tmp_path.glob("report-*.html"))) == 3
    assert all("vllm serve" in p.read_text() for p in tmp_path.glob("launch-*.sh"))
