"""What each engine can express of a plan, the nearest layout when it cannot, and that layout's re-estimate."""
from __future__ import annotations

import copy

import pytest

from planner import api
from planner.export import export
from planner.export.engines import nodes_for
from planner.export.layout import tensor_split_layers


def test_tensor_split_layers_gives_the_remainder_to_the_first_stages():
    # torch.tensor_split(arange(80), 6) -> sizes 14, 14, 13, 13, 13, 13 (TensorRT-LLM Mapping.pp_layers)
    assert tensor_split_layers(80, 6) == (14, 14, 13, 13, 13, 13)
    assert tensor_split_layers(80, 4) == (20, 20, 20, 20)
    assert tensor_split_layers(32, 3) == (11, 11, 10)


def test_vllm_and_sglang_set_uneven_layers_through_their_env_var(uneven_pp_plan):
    layers = uneven_pp_plan["placement"]["layers_per_stage"]
    assert layers != list(tensor_split_layers(sum(layers), len(layers)))
    for engine, var in (("vllm", "VLLM_PP_LAYER_PARTITION"), ("sglang", "SGLANG_PP_LAYER_PARTITION")):
        ex = export(uneven_pp_plan, engine)
        assert ex.exact and ex.reestimate is None
        assert ex.env == {var: ",".join(map(str, layers))}


def test_trtllm_emits_its_own_split_and_reestimates_it(uneven_pp_plan, catalog):
    plan = uneven_pp_plan
    ex = export(plan, "trtllm")
    assert not ex.exact
    split = list(tensor_split_layers(80, 6))
    assert ex.layout["emitted"]["layers_per_stage"] == split
    assert any("cannot set layers per pipeline stage" in n for n in ex.notes)
    # the re-estimate is planner.perf.estimate of the emitted layout at the plan's price
    e = api.estimate("llama-3.1-70b", "h100-sxm", tp=1, pp=6, batch=plan["batch"], isl=1000, osl=300,
                     weights=plan["precision"]["weights"], kv=plan["precision"]["kv"], layers_per_stage=tuple(split),
                     price=plan["cost"]["usd_per_hour_per_gpu"])
    r = ex.reestimate
    assert r["layers_per_stage"] == split
    assert r["metrics"]["tpot_s"] == pytest.approx(e.tpot_s, rel=1e-5)
    assert r["usd_per_million_output_tokens"] == pytest.approx(e.usd_per_million_output_tokens, rel=1e-5)
    # the optimizer's placement was the cheapest: the engine's split cannot beat it
    assert r["usd_per_million_output_tokens"] >= plan["cost"]["usd_per_million_output_tokens"] * (1 - 1e-6)
    assert "re-estimate of the emitted layout" in ex.script()


def test_vllm_expert_parallelism_is_all_or_nothing(moe_plan):
    plan = copy.deepcopy(moe_plan)
    assert plan["parallelism"]["tp"] == 8
    plan["parallelism"]["ep"] = 2  # EP 2 inside TP 8: SGLang and TensorRT-LLM express it, vLLM cannot
    assert export(plan, "sglang").exact and export(plan, "trtllm").exact
    ex = export(plan, "vllm")
    assert not ex.exact and ex.layout["emitted"]["ep"] in (1, 8)
    assert any("expert parallelism only across the whole TP x DP group" in n for n in ex.notes)
    costs = {}
    for ep in (1, 8):
        e = api.estimate("mixtral-8x7b", "h100-sxm", tp=8, ep=ep, batch=plan["batch"], isl=1000, osl=300,
                         weights=plan["precision"]["weights"], kv=plan["precision"]["kv"],
                         price=plan["cost"]["usd_per_hour_per_gpu"])
        costs[ep] = e.usd_per_million_output_tokens
    assert ex.layout["emitted"]["ep"] == min(costs, key=costs.get)
    assert ("--enable-expert-parallel" in ex.argv) == (ex.layout["emitted"]["ep"] == 8)


def test_sglang_ep_inside_tp_and_trtllm_moe_tp(moe_plan):
    plan = copy.deepcopy(moe_plan)
    plan["parallelism"]["ep"] = 2
    sg = export(plan, "sglang")
    assert sg.argv[sg.argv.index("--ep-size") + 1] == "2"
    import yaml

    opts = yaml.safe_load(export(plan, "trtllm").files["extra-llm-api-options.yaml"])
    assert (opts["moe_expert_parallel_size"], opts["moe_tensor_parallel_size"]) == (2, 4)


def test_int8_kv_becomes_fp8_with_a_note():
    plan = api.plan("llama-3.1-8b", disagg="off", isl=1000, osl=300, gpus="h100-sxm", kv="int8", weights="bf16",
                    min_tokens_per_s_user=20, time_limit_s=20).to_dict()
    assert plan["precision"]["kv"] == "int8"
    for engine, flag, value in (("vllm", "--kv-cache-dtype", "fp8"), ("sglang", "--kv-cache-dtype", "fp8_e4m3")):
        ex = export(plan, engine)
        assert ex.argv[ex.argv.index(flag) + 1] == value
        assert ex.layout["emitted"]["kv"] == "fp8" and any("no int8 KV cache" in n for n in ex.notes)
        assert ex.reestimate["fits"]


def test_prequantized_weights_get_a_note_not_a_flag():
    # (bf16 KV: vLLM cannot run an fp8 KV cache on Ampere, catalog/engines/support.toml)
    plan = api.plan("llama-3.1-70b", disagg="off", isl=1000, osl=300, gpus="a100-80gb", kv="bf16", min_tokens_per_s_user=10,
                    time_limit_s=20).to_dict()
    assert plan["precision"]["weights"] == "int8"  # A100 has no FP8
    ex = export(plan, "vllm")
    assert "--quantization" not in ex.argv and ex.exact
    assert any("already quantized to int8" in n for n in ex.notes)


def test_engine_that_cannot_run_on_the_vendor_refuses():
    from planner import api
    from planner.errors import InputError

    from .conftest import EXAMPLES

    # the Mixtral example kept on AMD GPUs (unpinned, its cheapest colocated plan may be on NVIDIA)
    plan = api.plan(next(p for p in EXAMPLES if p.stem == "moe-mixtral"), disagg="off", gpus="mi300x,mi325x").to_dict()
    assert plan["gpu"].startswith("mi")
    with pytest.raises(InputError, match="NVIDIA GPUs only.*export it with --engine vllm or sglang"):
        export(plan, "trtllm")
    assert not any("does not run" in n for n in export(plan, "vllm").notes)


@pytest.mark.parametrize("gpus,per_node,pp,tp,nodes", [
    (2, 8, 1, 2, 1), (8, 8, 1, 8, 1), (32, 8, 4, 8, 4), (16, 8, 16, 1, 2), (12, 8, 6, 2, 2), (72, 4, 1, 72, 18),
    (24, 8, 3, 8, 3)])
def test_nodes_per_replica(gpus, per_node, pp, tp, nodes):
    assert nodes_for(gpus, per_node, pp, tp) == nodes


def test_memory_fractions_follow_the_plan(example_plan):
    from .conftest import EXAMPLES

    plan = example_plan(EXAMPLES[0])
    mem = plan["memory_per_gpu_bytes"]
    vl = export(plan, "vllm").argv
    util = float(vl[vl.index("--gpu-memory-utilization") + 1])
    assert util <= 1 - mem["reserve"] / mem["capacity"] + 1e-9 and util >= 1 - mem["reserve"] / mem["capacity"] - 0.01
    sg = export(plan, "sglang").argv
    static = float(sg[sg.index("--mem-fraction-static") + 1])
    assert static * mem["capacity"] >= mem["weights"] + mem["kv_cache"], "the static pool holds the plan's weights+KV"


def test_trtllm_attention_dp_rounds_the_batch_to_whole_groups():
    """TensorRT-LLM's attention DP is TP 1 per group: TP 2 x DP 2 becomes DP 4, and a batch of 2 cannot be split
    over 4 groups, so the emitted batch is 4 (found by tests/export/test_random_plans.py: the re-estimate refused
    the layout before)."""
    import planner

    d = planner.estimate("mixtral-8x7b", "h100-sxm", batch=2, isl=1000, osl=200, tp=2, dp=2, ep=4).to_dict()
    ex = planner.export(d, "trtllm")
    assert any("emitting TP 1 x DP 4 (the same GPUs) and batch 4 (the plan's 2 rounded up" in n for n in ex.notes)
    assert ex.argv[ex.argv.index("--tp_size") + 1] == "4"
    d6 = planner.estimate("mixtral-8x7b", "h100-sxm", batch=8, isl=1000, osl=200, tp=2, dp=2, ep=4).to_dict()
    assert not any("rounded up" in n for n in planner.export(d6, "trtllm").notes)  # 8 splits over 4 groups
