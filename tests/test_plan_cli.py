"""`planner plan` and `planner frontier` through the CLI: an impossible request exits 1 with one line per blocking
constraint (no traceback), a feasible one plans, a user catalog's [perf] table reaches the optimizer, and the
frontier is Pareto and plots."""
from __future__ import annotations

import json

import jsonschema
import pytest
from click.testing import CliRunner

from planner.api import make_request
from planner.cli import main
from planner.errors import InfeasibleError
from planner.plan import plan_schema
from planner.search.solve import search


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_dense_1t_on_8_h100_is_infeasible(dense_1t_path):
    args = ["plan", "--model", str(dense_1t_path), "--isl", "1000", "--osl", "300", "--gpus", "h100-sxm",
            "--max-gpus", "8", "--min-tokens-per-s-user", "33"]
    r = _run(*args)
    assert r.exit_code == 1
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr
    assert lines and all(line.startswith("infeasible: ") for line in lines)
    assert lines[0].startswith("infeasible: memory")
    # one line per reason the API gives
    req, cat = make_request(str(dense_1t_path), isl=1000, osl=300, gpus="h100-sxm", max_gpus=8,
                            min_tokens_per_s_user=33)
    with pytest.raises(InfeasibleError) as err:
        search(req, cat.perf)
    assert len(lines) == len(err.value.reasons)
    assert _run(*args, "--json").exit_code == 1


def test_gpt3_175b_on_8_h100_plans():
    r = _run("plan", "--model", "gpt3-175b", "--isl", "1000", "--osl", "300", "--gpus", "h100-sxm", "--max-gpus",
             "8", "--min-tokens-per-s-user", "33", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    jsonschema.validate(d, plan_schema())
    assert d["total_gpus"] <= 8 and d["metrics"]["tokens_per_s_per_user"] >= 33
    text = _run("plan", "--model", "gpt3-175b", "--isl", "1000", "--osl", "300", "--gpus", "h100-sxm",
                "--max-gpus", "8", "--min-tokens-per-s-user", "33")
    assert text.exit_code == 0 and "gpt3-175b" in text.stdout


def test_timings_are_opt_in_and_schema_valid():
    r = _run("plan", "--model", "llama-3.1-8b", "--isl", "500", "--osl", "200", "--gpus", "l40s", "--json",
             "--timings")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    jsonschema.validate(d, plan_schema())
    assert d["solver"]["wall_s"] >= 0


def _head_stage_request(tmp_path, overhead_s: float):
    (tmp_path / "perf.toml").write_text(f"[perf]\nhead_stage_overhead_s = {overhead_s!r}\n", encoding="utf-8")
    (tmp_path / "req.toml").write_text(
        'model = "llama-3.1-70b"\ngpus = ["h100-sxm"]\nisl = 1000\nosl = 4000\nmin_tokens_per_s_user = 20\n'
        'weights = ["fp8"]\nkv = ["fp8"]\ntp = [8]\npp = [4]\ncatalog = "perf.toml"\n'
        # the colocated plan's placement (a disaggregated decode pool at the largest batch memory allows fills
        # every stage to its memory cap)
        'disagg = "off"\n', encoding="utf-8")
    r = _run("plan", str(tmp_path / "req.toml"), "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["placement"]["layers_per_stage"]


def test_user_catalog_head_stage_overhead_lightens_the_first_stage(tmp_path):
    # a layer's decode step is ~0.14 ms here (TP8 FP8 on H100); 0.6 ms is about four layers. Long answers keep the
    # decode cycle, not the prefill-chunk stalls (which want an even split), the larger part of TPOT.
    first, *middle, last = _head_stage_request(tmp_path, 0.0006)
    assert first < min(middle)
    first, *middle, last = _head_stage_request(tmp_path, 0.0)
    assert max([first, *middle]) - min([first, *middle]) <= 1


FRONTIER = ["frontier", "--model", "llama-3.1-8b", "--isl", "1000", "--osl", "300", "--gpus", "h100-sxm,l40s",
            "--speeds", "5,10,20,40,80,160"]


def test_frontier_json_is_pareto():
    r = _run(*FRONTIER, "--json")
    assert r.exit_code == 0, r.output
    pts = json.loads(r.stdout)["points"]
    assert len(pts) >= 2
    speeds = [p["tokens_per_s_per_user"] for p in pts]
    costs = [p["usd_per_million_output_tokens"] for p in pts]
    assert speeds == sorted(speeds)
    assert all(a <= b for a, b in zip(costs, costs[1:]))
    for p in pts:
        assert sum(p["layers_per_stage"]) == 32 and len(p["layers_per_stage"]) == p["pp"]


def test_frontier_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "frontier.png"
    r = _run(*FRONTIER, "--plot", str(out))
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_frontier_names_the_plan_flags_it_ignores():
    # --disagg and --pool-space are shared plan flags: a frontier's points are colocated, so it says it drops them
    # (on stderr; the JSON on stdout is the same as without them)
    plain = _run(*FRONTIER, "--json")
    r = _run(*FRONTIER, "--json", "--disagg", "on", "--pool-space", "exact")
    assert r.exit_code == 0, r.output
    assert "note: frontier ignores --disagg, --pool-space" in r.stderr
    assert r.stdout == plain.stdout
    assert "ignores" not in plain.stderr
