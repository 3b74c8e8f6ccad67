"""planner/train/result.py and oracle.py: one layout re-estimated in floating point (run figures from its step
time, by hand), the constraints `verify` re-checks, the oracle's enumeration, and the plan's JSON."""
from __future__ import annotations

from dataclasses import replace

import jsonschema
import pytest

from planner.catalog import load_catalog
from planner.train.oracle import best, layouts
from planner.train.request import make_request
from planner.train.result import estimate, train_schema, verify
from planner.train.step import Layout


@pytest.fixture(scope="module")
def request8():
    return make_request("llama-3.1-8b", tokens="1T", gpus="h100-sxm", num_gpus=8, seq_len=4096,
                        global_batch_tokens=64 * 4096)


def test_run_figures_follow_from_the_step_time(request8):
    req, cat = request8
    lay = Layout(cat.gpu("h100-sxm"), tp=1, pp=1, dp=8, zero=1, recompute="selective", micro_batch=1)
    e = estimate(req, lay, cat.perf)
    m, step = e.metrics, e.terms["step_s"]
    assert m["tokens_per_s"] == pytest.approx(64 * 4096 / step)  # a global batch per step
    # days = D / (tokens/s · goodput) / 86 400; GPU-hours = GPUs · days · 24; cost = GPU-hours · $/GPU-hour
    assert m["days"] == pytest.approx(1e12 / (m["tokens_per_s"] * req.params.goodput) / 86400)
    assert m["gpu_hours"] == pytest.approx(8 * m["days"] * 24)
    assert m["usd_total"] == pytest.approx(m["gpu_hours"] * lay.gpu.usd_per_hour)
    assert e.capacity_bytes == pytest.approx(lay.gpu.memory_bytes * (1 - req.params.memory_reserve_fraction))
    assert verify(req, e) == []


def test_verify_names_each_broken_constraint(request8):
    req, cat = request8
    h100 = cat.gpu("h100-sxm")
    assert verify(req, estimate(req, Layout(h100, tp=1, pp=1, dp=4, micro_batch=1), cat.perf)) == ["num_gpus"]
    # 64 sequences do not split over dp 8 × micro-batch 16 → not a whole batch
    e = estimate(req, Layout(h100, tp=1, pp=1, dp=8, micro_batch=16, recompute="none", zero=0), cat.perf)
    assert "layout does not divide the batch / experts" in verify(req, e)
    ok = estimate(req, Layout(h100, tp=1, pp=1, dp=8, micro_batch=1), cat.perf)
    tight = replace(req, deadline_days=ok.metrics["days"] / 2, budget_usd=ok.metrics["usd_total"] / 2)
    assert verify(tight, ok) == ["deadline", "budget"]


def test_oracle_enumerates_only_layouts_at_the_requested_count_and_picks_a_verified_one(request8):
    req, cat = request8
    small = replace(req, gpus=(cat.gpu("h100-sxm"),))
    seen = list(layouts(small))
    assert seen and all(lay.gpus == 8 for lay in seen)
    assert all(64 % (lay.dp * lay.micro_batch) == 0 for lay in seen)
    e = best(small, cat.perf)
    assert e is not None and verify(small, e) == []
    assert all(estimate(small, lay, cat.perf).metrics["usd_total"] >= e.metrics["usd_total"] - 1e-6
               for lay in seen[:50] if not verify(small, estimate(small, lay, cat.perf)))


def test_plan_json_follows_its_schema():
    import planner

    d = planner.train("llama-3.1-8b", tokens="1T", gpus="h100-sxm", num_gpus=8, time_limit_s=10).to_dict()
    jsonschema.validate(d, train_schema())
    par, w = d["parallelism"], d["workload"]
    assert d["total_gpus"] == 8 == par["tp"] * par["pp"] * par["dp"] * par["cp"]
    # 512 sequences per step over dp 8 in micro-batches: micro-batches per step = 512 / (dp · micro-batch)
    assert par["micro_batches_per_step"] == w["global_batch_sequences"] // (par["dp"] * par["micro_batch"])
    assert w["steps"] == pytest.approx(1e12 / w["global_batch_tokens"], abs=1)  # 1T / 4Mi tokens per step
