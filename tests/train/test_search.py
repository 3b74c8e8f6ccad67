"""The CP-SAT layout choice against an exhaustive oracle on small instances, its modes, and infeasibility."""
import pytest

from planner import api
from planner.catalog import load_catalog
from planner.errors import InfeasibleError
from planner.specs.model import model_from_config
from planner.train import oracle
from planner.train.request import make_request
from planner.train.result import make_plan
from planner.train.search import TIE_FRACTION, search

TOY_MOE = model_from_config({"hidden_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 8,
                             "intermediate_size": 2048, "num_local_experts": 4, "num_experts_per_tok": 2,
                             "vocab_size": 32000, "hidden_act": "silu", "max_position_embeddings": 2048},
                            name="toy-moe")
TOY_DENSE = model_from_config({"hidden_size": 2048, "num_hidden_layers": 6, "num_attention_heads": 16,
                               "intermediate_size": 8192, "vocab_size": 32000, "hidden_act": "gelu",
                               "max_position_embeddings": 2048}, name="toy-dense")
CAT = load_catalog()

INSTANCES = [
    ("dense-deadline", TOY_DENSE, dict(tokens=5e10, global_batch_tokens=16 * 2048, seq_len=2048, max_gpus=32,
                                        deadline_days=3.0, gpus="a100-80gb,h100-sxm")),
    ("dense-budget", TOY_DENSE, dict(tokens=5e10, global_batch_tokens=16 * 2048, seq_len=2048, max_gpus=32,
                                      budget_usd=2000.0, gpus="a100-40gb,h100-sxm")),
    ("dense-count", TOY_DENSE, dict(tokens=5e10, global_batch_tokens=16 * 2048, seq_len=2048, num_gpus=8,
                                     gpus="a100-80gb,h100-sxm,l40s")),
    ("moe-deadline", TOY_MOE, dict(tokens=2e10, global_batch_tokens=8 * 2048, seq_len=2048, max_gpus=16,
                                    deadline_days=2.0, gpus="h100-sxm,mi300x")),
    ("moe-both", TOY_MOE, dict(tokens=2e10, global_batch_tokens=8 * 2048, seq_len=2048, max_gpus=16,
                                deadline_days=2.0, budget_usd=400.0, gpus="a100-80gb,h100-sxm")),
]


@pytest.mark.parametrize("name,model,kw", INSTANCES, ids=[i[0] for i in INSTANCES])
def test_cp_sat_matches_exhaustive_oracle(name, model, kw):
    req, cat = make_request(model, catalog=CAT, **kw)
    res = search(req, cat.perf)
    plan = make_plan(res, cat.perf)
    best = oracle.best(req, cat.perf)
    assert best is not None
    assert res.solution.status == "OPTIMAL"
    got, want = plan.best.metrics, best.metrics
    first = "days" if req.objective == "time" else "usd_total"
    tol = 1.0 if first == "days" else 0.01  # the solver's integer units: 1 s, 1 cent (rounded up)
    scale = 86_400.0 if first == "days" else 1.0
    # the optimum, or a plan with fewer GPUs within TIE_FRACTION of it
    assert got[first] * scale <= want[first] * scale * (1 + TIE_FRACTION) + tol
    assert got[first] >= want[first] * (1 - 1e-12)
    if got[first] * scale > want[first] * scale + tol:
        assert plan.best.layout.gpus < best.layout.gpus


def test_modes_objective_and_constraints_hold():
    kw = dict(tokens=5e10, global_batch_tokens=16 * 2048, seq_len=2048, max_gpus=32, gpus="a100-80gb,h100-sxm")
    cheap = api.train(TOY_DENSE, deadline_days=3.0, catalog=CAT, **kw).to_dict()
    fast = api.train(TOY_DENSE, budget_usd=2000.0, catalog=CAT, **kw).to_dict()
    assert cheap["solver"]["minimize"] == "cost" and cheap["days"] <= 3.0
    assert fast["solver"]["minimize"] == "time" and fast["cost"]["usd_total"] <= 2000.0
    # a tighter deadline never makes the cheapest plan cheaper
    tight = api.train(TOY_DENSE, deadline_days=1.0, catalog=CAT, **kw).to_dict()
    assert tight["cost"]["usd_total"] >= cheap["cost"]["usd_total"] * (1 - TIE_FRACTION) - 0.01
    d = cheap
    p = d["parallelism"]
    assert d["total_gpus"] == p["tp"] * p["pp"] * p["dp"] * p["cp"]
    assert d["gpu_hours"] == pytest.approx(d["total_gpus"] * d["days"] * 24, rel=1e-5)
    assert d["cost"]["usd_total"] == pytest.approx(d["gpu_hours"] * d["cost"]["usd_per_hour_per_gpu"], rel=1e-5)
    assert {a["gpu"] for a in d["alternatives"]} | {d["gpu"]} == {"a100-80gb", "h100-sxm"}


def test_infeasible_deadline_names_the_fastest_layout():
    with pytest.raises(InfeasibleError) as e:
        api.train(TOY_DENSE, tokens=5e12, global_batch_tokens=16 * 2048, seq_len=2048, max_gpus=16,
                  deadline_days=1.0, gpus="h100-sxm", catalog=CAT)
    assert any(r.startswith("deadline: the fastest layout takes") for r in e.value.reasons)


def test_infeasible_memory():
    with pytest.raises(InfeasibleError) as e:
        api.train("llama-3.1-405b", tokens=1e12, num_gpus=8, gpus="l4", catalog=CAT, seq_len=4096,
                  global_batch_tokens=8 * 4096)
    assert e.value.reasons[0].startswith("memory: no layout of llama-3.1-405b fits at 8 GPUs")


def test_seed_question_is_answered():
    """The rumoured 1.8T MoE on 13T tokens, A100 vs H100, 90 days (examples/train-gpt4-moe-90-days.toml)."""
    d = api.train("gpt4-moe-rumored", tokens="13e12", seq_len=8192, global_batch_tokens=62_914_560,
                  gpus="a100-80gb,h100-sxm", deadline_days=90).to_dict()
    assert d["days"] <= 90 and d["solver"]["status"] == "OPTIMAL"
    types = {a["gpu"] for a in d["alternatives"]} | {d["gpu"]}
    assert types == {"a100-80gb", "h100-sxm"}
    fewest = {f["gpu"]: f for f in d["fewest_gpus"]}
    assert set(fewest) == types and all(f["days"] <= 90 for f in fewest.values())
    # 6·N_active·D alone is 6 x 282e9 x 13e12 = 2.2e25 FLOPs; attention at 8k adds ~10 %
    assert 2.2e25 < d["flops_total"] < 2.6e25


def test_near_ties_go_to_the_fewest_gpus():
    """Cost barely depends on the GPU count once the batch keeps every GPU busy: among plans within TIE_FRACTION
    of the cheapest, the one with the fewest GPUs is chosen."""
    req, cat = make_request("llama-3.1-70b", tokens=1e11, seq_len=131072, global_batch_tokens=16_777_216,
                            gpus="h100-sxm", deadline_days=30, catalog=CAT)
    res = search(req, cat.perf)
    t, chosen = res.table, res.best
    cost, gpus = t.metrics["usd_total"], t.terms["gpus"]
    ok = (t.metrics["days"] <= 30) & (t.terms["memory_bytes"] <= t.capacity)
    near = ok & (cost <= cost[ok].min() * (1 + TIE_FRACTION))
    assert gpus[chosen] == gpus[near].min()
    assert gpus[ok].max() > 4 * gpus[chosen]  # plans with many more GPUs cost about the same
