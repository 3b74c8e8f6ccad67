"""planner/report.py: the text the CLI prints for an estimate and a plan — the memory bar by hand, and each
printed figure equal to the JSON's, in the printed unit."""
from __future__ import annotations

import pytest

import planner
from planner.report import LIMIT_WORDS, estimate_text, memory_bar, plan_text

GiB = 2**30


def test_memory_bar_scales_each_part_to_the_capacity():
    mem = {"capacity": 80 * GiB, "weights": 40 * GiB, "kv_cache": 20 * GiB, "activations": 4 * GiB,
           "reserve": 8 * GiB, "total": 72 * GiB}
    # 40 columns for 80 GiB: 20 W, 10 K, 2 A, 4 R, 4 free
    assert memory_bar(mem) == "[" + "W" * 20 + "K" * 10 + "AA" + "RRRR" + "...." + "] 72.0/80.0 GiB " \
                              "(W weights, K KV cache, A activations, R reserve)"
    over = {**mem, "kv_cache": 60 * GiB, "total": 112 * GiB}  # more than fits: cut at the width
    assert memory_bar(over, width=10).startswith("[WWWWWKKKKK] 112.0/80.0 GiB")


@pytest.fixture(scope="module")
def plan_dict() -> dict:
    return planner.plan("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", weights="fp8", kv="fp8",
                        time_limit_s=10).to_dict()


def test_plan_text_prints_the_json_figures(plan_dict):
    d, m, c = plan_dict, plan_dict["metrics"], plan_dict["cost"]
    lines = plan_text(d).splitlines()
    par = d["parallelism"]
    assert lines[0] == (f"plan  llama-3.1-8b on {d['total_gpus']} x h100-sxm  ({par['replicas']} replica(s) of "
                        f"TP{par['tp']} PP{par['pp']} EP{par['ep']} = {d['gpus_per_replica']} GPUs)")
    text = "\n".join(lines)
    assert (f"TTFT / TPOT        {m['ttft_s'] * 1000:.0f} ms / {m['tpot_s'] * 1000:.1f} ms "
            f"({m['tokens_per_s_per_user']:.1f} tok/s/user)") in text
    assert f"${c['usd_per_million_output_tokens']:.3f}/M output tokens" in text and "at full capacity" in text
    assert f"limited by {LIMIT_WORDS[d['batch_limited_by']]}" in text
    assert "at full capacity   $" not in text  # the extra capacity line is for plans priced at a demand
    assert lines[-1].startswith("    h100-sxm") and len(lines) == lines.index("  best per GPU type:") + 1 + len(
        d["alternatives"])


def test_estimate_text_prints_the_json_figures():
    d = planner.estimate("llama-3.1-8b", "h100-sxm", batch=8, isl=1000, osl=200).to_dict()
    text = estimate_text(d)
    m = d["metrics"]
    assert text.startswith("llama-3.1-8b on h100-sxm  TP1 PP1 EP1  batch 8  weights bf16 kv bf16  ISL 1000 OSL 200")
    assert f"TTFT               {m['ttft_s'] * 1000:.1f} ms" in text
    assert f"TPOT               {m['tpot_s'] * 1000:.2f} ms  ({m['tokens_per_s_per_user']:.1f} tok/s/user)" in text
    assert "fits               yes" in text and "(TP over pcie)" not in text


def test_disaggregated_plan_text_names_both_pools_and_the_whole_plan_throughput():
    d = planner.plan("llama-3.1-8b", isl=8000, osl=500, gpus="h100-sxm", weights="fp8", kv="fp8", tpot_ms=30,
                     disagg="on", time_limit_s=10).to_dict()
    pf, dec = d["pools"]["prefill"], d["pools"]["decode"]
    lines = plan_text(d).splitlines()
    assert lines[0] == (f"plan  llama-3.1-8b disaggregated on {d['total_gpus']} GPUs: prefill {pf['gpus']} x h100-sxm "
                        f"({pf['replicas']} replica(s)) + decode {dec['gpus']} x h100-sxm ({dec['replicas']} "
                        "replica(s)); the lines down to memory per GPU describe the decode pool")
    assert pf["gpus"] + dec["gpus"] == d["total_gpus"]
    assert f"{d['metrics']['output_tokens_per_s']:.0f} output tok/s for the whole plan (both pools)" in plan_text(d)
