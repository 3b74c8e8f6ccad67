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
