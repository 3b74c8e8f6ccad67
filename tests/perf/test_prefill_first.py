"""Prefill-first scheduling (PerfParams.prefill_first, vLLM V0 without chunked prefill): a step with prompts runs
only them and every decoding sequence waits, so a user's TPOT = cycle + ((B − 1)/OSL) · the whole prefill."""
from __future__ import annotations

from dataclasses import replace

import pytest

from planner import api
from planner.catalog import load_catalog
from planner.errors import InputError
from planner.sim import simulate_plan


@pytest.fixture(scope="module")
def prefill_first():
    cat = load_catalog()
    return replace(cat, perf=replace(cat.perf, prefill_first=True))


def test_tpot_charges_the_other_prompts_whole_prefill(prefill_first):
    e = api.estimate("llama-3.1-8b", "h100-sxm", batch=64, isl=1024, osl=256, catalog=prefill_first)
    # one stage: the prefill's slowest stage is the whole prefill, TTFT
    assert e.prefill_stall_s == pytest.approx(e.ttft_s, rel=1e-12)
    assert e.tpot_s == pytest.approx(e.decode_cycle_s + 63 / 256 * e.ttft_s, rel=1e-12)
    assert e.output_tokens_per_s == pytest.approx(64 / (e.decode_cycle_s + 64 / 256 * e.ttft_s), rel=1e-12)
    chunked = api.estimate("llama-3.1-8b", "h100-sxm", batch=64, isl=1024, osl=256)
    assert chunked.tpot_s < e.tpot_s  # chunked prefill reads the weights once for decode and prompt


def test_simulator_runs_prefill_first_steps(prefill_first):
    e = api.estimate("llama-3.1-8b", "h100-sxm", batch=64, isl=1024, osl=256, catalog=prefill_first)
    cap_rps = e.output_tokens_per_s / 256
    r = simulate_plan(e.to_dict(), rate_rps=3 * cap_rps, requests=3000, seed=1, catalog=prefill_first)
    # the replica's time is estimate's: throughput agrees
    assert r["throughput"]["output_tokens_per_s"] == pytest.approx(e.output_tokens_per_s, rel=0.05)
    # a user waits for other prompts' whole prefills, but with equal lengths prompts admitted in the same step
    # finish together, so part of the stalls fall between a cohort's requests rather than inside them: the
    # simulated TPOT lies between the decode cycle and estimate's (B − 1)/OSL bound
    assert e.decode_cycle_s < r["tpot_s"]["p50"] <= e.tpot_s * 1.01


def test_plan_under_prefill_first_verifies(prefill_first):
    d = api.plan("llama-3.1-8b", disagg="off", isl=1000, osl=200, gpus="h100-sxm", catalog=prefill_first).to_dict()
    e = api.estimate("llama-3.1-8b", d["gpu"], batch=d["batch"], isl=1000, osl=200, tp=d["parallelism"]["tp"],
                     pp=d["parallelism"]["pp"], weights=d["precision"]["weights"], kv=d["precision"]["kv"],
                     catalog=prefill_first)
    assert d["metrics"]["tpot_s"] == pytest.approx(e.tpot_s, rel=1e-5) and e.tpot_s <= d["slo"]["tpot_s"]


def test_prefill_first_must_be_a_boolean(tmp_path):
    f = tmp_path / "cat.toml"
    f.write_text("[perf]\nprefill_first = 1\n")
    with pytest.raises(InputError, match="true or false"):
        load_catalog(f)
