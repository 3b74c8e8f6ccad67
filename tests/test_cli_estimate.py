"""`planner estimate` through click's CliRunner: JSON output, one-line errors with exit code 2, no tracebacks."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from planner import api
from planner.cli import main

BASE = ["estimate", "--model", "llama-3.1-70b", "--tp", "8", "--batch", "4", "--isl", "1024", "--osl", "128"]


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_json_output_parses_and_matches_the_api(run, catalog):
    r = run(*BASE, "--gpu", "H100-SXM-80GB", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["gpu"] == "h100-sxm" and d["model"] == "llama-3.1-70b" and d["fits"] is True
    assert d["inputs"]["tp"] == 8 and d["inputs"]["batch"] == 4
    want = api.estimate("llama-3.1-70b", "h100", tp=8, batch=4, isl=1024, osl=128, catalog=catalog).to_dict()
    assert d == want
    assert r.stderr == ""


def test_text_output(run):
    r = run(*BASE, "--gpu", "h100")
    assert r.exit_code == 0, r.output
    assert "llama-3.1-70b on h100-sxm" in r.stdout and "TPOT" in r.stdout and "bottleneck" in r.stdout


def _one_line_error(r) -> str:
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.output
    assert lines[0].startswith("error: ")
    return lines[0]


def test_unknown_gpu_exits_2_with_one_line(run):
    r = run(*BASE, "--gpu", "h1000", "--json")
    assert r.exit_code == 2
    line = _one_line_error(r)
    assert "unknown GPU 'h1000'" in line and "did you mean" in line


def test_tp_beyond_the_nvlink_domain_exits_2(run):
    r = run(*BASE[:3], "--gpu", "h100", "--tp", "9", "--batch", "1", "--isl", "100", "--osl", "10")
    assert r.exit_code == 2
    assert "--tp 9" in _one_line_error(r)


@pytest.mark.parametrize("args, match", [
    (["--weights", "fp3"], "--weights"),
    (["--layers-per-stage", "a,b"], "--layers-per-stage"),
    (["--spec-draft", "llama-3.1-8b", "--spec-alpha", "1.5"], "--spec-alpha"),
])
def test_bad_flags_exit_2(run, args, match):
    r = run(*BASE, "--gpu", "h100", *args)
    assert r.exit_code == 2
    assert match in _one_line_error(r)


def test_unknown_model_and_missing_config(run, tmp_path):
    r = run("estimate", "--model", "lama-3.1-70b", "--gpu", "h100", "--batch", "1", "--isl", "1", "--osl", "1")
    assert r.exit_code == 2 and "did you mean" in _one_line_error(r)
    r = run("estimate", "--model", str(tmp_path / "none.json"), "--gpu", "h100", "--batch", "1", "--isl", "1",
            "--osl", "1")
    assert r.exit_code == 2 and "no such file" in _one_line_error(r)


def test_not_fitting_is_reported_not_raised(run, dense_1t_path):
    r = run("estimate", "--model", str(dense_1t_path), "--gpu", "h100", "--tp", "8", "--batch", "1", "--isl",
            "2048", "--osl", "256", "--json")
    assert "Traceback" not in r.output
    d = json.loads(r.stdout)
    assert d["fits"] is False and d["bottleneck"] == "memory_capacity"
    assert "does not fit" in r.stderr


def test_catalog_flag_and_price(run, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[accelerator]]\nid = "h100"\nusd_per_hour = 2.0\n', encoding="utf-8")
    d = json.loads(run(*BASE, "--gpu", "h100", "--catalog", str(path), "--json").stdout)
    assert d["cost"]["usd_per_hour"] == pytest.approx(16.0)
    d = json.loads(run(*BASE, "--gpu", "h100", "--price", "3", "--json").stdout)
    assert d["cost"]["usd_per_hour"] == pytest.approx(24.0) and d["inputs"]["price_tier"] == "user"
    r = run(*BASE, "--gpu", "h100", "--catalog", str(tmp_path / "missing.toml"))
    assert r.exit_code == 2 and "missing.toml" in _one_line_error(r)
