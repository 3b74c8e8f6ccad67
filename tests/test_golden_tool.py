"""tools/golden.py compare's --rtol: floats may move by a relative amount, nothing else may change."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "golden.py"


def _golden():
    spec = importlib.util.spec_from_file_location("golden_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_float_difference_by_hand():
    g = _golden()
    a = '{"gpu": "h100", "tp": 8, "cost": 1.4129200000, "ttft_s": 2.5e-2, "rows": 1626}'
    assert g.float_difference(a, a) == 0.0
    moved = a.replace("1.4129200000", "1.4129214129").replace("2.5e-2", "2.50000005e-2")
    assert g.float_difference(a, moved) == (1.4129214129 - 1.41292) / 1.4129214129  # the larger of the two
    assert g.float_difference(a, a.replace('"tp": 8', '"tp": 4')) is None  # a decision held as an integer
    assert g.float_difference(a, a.replace('"rows": 1626', '"rows": 1627')) is None
    assert g.float_difference(a, a.replace("h100", "h200")) is None  # text between the numbers
    assert g.float_difference(a, a.replace(', "rows": 1626', "")) is None  # a field gone
    assert g.float_difference("x -1.5 y", "x -1.6 y") == (1.6 - 1.5) / 1.6  # signs kept


def test_compare_with_and_without_rtol(tmp_path):
    base, new = tmp_path / "a", tmp_path / "b"
    base.mkdir()
    new.mkdir()
    (base / "same.out").write_text('rc=0\n{"cost": 2.0, "pp": 3}\n')
    (new / "same.out").write_text('rc=0\n{"cost": 2.0, "pp": 3}\n')
    (base / "moved.out").write_text('rc=0\n{"cost": 2.0, "pp": 3}\n')
    (new / "moved.out").write_text('rc=0\n{"cost": 2.000001, "pp": 3}\n')

    def run(*extra):
        r = subprocess.run([sys.executable, str(TOOL), "compare", str(base), str(new), *extra],
                           capture_output=True, text=True)
        return r.returncode, r.stdout.strip().splitlines()[-1]

    assert run() == (1, "1 of 2 identical")
    rc, last = run("--rtol", "1e-6")
    assert rc == 0 and last.startswith("2 of 2 within rtol 1e-06: 1 identical, 1 with floats moved by at most 5e-07")
    assert run("--rtol", "1e-7")[0] == 1  # 5e-7 > 1e-7
    (new / "moved.out").write_text('rc=0\n{"cost": 2.0, "pp": 4}\n')
    assert run("--rtol", "1")[0] == 1  # an integer never moves
    r = subprocess.run([sys.executable, str(TOOL), "compare", str(base), str(new), "--rtol", "x"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip() == "error: --rtol takes a number, not 'x'"
