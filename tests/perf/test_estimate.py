"""planner/perf/estimate.py and planner.api.estimate: the composed model against hand numbers and published
bounds, its monotonicity in batch, memory fit, MoE and speculative-decoding effects, cost and the JSON contract."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from planner import api
from planner.catalog import load_model
from planner.errors import InputError
from planner.perf import memory as mem
from planner.perf.estimate import Config, SpecDecode, estimate, hardware, step_terms
from planner.specs.workload import Workload


def _llama70b(catalog, **kw):
    args = {"tp": 8, "batch": 1, "isl": 2048, "osl": 256, "catalog": catalog, **kw}
    return api.estimate("llama-3.1-70b", "h100", **args)


def test_llama70b_batch1_decode_cycle_by_hand(preset, h100, round_params):
    m = preset("llama-3.1-70b")
    e = estimate(m, Config(gpu=h100, tp=8, batch=1), Workload(isl=1000, osl=200), round_params)
    hbm = 3.35e12 * 0.8
    ctx = 1000 + 200 / 2  # a decoding sequence attends its mean context
    shared = 855_654_400  # attention + norms + MLP weights per layer (tests/perf/test_step.py)
    layer = (shared * 2 / 8 + (ctx + 1) * 512) / hbm + 2 * (8e-6 + 1.75 * 8192 * 2 / 360e9)
    embedding = 8192 * 2 / hbm
    lm_head = 128256 * 8192 * 2 / 8 / hbm
    cycle = 80 * layer + embedding + lm_head + 0.002  # + step overhead; one stage, no send/recv
    assert e.decode_cycle_s == pytest.approx(cycle, rel=1e-9)
    # batch 1: no other request's prefill stalls this one, its own is TTFT's
    assert e.tpot_s == pytest.approx(e.decode_cycle_s, rel=1e-12)
    # the replica still spends one prefill per 200 tokens: its stall rides on a decode step (weights read once),
    # so it costs less than the prefill alone but more than the prefill minus a whole decode step
    assert e.ttft_s - e.decode_cycle_s < e.prefill_stall_s < e.ttft_s
    assert e.output_tokens_per_s == pytest.approx(1 / (e.decode_cycle_s + e.prefill_stall_s / 200), rel=1e-12)
    assert e.output_tokens_per_s < 1 / e.tpot_s  # the replica also spends its own prefills
    assert e.layers_per_stage == (80,) and e.fits and e.bottleneck == "memory_bandwidth"
    # TTFT (one stage): the 1000-token prompt through 80 layers (causal: ~500 keys per query), embedding, the LM
    # head for the one token that needs logits, and the step overhead; each kernel group on its own roofline
    peak = 989.4e12 * 0.5
    pre_layer = (max(2 * shared * 1000 / 8 / peak, shared * 2 / 8 / hbm)
                 + max(4 * 64 * 128 * 500 * 1000 / 8 / peak, 1000 * 512 / hbm)
                 + 2 * (8e-6 + 1.75 * 1000 * 8192 * 2 / 360e9))
    pre_head = max(2 * 128256 * 8192 / 8 / peak, 128256 * 8192 * 2 / 8 / hbm)
    assert e.ttft_s == pytest.approx(80 * pre_layer + 1000 * 8192 * 2 / hbm + pre_head + 0.002, rel=1e-9)
    # MBU: bytes one GPU reads per cycle over what its HBM could move in that time
    step_bytes = 80 * (shared * 2 / 8 + (ctx + 1) * 512) + 8192 * 2 + 128256 * 8192 * 2 / 8
    assert e.mbu == pytest.approx(step_bytes / e.decode_cycle_s / 3.35e12, rel=1e-9)
    # MFU: model FLOPs per output token (weights, attention at the mean context, 1/OSL of a prompt's prefill)
    # at the achieved rate, over 8 × 989.4 TFLOP/s
    matmul = 2 * (70_553_706_496 - 128256 * 8192 - 8192)
    attention = 80 * 4 * 64 * 128
    flops_per_output = matmul + attention * ctx + 1000 * (matmul + attention * 1000 / 2) / 200
    assert e.mfu == pytest.approx(e.output_tokens_per_s * flops_per_output / (8 * 989.4e12), rel=1e-9)


def test_llama70b_batch1_tpot_at_least_weight_streaming_time(catalog):
    e = _llama70b(catalog)
    weights = 70.55e9 * 2  # ≈ 141 GB of bf16 weights, read once per token, over 8 × 3.35 TB/s
    assert e.tpot_s >= weights / (8 * 3.35e12)
    assert e.tpot_s < 3 * weights / (8 * 3.35e12)  # and not absurdly above it
    assert e.bottleneck == "memory_bandwidth"


def test_tpot_and_throughput_grow_with_batch(catalog):
    batches = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    runs = [_llama70b(catalog, batch=b) for b in batches]
    assert all(r.fits for r in runs)
    tpot = np.array([r.tpot_s for r in runs])
    thr = np.array([r.output_tokens_per_s for r in runs])
    assert np.all(np.diff(tpot) > 0)
    assert np.all(np.diff(thr) > 0)


def test_dense_1t_bf16_does_not_fit_on_8_h100(catalog, dense_1t_path):
    e = api.estimate(str(dense_1t_path), "h100", tp=8, batch=1, isl=2048, osl=256, catalog=catalog)
    assert e.fits is False
    assert e.bottleneck == "memory_capacity"
    assert e.memory["weights"] == pytest.approx(1.0065e12 * 2 / 8, rel=1e-3)  # ≈ 251.6 GB per GPU
    assert e.memory["total"] > e.memory["capacity"] == 80 * 2 ** 30
    assert e.max_batch == 0
    (msg,) = e.messages
    assert msg.startswith("does not fit") and "GiB" in msg and "h100-sxm" in msg and "\n" not in msg
    d = e.to_dict()
    assert d["fits"] is False and d["messages"] == [msg]


def test_gpt3_175b_fp8_fits_on_8_h100(catalog):
    # ISL + OSL = 2048, GPT-3's whole context (a longer request is an input error)
    e = api.estimate("gpt3-175b", "h100", tp=8, batch=8, isl=1792, osl=256, weights="fp8", catalog=catalog)
    assert e.fits and not e.messages
    assert e.memory["total"] <= e.memory["capacity"]
    # fp8 layers + bf16 embedding and untied head, over 8 GPUs: ≈ 21.9 GB each
    assert e.memory["weights"] == pytest.approx((174.57e9 + 2 * 12288 * 50257) / 8, rel=0.01)
    bf16 = api.estimate("gpt3-175b", "h100", tp=8, batch=8, isl=1792, osl=256, weights="bf16", catalog=catalog)
    assert bf16.memory["weights"] > 1.9 * e.memory["weights"]


def test_moe_decode_reads_fewer_weight_bytes_at_batch_1(preset, h100, catalog):
    """Expected-experts effect: at batch 1 each MoE layer streams k experts, at batch 256 nearly all E."""
    for name, tp in (("mixtral-8x7b", 2), ("deepseek-v3", 8)):
        m = preset(name)
        hw = hardware(h100, "fp8")
        kv_token = float(mem.kv_bytes_per_token_per_layer_per_gpu(m, 1.0, tp))
        weight_bytes = {}
        for batch in (1, 256):
            t = step_terms(m, hw, catalog.perf, tp=tp, ep=1, weight_bytes=1.0, kv_bytes=1.0, micro_batch=batch,
                           isl=1024, osl=256)
            kv = batch * (1024 + 128 + 1) * kv_token  # KV read at the mean context + the new token's write
            weight_bytes[batch] = float(t.decode_layer.bytes) - kv
            touched = m.num_experts * (1 - (1 - m.experts_per_token / m.num_experts) ** batch)
            expected = (m.layer_shared_params + m.moe_layer_fraction * touched * m.expert_params) / tp
            assert weight_bytes[batch] == pytest.approx(expected, rel=1e-9)
        assert weight_bytes[1] < 0.5 * weight_bytes[256]


def test_moe_estimate_batch1_is_cheaper_per_step_than_dense_equivalent(catalog):
    # Mixtral-8x7B (46.7B total, 12.9B active) decodes a token at batch 1 faster than streaming all 46.7B would
    e = api.estimate("mixtral-8x7b", "h100", tp=2, batch=1, isl=1024, osl=256, catalog=catalog)
    all_weights_s = 46.7e9 * 2 / 2 / (3.35e12 * catalog.perf.for_gpu("h100-sxm", "hopper").hbm_efficiency)
    assert e.decode_cycle_s < 0.6 * all_weights_s


def test_speculative_decoding_lowers_batch1_tpot(catalog):
    plain = _llama70b(catalog)
    spec = _llama70b(catalog, spec_draft="llama-3.1-8b", spec_alpha=0.8, spec_gamma=4)
    assert spec.tpot_s < plain.tpot_s
    assert spec.ttft_s > plain.ttft_s  # the draft prefills too
    assert spec.memory["weights"] > plain.memory["weights"]  # and is stored on the first stage
    # the gain is bounded by the expected tokens per step, (1 − 0.8^5) / 0.2 = 3.3616
    assert plain.tpot_s / spec.tpot_s < 3.3616
    d = spec.to_dict()["inputs"]["speculative"]
    assert d == {"draft": "llama-3.1-8b", "gamma": 4, "alpha": 0.8}


def test_speculative_cycle_by_hand(catalog):
    """cycle = t_verify(γ + 1 tokens per sequence) + γ · t_draft_step; TPOT = cycle / E[tokens] + ((B−1)/OSL) · stall."""
    plain = _llama70b(catalog)
    spec = _llama70b(catalog, spec_draft="llama-3.1-8b", spec_alpha=0.8, spec_gamma=4)
    # the draft alone on the same GPUs, same batch: one decode step per drafted token
    draft = api.estimate("llama-3.1-8b", "h100", tp=8, batch=1, isl=2048, osl=256, catalog=catalog)
    verify = spec.decode_cycle_s - 4 * draft.decode_cycle_s
    # batch-1 decode is weight-streaming bound: checking 5 tokens costs more than 1, but not much more
    assert plain.decode_cycle_s < verify < 1.2 * plain.decode_cycle_s
    tokens_per_step = (1 - 0.8 ** 5) / (1 - 0.8)
    assert spec.tpot_s == pytest.approx(spec.decode_cycle_s / tokens_per_step, rel=1e-9)  # batch 1: no stall
    assert spec.output_tokens_per_s == pytest.approx(
        1 / (spec.decode_cycle_s / tokens_per_step + spec.prefill_stall_s / 256), rel=1e-9)
    # (the draft's prefill is counted without a step overhead of its own: the H100's vLLM profile's value)
    overhead = catalog.perf.for_gpu("h100-sxm", "hopper").step_overhead_s
    assert spec.ttft_s == pytest.approx(plain.ttft_s + draft.ttft_s - overhead, rel=1e-9)


def test_speculative_draft_memory_on_first_stage(catalog):
    plain = _llama70b(catalog, batch=4)
    spec = _llama70b(catalog, batch=4, spec_draft="llama-3.1-8b", spec_alpha=0.8, spec_gamma=4)
    # draft weights: all of Llama-3.1-8B (8,030,261,248 params, bf16) over TP8, minus its final norm
    assert spec.memory["weights"] - plain.memory["weights"] == pytest.approx(2 * (8_030_261_248 - 4096) / 8)
    # draft KV: 4 sequences × 2304 tokens × 32 layers × one KV head per GPU (2 × 128 × 2 B)
    assert spec.memory["kv_cache"] - plain.memory["kv_cache"] == pytest.approx(4 * 2304 * 32 * 512)


def test_speculative_acceptance_zero_is_slower(catalog):
    plain = _llama70b(catalog)
    worthless = _llama70b(catalog, spec_draft="llama-3.1-8b", spec_alpha=0.0, spec_gamma=4)
    assert worthless.tpot_s > plain.tpot_s


def test_json_has_the_keys_issue_2_requires(catalog):
    d = _llama70b(catalog, batch=16).to_dict()
    assert set(d["metrics"]) == {"ttft_s", "tpot_s", "tokens_per_s_per_user", "output_tokens_per_s",
                                 "output_tokens_per_s_per_gpu", "mfu", "mbu"}
    assert set(d["memory_per_gpu_bytes"]) == {"weights", "kv_cache", "activations", "reserve", "total", "capacity"}
    assert set(d["cost"]) == {"usd_per_hour", "basis", "usd_per_million_output_tokens", "usd_per_million_tokens",
                              "usd_per_million_input_tokens_marginal", "usd_per_million_output_tokens_marginal"}
    assert d["cost"]["basis"] == "capacity"
    assert d["fits"] is True
    assert d["bottleneck"] in {"compute", "memory_bandwidth", "communication", "memory_capacity"}
    assert d["model"] == "llama-3.1-70b" and d["gpu"] == "h100-sxm"
    i = d["inputs"]
    assert (i["tp"], i["pp"], i["ep"], i["batch"], i["isl"], i["osl"], i["weights"], i["kv"]) == \
        (8, 1, 1, 16, 2048, 256, "bf16", "bf16")
    m = d["metrics"]
    assert m["tokens_per_s_per_user"] == pytest.approx(1 / m["tpot_s"], rel=1e-5)
    assert m["output_tokens_per_s_per_gpu"] == pytest.approx(m["output_tokens_per_s"] / 8, rel=1e-5)
    e = _llama70b(catalog, batch=16)
    # 16 tokens per round; a round is a user's TPOT plus the one prefill stall per OSL tokens it is not charged
    assert m["output_tokens_per_s"] == pytest.approx(16 / (e.tpot_s + e.prefill_stall_s / 256), rel=1e-5)
    assert 0 < m["mfu"] < 1 and 0 < m["mbu"] <= 1
    for v in d["memory_per_gpu_bytes"].values():
        assert isinstance(v, int) and v > 0


def test_memory_breakdown_by_hand(catalog):
    e = _llama70b(catalog, batch=16)
    m = e.memory
    assert m["capacity"] == 80 * 2 ** 30
    assert m["reserve"] == pytest.approx(catalog.perf.memory_reserve_fraction * 80 * 2 ** 30)
    assert m["weights"] == pytest.approx(2 * (70_553_706_496 - 8192) / 8)
    # 16 sequences × (2048 + 256) tokens × 80 layers × 512 B (one KV head per GPU)
    assert m["kv_cache"] == pytest.approx(16 * 2304 * 80 * 512)
    assert m["total"] == pytest.approx(m["weights"] + m["kv_cache"] + m["activations"] + m["reserve"])


def test_cost_is_gpus_times_price(catalog):
    e = api.estimate("llama-3.1-70b", "h100", tp=4, pp=2, batch=32, isl=1024, osl=256, catalog=catalog)
    price = catalog.gpu("h100-sxm").usd_per_hour
    assert e.usd_per_hour == pytest.approx(8 * price)
    # $/M output tokens = $/h / 3600 / (tokens/s) × 1e6; per M tokens counts the prompt too
    assert e.usd_per_million_output_tokens == pytest.approx(8 * price / 3600 / e.output_tokens_per_s * 1e6)
    assert e.usd_per_million_tokens == pytest.approx(e.usd_per_million_output_tokens * 256 / (1024 + 256))
    override = api.estimate("llama-3.1-70b", "h100", tp=4, pp=2, batch=32, isl=1024, osl=256, price=1.25,
                            catalog=catalog)
    assert override.usd_per_hour == pytest.approx(10.0)
    assert override.to_dict()["inputs"]["price_tier"] == "user"


def test_pipeline_head_stage_overhead_moves_layers_off_stage_0(preset, h100, catalog):
    m = preset("llama-3.1-70b")
    w = Workload(isl=1024, osl=256)
    base = estimate(m, Config(gpu=h100, tp=4, pp=2, batch=8), w, catalog.perf)
    loaded = estimate(m, Config(gpu=h100, tp=4, pp=2, batch=8), w,
                      replace(catalog.perf, head_stage_overhead_s=0.005))
    assert sum(loaded.layers_per_stage) == 80
    assert loaded.layers_per_stage[0] < base.layers_per_stage[0]
    assert loaded.layers_per_stage[0] < loaded.layers_per_stage[1]


def test_mbu_counts_every_micro_batch_of_the_bottleneck_stage(catalog):
    """At one sequence per micro-batch, PP2 streams the same weights per GPU per cycle as PP1 (two micro-batches ×
    half the layers), so its bandwidth utilization is about the same; and no config beats hbm_efficiency."""
    pp1 = _llama70b(catalog, tp=4, pp=1, batch=1)
    pp2 = _llama70b(catalog, tp=4, pp=2, batch=2)
    assert pp2.mbu == pytest.approx(pp1.mbu, rel=0.1)
    # PP4 and PP8: the bottleneck is a middle stage, which holds neither the embedding nor the LM head
    for e in (pp1, pp2, _llama70b(catalog, batch=64), _llama70b(catalog, tp=2, pp=4, batch=32),
              _llama70b(catalog, tp=1, pp=8, batch=8)):
        assert 0 < e.mbu <= catalog.perf.hbm_efficiency + 1e-9
        assert 0 < e.mfu < 1


def test_explicit_layers_per_stage(catalog):
    e = _llama70b(catalog, tp=4, pp=2, batch=8, layers_per_stage=(30, 50))
    assert e.layers_per_stage == (30, 50)


@pytest.mark.parametrize("kw, match", [
    ({"tp": 9}, "scale-up domain or PCIe"),
    ({"tp": 3}, "divide"),
    ({"ep": 2}, "mixture-of-experts"),
    ({"tp": 4, "pp": 2, "layers_per_stage": (40, 41)}, "summing to 80"),
    ({"weights": "fp4"}, "fp4"),
    ({"weights": "int3"}, "--weights"),
    ({"batch": 0}, "--batch"),
    ({"price": -1.0}, "--price"),
])
def test_invalid_configs_raise_input_error(catalog, kw, match):
    with pytest.raises(InputError, match=match):
        _llama70b(catalog, **kw)


@pytest.mark.parametrize("kw, match", [
    ({"tp": 1, "dp": 8, "ep": 3}, "divide --tp x --dp = 8"),
    ({"tp": 2, "dp": 2, "ep": 8}, "divide --tp x --dp = 4"),
    ({"tp": 1, "dp": 8, "ep": 8, "batch": 12}, "multiple of --dp 8"),
    ({"tp": 1, "dp": 8, "ep": 8, "redundant_experts": 3}, "plus 3 redundant"),
    ({"tp": 8, "dp": 1, "ep": 1, "redundant_experts": 8}, "needs expert parallelism"),
    ({"tp": 1, "dp": 0, "ep": 1}, "--dp"),
])
def test_invalid_dp_ep_configs(catalog, kw, match):
    args = {"batch": 64, "isl": 1000, "osl": 100, "weights": "fp8", "catalog": catalog, **kw}
    with pytest.raises(InputError, match=match):
        api.estimate("deepseek-v3", "h200", **args)


def test_attention_dp_stores_mla_kv_once(catalog):
    """DeepSeek-V3, 8 H200s, 256 sequences: TP8 keeps every sequence's MLA latent on all 8 GPUs, TP1 × DP8 keeps
    each sequence on one GPU, so its KV per GPU is 1/8 and the replica holds 8x the batch."""
    args = {"batch": 256, "isl": 4000, "osl": 500, "weights": "fp8", "kv": "fp8", "catalog": catalog}
    tp8 = api.estimate("deepseek-v3", "h200", tp=8, ep=8, **args)
    dp8 = api.estimate("deepseek-v3", "h200", tp=1, dp=8, ep=8, **args)
    assert dp8.config.gpus == tp8.config.gpus == 8
    # 256 sequences × 4,500 tokens × 61 layers × 576 latent+rope bytes, over 8 groups
    assert dp8.memory["kv_cache"] == pytest.approx(256 * 4500 * 61 * 576 / 8, rel=1e-12)
    assert tp8.memory["kv_cache"] == pytest.approx(8 * dp8.memory["kv_cache"], rel=1e-12)
    assert dp8.max_batch > 5 * tp8.max_batch
    # the same weights per GPU: experts over all 8 either way; attention replicated per group with DP8
    d = dp8.to_dict()
    assert d["inputs"]["dp"] == 8 and d["metrics"]["output_tokens_per_s_per_gpu"] == pytest.approx(
        d["metrics"]["output_tokens_per_s"] / 8, rel=1e-5)


def test_dp_prefill_stall_is_one_chunk_per_group_over_dp(catalog):
    """Chunked prefill with DP groups: a decode step carries one chunk in each of the 8 groups, so one prompt's
    stall is that mixed step's increment / 8, and TPOT = cycle + (B − 1)/OSL · stall (perf/batching.py)."""
    from planner.perf.estimate import prefill_chunk_terms
    e = api.estimate("deepseek-v3", "h200", tp=1, dp=8, ep=8, batch=64, isl=2000, osl=400, weights="fp8", kv="fp8",
                     catalog=catalog)
    m, p = load_model("deepseek-v3"), catalog.perf
    # one chunk: a group's budget of max_batched_tokens minus its 8 decode tokens holds the 2,000-token prompt
    assert p.max_batched_tokens - 8 >= 2000
    ch = prefill_chunk_terms(m, hardware(catalog.gpu("h200"), "fp8", 1, 8), p, tp=1, ep=8, dp=8, weight_bytes=1.0,
                             kv_bytes=1.0, decode_tokens=64, chunk_tokens=8 * 2000, chunk_attended_tokens=1000,
                             chunk_kv_read_tokens=0, logit_tokens=1)
    stall = (61 * ch.layer_s + ch.first_s + ch.last_s) / 8
    assert e.prefill_stall_s == pytest.approx(stall, rel=1e-9)
    assert e.tpot_s == pytest.approx(e.decode_cycle_s + 63 / 400 * stall, rel=1e-9)


def test_redundant_experts_cost_memory_and_even_the_load(catalog):
    args = {"tp": 1, "dp": 8, "ep": 8, "batch": 64, "isl": 2000, "osl": 400, "weights": "fp8", "kv": "fp8",
            "catalog": catalog}
    plain = api.estimate("deepseek-v3", "h200", **args)
    eplb = api.estimate("deepseek-v3", "h200", redundant_experts=32, **args)
    m = load_model("deepseek-v3")
    # 32 more experts over 8 ranks: 4 more per GPU in each of the 58 MoE layers, FP8
    extra = 58 * 4 * m.expert_params
    assert eplb.memory["weights"] - plain.memory["weights"] == pytest.approx(extra, rel=1e-9)
    assert eplb.tpot_s != plain.tpot_s


def test_70b_on_l40s_runs_tp_over_pcie(catalog):
    e = api.estimate("llama-3.1-70b", "l40s", tp=4, batch=8, isl=1000, osl=500, weights="fp8", kv="fp8",
                     catalog=catalog)
    assert e.fits and e.to_dict()["tp_link"] == "pcie"


def test_spec_decode_validation(preset):
    with pytest.raises(InputError, match="spec-alpha"):
        SpecDecode(preset("llama-3.1-8b"), 4, 1.0)
    with pytest.raises(InputError, match="spec-gamma"):
        SpecDecode(preset("llama-3.1-8b"), 0, 0.5)


def test_deepseek_v3_mfu_counts_prefill_attention_materialized_and_decode_absorbed(catalog):
    """MFU's attention term for MLA: the prompt's prefill in the multi-head form engines run (2·128·(128 + 64) +
    2·128·128 = 81,920 FLOP per query·key per layer), decode in the absorbed latent form (2·128·(512 + 64) +
    2·128·512 = 278,528); DeepSeek-V3: 61 layers, 1000-token prompt (causal: 500 keys per query on average),
    200 output tokens attending their mean context 1100; FP8 weights, so the peak is H200's FP8 1978.9 TFLOP/s."""
    e = api.estimate("deepseek-v3", "h200", tp=8, batch=1, isl=1000, osl=200, catalog=catalog)
    matmul = load_model("deepseek-v3").matmul_flops_per_token
    prefill_attention = 61 * 81_920 * 500  # per prompt token: 3.05e9 (absorbed would count 1.04e10)
    decode_attention = 61 * 278_528 * 1100  # per output token
    flops_per_output = matmul + decode_attention + 1000 * (matmul + prefill_attention) / 200
    assert e.mfu == pytest.approx(e.output_tokens_per_s * flops_per_output / (8 * 1978.9e12), rel=1e-9)


def test_hardware_is_kept_per_gpu_object_and_arguments(catalog):
    """hardware() keeps its answer per GPU object and (weights, tp, dp): asked again, the same object; another GPU
    object (even with the same id once the first is gone) or other arguments get their own rates."""
    from planner.perf.estimate import _hardware

    h100 = catalog.gpu("h100-sxm")
    first = hardware(h100, "fp8", 4, 2)
    assert hardware(h100, "fp8", 4, 2) is first and first == _hardware(h100, "fp8", 4, 2)
    assert hardware(h100, "bf16", 4, 2).peak_flops_per_s == h100.peak_flops("bf16") != first.peak_flops_per_s
    faster = replace(h100, hbm_bytes_per_s=2 * h100.hbm_bytes_per_s)
    assert hardware(faster, "fp8", 4, 2).hbm_bytes_per_s == 2 * first.hbm_bytes_per_s
