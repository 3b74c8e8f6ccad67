"""`planner simulate` through click's CliRunner: JSON output, determinism, traces, one-line errors."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from planner import api
from planner.cli import main


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def plan_file(tmp_path):
    p = tmp_path / "plan.json"
    p.write_text(json.dumps({
        "model": "llama-3.1-8b", "gpu": "h100-sxm", "parallelism": {"tp": 1, "pp": 1, "ep": 1, "replicas": 2},
        "batch": 32, "precision": {"weights": "fp8", "kv": "fp8"}, "placement": {"layers_per_stage": [32]},
        "workload": {"isl": 512, "osl": 128, "rate_rps": 6.0}, "slo": {"ttft_s": 0.5, "tpot_s": 0.03},
    }), encoding="utf-8")
    return p


def test_json_is_deterministic_and_matches_the_api(run, plan_file):
    a = run("simulate", str(plan_file), "--requests", "300", "--seed", "4", "--lengths", "exponential", "--json")
    b = run("simulate", str(plan_file), "--requests", "300", "--seed", "4", "--lengths", "exponential", "--json")
    assert a.exit_code == 0, a.output
    assert a.stdout == b.stdout
    d = json.loads(a.stdout)
    assert d == api.simulate(plan_file, requests=300, seed=4, lengths="exponential")
    assert d["arrivals"]["rate_rps"] == 6.0 and d["plan"]["replicas"] == 2  # the plan's rate and replicas
    assert d["requests"]["simulated"] == 300 and d["seed"] == 4
    assert set(d["slo_attainment"]) == {"ttft", "tpot", "both"}


def test_text_output_and_overrides(run, plan_file):
    r = run("simulate", str(plan_file), "--rate-rps", "3", "--duration-s", "30", "--replicas", "1",
            "--balancer", "round-robin", "--tpot-ms", "20")
    assert r.exit_code == 0, r.output
    for text in ("llama-3.1-8b on h100-sxm", "x1 replicas (round-robin)", "TTFT  ", "TPOT  ", "queue length",
                 "KV occupancy", "SLO attainment", "≤ 20 ms"):
        assert text in r.stdout


def test_trace(run, plan_file, tmp_path):
    t = tmp_path / "trace.jsonl"
    t.write_text("\n".join(json.dumps({"arrival_s": i * 0.2, "input_tokens": 100 + i, "output_tokens": 20})
                           for i in range(50)), encoding="utf-8")
    r = run("simulate", str(plan_file), "--trace", str(t), "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["requests"]["simulated"] == 50 and d["arrivals"]["trace"] == str(t)


@pytest.mark.parametrize("content,extra,match", [
    (b'{"model": "llama-3.1-8b"', [], "invalid JSON"),
    (b"\xff\xfe{}", [], "not UTF-8"),
    (b'{"model": "llama-3.1-8b", "gpu": "h100"}', [], "missing field 'parallelism.tp'"),
    (None, ["--duration-s", "5", "--requests", "5"], "either --duration-s or --requests"),
    (None, ["--tpot-ms", "0"], "--tpot-ms must be > 0"),
])
def test_errors_are_one_line_exit_2(run, plan_file, tmp_path, content, extra, match):
    path = plan_file
    if content is not None:
        path = tmp_path / "bad.json"
        path.write_bytes(content)
    r = run("simulate", str(path), *extra)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0]
    assert "Traceback" not in r.output


def test_attention_dp_plan_simulates_and_says_dp(run, tmp_path):
    """A DeepSeek-V3 plan with TP4 × DP2 attention groups (EP8 over the 8 GPUs) replays and is labelled as such;
    its steady-state estimate is the DP estimate (8 GPUs)."""
    p = tmp_path / "dp.json"
    p.write_text(json.dumps({
        "model": "deepseek-v3", "gpu": "h200", "parallelism": {"tp": 4, "dp": 2, "pp": 1, "ep": 8, "replicas": 1},
        "batch": 64, "precision": {"weights": "fp8", "kv": "fp8"}, "placement": {"layers_per_stage": [61]},
        "workload": {"isl": 2000, "osl": 200, "rate_rps": 2.0}, "slo": {"ttft_s": 2.0, "tpot_s": 0.05},
    }), encoding="utf-8")
    r = run("simulate", str(p), "--requests", "60")
    assert r.exit_code == 0, r.output
    assert "deepseek-v3 on h200  TP4 DP2 PP1 EP8" in r.stdout
    d = json.loads(run("simulate", str(p), "--requests", "60", "--json").stdout)
    assert d["plan"]["dp"] == 2
    e = api.estimate("deepseek-v3", "h200", tp=4, dp=2, ep=8, batch=64, isl=2000, osl=200, weights="fp8", kv="fp8")
    assert d["estimate"]["ttft_s"] == pytest.approx(e.ttft_s, rel=1e-5)
