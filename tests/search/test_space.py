"""planner/search/space.py with issue #13's dimensions: attention DP (MoE only, the widest EP the experts allow),
EP across nodes, and TP over PCIe; and what the search makes of them on the issue's cases."""
from __future__ import annotations

from dataclasses import replace

from planner.api import make_request
from planner.search.solve import search, verify
from planner.search.space import dp_options, enumerate_rows, ep_options, pools_space, tp_options

from .instances import CATALOG


def test_dp_only_for_moe_and_ep_is_the_widest_the_experts_allow(preset):
    dense, ds, gpt4 = preset("llama-3.1-70b"), preset("deepseek-v3"), preset("gpt4-moe-rumored")
    assert dp_options(dense, (1, 2, 4)) == [1]
    assert dp_options(ds, (1, 2, 4)) == [1, 2, 4]
    assert ep_options(ds, 8, 1) == [1, 2, 4, 8]  # DP 1: any power of two dividing TP and the 256 experts
    assert ep_options(ds, 1, 8) == [8] and ep_options(ds, 8, 4) == [32]  # DP > 1: every GPU its own rank
    assert ep_options(gpt4, 8, 4) == [16]  # 16 experts: 16 ranks of expert-TP 2 over 32 GPUs
    assert ep_options(gpt4, 1, 16) == [16] and ep_options(gpt4, 1, 32) == []  # EP 16 < DP 32: no row


def test_tp_over_pcie_is_in_the_space():
    l40s, h100p, h100 = CATALOG.gpu("l40s"), CATALOG.gpu("h100-pcie"), CATALOG.gpu("h100-sxm")
    from planner.catalog import load_model
    llama = load_model("llama-3.1-70b")
    assert tp_options(llama, l40s, None) == [1, 2, 4, 8]  # one 8-GPU PCIe host
    assert tp_options(llama, h100p, None) == [1, 2, 4, 8]  # NVLink pair, then PCIe
    assert tp_options(llama, h100, None) == [1, 2, 4, 8]


def test_rows_split_micro_batches_evenly_over_dp_groups():
    req, _ = make_request("deepseek-v3", isl=1000, osl=200, gpus="h200", max_gpus=16, min_tokens_per_s_user=10)
    rows = enumerate_rows(req, 2048)
    assert {r.dp for r in rows} == {1, 2, 4, 8, 16}
    assert all(r.micro_batch % r.dp == 0 and r.tp * r.dp * r.pp <= 16 for r in rows)
    assert all(r.ep == r.tp * r.dp for r in rows if r.dp > 1)


def test_1_8t_moe_on_h100_runs_ep_across_nodes():
    """The seed's case: the rumored 1.8T MoE on H100 at reading pace. The search prices EP over several 8-GPU
    nodes, and it wins: attention DP groups sharing 16 expert ranks across nodes."""
    req, cat = make_request("gpt4-moe-rumored", isl=2000, osl=500, gpus="h100-sxm", max_gpus=1024,
                            min_tokens_per_s_user=8)
    rows = enumerate_rows(req, cat.perf.max_batch)
    assert any(r.tp * r.dp > 8 and r.ep > 1 for r in rows)
    res = search(req, cat.perf, alternatives=False)
    r = res.best.row
    assert r.tp * r.dp > 8 and r.ep == 16, r  # experts spread over more than one node
    assert verify(req, res.best) == []
    no_dp, _ = make_request("gpt4-moe-rumored", isl=2000, osl=500, gpus="h100-sxm", max_gpus=1024,
                            min_tokens_per_s_user=8)
    plain = search(replace(no_dp, dp=(1,)), cat.perf, alternatives=False)
    assert res.best.objective < plain.best.objective


def test_deepseek_v3_on_h200_attention_dp_holds_more_sequences():
    """Issue #13's DeepSeek-V3 case (ISL 4000, OSL 500, TTFT 2 s, TPOT 50 ms, <= 16 H200): MLA's latent is no
    longer replicated on every TP rank, so DP groups hold more sequences on the same 8 GPUs; the search over the
    full space is at least as cheap as with DP forced either way. (Since the MoE grouped GEMM shares its waves
    across experts, #14, TP8 without DP is marginally the cheaper plan here, ~1 %: the DP saving of memory no
    longer pays for the all-to-alls at this SLO.)"""
    from planner.catalog import load_model
    from planner.perf.estimate import Config, estimate
    from planner.specs.workload import Workload
    args = dict(isl=4000, osl=500, gpus="h200", max_gpus=16, ttft_ms=2000, tpot_ms=50)
    req, cat = make_request("deepseek-v3", **args)
    m, w, h200 = load_model("deepseek-v3"), Workload(isl=4000, osl=500), cat.gpu("h200")
    tp8 = estimate(m, Config(gpu=h200, tp=8, batch=1, weights="fp8", kv="fp8"), w, cat.perf)
    dp2 = estimate(m, Config(gpu=h200, tp=4, dp=2, ep=8, batch=2, weights="fp8", kv="fp8"), w, cat.perf)
    assert dp2.max_batch > tp8.max_batch
    res = search(req, cat.perf, alternatives=False)
    plain = search(replace(req, dp=(1,)), cat.perf, alternatives=False)
    two = search(replace(req, dp=(2,)), cat.perf, alternatives=False)
    assert two.best.row.dp == 2 and verify(req, two.best) == []
    assert res.best.objective <= min(plain.best.objective, two.best.objective)
    assert verify(req, res.best) == []


def test_70b_on_l40s_at_20_tokens_per_s_uses_tp_over_pcie():
    req, cat = make_request("llama-3.1-70b", isl=2000, osl=500, gpus="l40s", min_tokens_per_s_user=20)
    res = search(req, cat.perf, alternatives=False)
    assert res.best.row.tp > 1 and res.best.estimate.tokens_per_s_per_user >= 20
    assert res.best.row.gpu.intra_node_link(res.best.row.tp).kind == "pcie"
    assert verify(req, res.best) == []


def test_pools_are_proven_over_the_exact_space_by_default_else_the_grid_unless_every_grid_choice_is_pinned():
    req, _ = make_request("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm")
    assert req.pool_space == "exact" and pools_space(req) == "exact"
    assert pools_space(replace(req, tp=(1,))) == "pinned"  # the pins hold, the rest every integer
    assert pools_space(replace(req, batches=(16,))) == "grid"  # exact_pools takes no batch pins
    req = replace(req, pool_space="grid")
    assert pools_space(req) == "grid"
    assert pools_space(replace(req, tp=(1,), pp=(1,))) == "grid"  # micro-batches still the grid's
    assert pools_space(replace(req, tp=(1,), pp=(1,), micro_batches=(8,))) == "pinned"
    assert pools_space(replace(req, tp=(1,), pp=(1, 2), batches=(16,))) == "pinned"


def _shapes_one_by_one(req, depths):
    """enumerate_shapes as first written: every (GPU, weights, KV, TP, DP) block, its depths in the request's
    order, each EP degree, the engine asked per shape (the reference the lazy, numpy form must equal)."""
    from planner import engines
    from planner.search.space import Row, _shape_loops

    out = []
    for gpu, w, kv, tp, dp, pps, eps in _shape_loops(req):
        deepest = [(ep, len(pps) and max(pps) if depths is None else depths.get((gpu.id, w, kv, tp, dp, ep), 0))
                   for ep in eps]
        for pp in pps:
            for ep, d in deepest:
                if pp <= d and engines.row_supported(req.engine, gpu.id, w, kv, tp, pp, ep, dp, req.spec is not None):
                    out.append(Row(gpu, w, kv, tp, pp, ep, 1, dp))
    return out


def test_enumerate_shapes_lists_the_shapes_one_by_one_listing_does_in_its_order():
    """space.enumerate_shapes (groups and depths with numpy, Rows made when read) lists what the per-shape loop
    lists, in its order, with each shape's group numbered by first appearance: over the exact space, with the
    latency depths, with an unsorted pinned PP list, and under an engine that leaves shapes out."""
    import numpy as np

    from planner.search.bounds import latency_depths
    from planner.search.space import enumerate_shapes, group_key
    from planner.search.table import Limits

    cases = [dict(model="deepseek-v3", gpus="h200,b200,mi300x", max_gpus=256),
             dict(model="mixtral-8x7b", pp=(4, 2, 1, 3), engine="sglang", gpus="h100-sxm,a100-80gb"),
             dict(model="llama-3.1-70b", max_gpus=64, engine="trtllm")]
    for kw in cases:
        req, cat = make_request(isl=2000, osl=500, min_tokens_per_s_user=20, **kw)
        for depths in (None, latency_depths(req, cat.perf, Limits.of(req, 1))):
            got, want = enumerate_shapes(req, depths), _shapes_one_by_one(req, depths)
            assert len(want) > 0 and list(got) == want and [got[i] for i in range(len(got))] == want
            assert got == want and want == got and got != want[:-1]
            ids: dict = {}
            assert got.group.tolist() == [ids.setdefault(group_key(r), len(ids)) for r in want]
            assert got.pp.tolist() == [r.pp for r in want]
            assert got[-1] == want[-1] and got[3:7] == want[3:7] and got[np.int64(2)] == want[2]
