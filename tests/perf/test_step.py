"""planner/perf/step.py: one layer's decode step composed from rooflines and collectives, by hand."""
from __future__ import annotations

from dataclasses import replace

import pytest

from planner.perf.comm import ring_allreduce_time_s
from planner.perf.estimate import hardware
from planner.perf.step import embedding_step, layer_comm_time_s, layer_step, lm_head_step
from tests.perf.test_moe import binomial_max_by_hand


def test_dense_decode_layer_by_hand(preset, h100, round_params):
    m, p = preset("llama-3.1-70b"), round_params
    hw = hardware(h100, "bf16")
    ctx = 1100
    s = layer_step(m, hw, p, tp=8, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=1, sequences=1,
                   context_from=ctx, context_to=ctx, reads_cache=True)
    hbm = 3.35e12 * 0.8
    # shared weights: (attention 150,994,944 + norms 16,384 + MLP 704,643,072) × 2 B / 8 GPUs, memory bound
    shared_params = 8192 * 64 * 128 * 2 + 2 * 8192 * 8 * 128 + 2 * 8192 + 3 * 8192 * 28672
    assert m.layer_shared_params == shared_params == 855_654_400
    weights_s = shared_params * 2 / 8 / hbm
    # KV: read 1100 cached tokens + write 1, one KV head per GPU: 2 × 128 × 2 B = 512 B per token
    kv_s = (ctx + 1) * 512 / hbm
    # two all-reduces of 8192 × 2 B per layer over 8 GPUs
    ar = 8e-6 + 2 * 7 / 8 * 8192 * 2 / (450e9 * 0.8)
    assert s.comm_s == pytest.approx(2 * ar)
    assert s.time_s == pytest.approx(weights_s + kv_s + 2 * ar, rel=1e-9)
    assert s.compute_bound_s == 0.0 and s.memory_bound_s == pytest.approx(weights_s + kv_s)
    assert s.bytes == pytest.approx(shared_params * 2 / 8 + (ctx + 1) * 512)
    # 2·P FLOP per token over 8 GPUs + attention 4·64·128 FLOP per attended key
    assert s.flops == pytest.approx(2 * shared_params / 8 + 4 * 64 * 128 * ctx / 8)


def test_dense_prefill_layer_is_compute_bound(preset, h100, round_params):
    m, p = preset("llama-3.1-70b"), round_params
    hw = hardware(h100, "bf16")
    s = layer_step(m, hw, p, tp=8, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=4096, sequences=1,
                   context_from=0, context_to=4096, reads_cache=False)
    peak = 989.4e12 * 0.5
    matmul = 2 * 855_654_400 * 4096 / 8 / peak
    attention = 4 * 64 * 128 * 2048 * 4096 / 8 / peak
    ar = 8e-6 + 2 * 7 / 8 * 4096 * 8192 * 2 / (450e9 * 0.8)
    assert s.time_s == pytest.approx(matmul + attention + 2 * ar, rel=1e-9)
    assert s.memory_bound_s == 0.0


def test_moe_decode_expert_bytes_follow_expected_experts(preset, h100, round_params):
    m, p = preset("mixtral-8x7b"), round_params
    hw = hardware(h100, "bf16")
    expert = 3 * 4096 * 14336
    kv_token = 2 * 8 * 128 * 2 / 2  # 8 KV heads over TP2
    for tokens, touched in ((1, 2.0), (4, 8 * (1 - 0.75 ** 4))):
        s = layer_step(m, hw, p, tp=2, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=tokens, sequences=tokens,
                       context_from=100, context_to=100, reads_cache=True)
        expected = (m.layer_shared_params + touched * expert) * 2 / 2 + (tokens * 100 + tokens) * kv_token
        assert s.bytes == pytest.approx(expected, rel=1e-12)


def test_moe_comm_with_expert_parallelism(preset, h100, round_params):
    m, p = preset("mixtral-8x7b"), round_params
    hw = hardware(h100, "bf16")
    msg = 64 * 4096 * 2
    ar8 = float(ring_allreduce_time_s(8, msg, 450e9, 0.8, 8e-6))
    # EP1: attention all-reduce + MoE all-reduce, every layer MoE
    assert layer_comm_time_s(m, hw, p, tp=8, ep=1, tokens=64) == pytest.approx(2 * ar8)
    # EP8: attention all-reduce + dispatch and combine all-to-all of what the busiest rank receives, ρ·k·msg/8
    # per GPU (ρ = E[max(16, max of 8 Binomial(128, 1/8))] / 16); no expert-group all-reduce
    rho = binomial_max_by_hand(64 * 2, 1 / 8, 8, floor=16) / 16
    assert 1.3 < rho < 1.6
    a2a = 8e-6 + 7 / 8 * (rho * msg / 8 * 2) / (450e9 * 0.8)
    assert layer_comm_time_s(m, hw, p, tp=8, ep=8, tokens=64) == pytest.approx(ar8 + 2 * a2a, rel=1e-9)


def test_lm_head_and_embedding_by_hand(preset, h100, round_params):
    m, p = preset("llama-3.1-70b"), round_params
    hw = hardware(h100, "bf16")
    head = lm_head_step(m, hw, p, tp=8, logit_tokens=1)
    assert head.time_s == pytest.approx(128256 * 8192 * 2 / 8 / (3.35e12 * 0.8))
    emb = embedding_step(m, hw, p, tokens=4)
    assert emb.time_s == pytest.approx(4 * 8192 * 2 / (3.35e12 * 0.8))
    emb_loaded = embedding_step(m, hw, replace(p, head_stage_overhead_s=1e-3), tokens=4)
    assert emb_loaded.time_s == pytest.approx(4 * 8192 * 2 / (3.35e12 * 0.8) + 1e-3)


def test_average_layer_sums_each_attention_span_by_hand(h100, round_params):
    """gpt-oss-120b decoding one token at context 4096 on one H100, MXFP4 experts: every group memory bound.
    The average layer is half a full-attention layer and half a 128-token sliding-window layer."""
    from pathlib import Path

    from planner.specs.model import model_from_path
    m = model_from_path(Path(__file__).resolve().parent.parent / "data" / "configs" / "gpt-oss-120b.json")
    p = round_params
    hw = hardware(h100, "mxfp4")
    s = layer_step(m, hw, p, tp=1, ep=1, weight_bytes=0.5 + 1 / 32, kv_bytes=2.0, tokens=1, sequences=1,
                   context_from=4096, context_to=4096, reads_cache=True)
    h = 2880
    shared = (h * 4096 + 2 * h * 512 + 4096 * h + (4096 + 2 * 512 + h) + 64) + 2 * h + (h * 128 + 128)
    expert = 3 * h * 2880 + 2 * 2880 + h
    kv_token = 2 * 8 * 64 * 2
    weights = shared * 2.0 + 4 * expert * (0.5 + 1 / 32)  # attention/router 16-bit; 4 experts touched
    kv = ((4096 + 1) + (128 + 1)) / 2 * kv_token  # KV read + written, averaged over the two kinds of layer
    assert s.bytes == pytest.approx(weights + kv, rel=1e-12)
    assert s.time_s == pytest.approx((weights + kv) / (3.35e12 * 0.8), rel=1e-9)
    assert s.flops == pytest.approx(2 * shared + 2 * 4 * expert + 4 * 64 * 64 * (4096 + 128) / 2)


def test_prefill_chunk_attends_within_each_window_by_hand(h100, round_params):
    """A 512-token chunk at offset 1024 riding on 8 decoders of gpt-oss-120b (TP1): in full layers its queries
    attend 1024 + 256 keys and read the 1024 cached ones; in the 128-token sliding layers they attend 128 keys
    and read the last 128 cached tokens. The chunk's attention is its own group per kind of layer."""
    from pathlib import Path

    from planner.specs.model import model_from_path
    m = model_from_path(Path(__file__).resolve().parent.parent / "data" / "configs" / "gpt-oss-120b.json")
    p = round_params
    hw = hardware(h100, "bf16")
    kw = dict(tp=1, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=8, sequences=8, context_from=1000,
              context_to=1000, reads_cache=True)
    mixed = layer_step(m, hw, p, chunk_tokens=512, chunk_attended_tokens=1024 + 256, chunk_kv_read_tokens=1024, **kw)
    plain = layer_step(m, hw, p, **kw)
    a = 4 * 64 * 64  # attention FLOPs per query per key
    # the weights see 512 more tokens (2 FLOP per weight, 4 experts per token); the chunk's attention adds, per
    # kind of layer (half the layers each), a · keys · 512
    weight_flops = 2 * 512 * (m.layer_shared_params + 4 * m.expert_params)
    chunk_attention = (a * 1280 * 512 + a * 128 * 512) / 2
    assert mixed.flops - plain.flops == pytest.approx(weight_flops + chunk_attention, rel=1e-12)
    # chunk KV traffic: full layers read 1024 cached tokens, sliding ones 128, both write 512 (2,048 B per token)
    shared_bytes = mixed.bytes - plain.bytes - ((1024 + 512) + (128 + 512)) / 2 * 2 * 8 * 64 * 2
    assert shared_bytes == pytest.approx(
        m.expert_params * 2.0 * (128 * (1 - (1 - 4 / 128) ** 520) - 128 * (1 - (1 - 4 / 128) ** 8)), rel=1e-9)


def test_attention_data_parallel_decode_by_hand(preset, catalog, round_params):
    """DeepSeek-V3 on 8 H200s, TP1 × DP8, EP8, 64 sequences, FP8 weights and KV: each GPU runs attention for its
    own 8 sequences over their unreplicated MLA latent, and its 32 experts for the whole step's tokens."""
    m, p = preset("deepseek-v3"), round_params
    h200 = catalog.gpu("h200")
    hw = hardware(h200, "fp8", 1, 8)
    ctx = 4250
    s = layer_step(m, hw, p, tp=1, dp=8, ep=8, weight_bytes=1.0, kv_bytes=1.0, tokens=64, sequences=64,
                   context_from=ctx, context_to=ctx, reads_cache=True)
    rho = binomial_max_by_hand(64 * 8, 1 / 8, 8, floor=64) / 64  # busiest of 8 ranks, 512 assignments
    f = 58 / 61  # MoE layers
    expert = 3 * 7168 * 2048
    touched = 32 * (1 - (1 - 8 / 256) ** (64 * rho))  # the busiest rank's 32 experts
    kv = 512 + 64  # latent + rope key, 1 B each, not replicated (TP1)
    expected_bytes = m.layer_shared_params + f * touched * expert + (8 * ctx + 8) * kv
    assert s.bytes == pytest.approx(expected_bytes, rel=1e-9)
    # FLOPs: shared weights for this group's 8 tokens, experts for the busiest rank's ρ·64 assignments, attention
    # for 8 tokens over 4,250 keys
    expected_flops = (2 * m.layer_shared_params * 8 + f * 2 * expert * rho * 64
                      + m.attention_flops_per_token_per_context * ctx * 8)
    assert s.flops == pytest.approx(expected_flops, rel=1e-9)
    # TP8 × DP1 holds every sequence's latent on every GPU: 8x the KV bytes of TP1 × DP8
    t8 = layer_step(m, hardware(h200, "fp8", 8, 1), p, tp=8, dp=1, ep=8, weight_bytes=1.0, kv_bytes=1.0, tokens=64,
                    sequences=64, context_from=ctx, context_to=ctx, reads_cache=True)
    kv8 = t8.bytes - (m.layer_shared_params / 8 + f * touched * expert)
    assert kv8 == pytest.approx(8 * (8 * ctx + 8) * kv, rel=1e-9)


def test_expert_parallelism_across_nodes_comm_by_hand(preset, h100, round_params):
    """The rumored 1.8T MoE (16 experts, top-2) on four H100 nodes: TP8 × DP4, EP16 (expert-TP 2). Each rank's
    2 GPUs sit in one node: 4 ranks per node, so 12/16 of the all-to-all leaves over the 400 Gbit/s NIC."""
    m, p = preset("gpt4-moe-rumored"), round_params
    hw = hardware(h100, "bf16", 8, 4)
    tokens = 128
    msg = tokens * m.hidden_size * 2
    ar = 8e-6 + 2 * 7 / 8 * (msg / 4) / (450e9 * 0.8)  # attention all-reduce over TP8, one group's 32 tokens
    rho = binomial_max_by_hand(tokens * 2, 1 / 16, 16, floor=16) / 16
    m_a2a = rho * msg * 2 / 16
    a2a = max(8e-6 + 3 / 16 * m_a2a / (450e9 * 0.8), 15e-6 + 12 / 16 * m_a2a / (50e9 * 0.8))
    inner = 8e-6 + 2 * 1 / 2 * msg / (450e9 * 0.8)  # the 2 GPUs sharing an expert reduce the step's outputs
    f = m.moe_layer_fraction
    expected = (1 - f) * 2 * ar + f * (ar + 2 * a2a + inner)
    assert layer_comm_time_s(m, hw, p, tp=8, dp=4, ep=16, tokens=tokens) == pytest.approx(expected, rel=1e-9)


def test_tp_over_pcie_uses_the_measured_pcie_all_reduce(preset, catalog, round_params):
    """L40S has no scale-up fabric: TP4 all-reduces over PCIe at the catalog's measured 14 GB/s bus bandwidth
    (no link efficiency on a measured figure) with its 42 µs latency."""
    m, p = preset("llama-3.1-70b"), round_params
    l40s = catalog.gpu("l40s")
    assert l40s.intra_node_link(4).kind == "pcie" and l40s.intra_node_link(16) is None
    hw = hardware(l40s, "fp8", 4)
    msg = 16 * 8192 * 2
    ar = 42e-6 + 2 * 3 / 4 * msg / 14e9
    assert layer_comm_time_s(m, hw, p, tp=4, ep=1, tokens=16) == pytest.approx(2 * ar, rel=1e-12)
    # H100 PCIe: TP2 over the NVLink bridge (300 GB/s, link efficiency), TP4 over PCIe (40 GB/s measured)
    h100p = catalog.gpu("h100-pcie")
    assert h100p.intra_node_link(2).kind == "scale_up" and h100p.intra_node_link(4).kind == "pcie"
    ar2 = 8e-6 + 2 * 1 / 2 * msg / (300e9 * 0.8)
    assert layer_comm_time_s(m, hardware(h100p, "fp8", 2), p, tp=2, ep=1, tokens=16) == pytest.approx(2 * ar2)


def test_wide_ep_prefill_all_to_all_by_hand(preset, h100, round_params):
    """DeepSeek-V3 on four H100 nodes, TP1 DP32 EP32, FP8 weights, experts evened out (ρ = 1: every expert
    redundant). Dispatch in FP8 (1 B per element), combine in BF16. A prefill sends each token once per other
    node holding one of its 8 experts (3 · (1 − C(192, 8)/C(256, 8)) of 8 copies); a decode step sends every
    copy, 24/32 of them across nodes. No TP all-reduces at TP1, no expert-TP all-reduce at eTP 1."""
    import math
    m, p = preset("deepseek-v3"), round_params
    hw = hardware(h100, "fp8", 1, 32)
    tokens = 32 * 256
    m_a2a = tokens * 7168 * 2 / 32 * 8  # one GPU's 256 tokens × 8 expert copies, 16-bit
    share = 3 * (1 - math.comb(192, 8) / math.comb(256, 8)) / 8

    def a2a(x, out_share):
        return max(8e-6 + 7 / 32 * x / (450e9 * 0.8), 15e-6 + out_share * x / (50e9 * 0.8))

    f = m.moe_layer_fraction
    assert f == pytest.approx(58 / 61)
    kw = dict(tp=1, dp=32, ep=32, tokens=tokens, redundant_experts=256)
    pre = layer_comm_time_s(m, hw, p, weight_bytes=1.0, prefill=True, **kw)
    assert pre == pytest.approx(f * (a2a(m_a2a / 2, share) + a2a(m_a2a, share)), rel=1e-9)
    dec = layer_comm_time_s(m, hw, p, weight_bytes=1.0, **kw)
    assert dec == pytest.approx(f * (a2a(m_a2a / 2, 24 / 32) + a2a(m_a2a, 24 / 32)), rel=1e-9)
    # 16-bit weights: the dispatch is 16-bit too
    bf16 = layer_comm_time_s(m, hardware(h100, "bf16", 1, 32), p, weight_bytes=2.0, **kw)
    assert bf16 == pytest.approx(f * 2 * a2a(m_a2a, 24 / 32), rel=1e-9)
    assert pre < dec < bf16


def test_mla_prefill_attention_is_the_materialized_form(preset, h100, round_params):
    """A DeepSeek-V3 prefill attends with 2·128·(128 + 64) + 2·128·128 = 81,920 FLOP per (query, key) per layer;
    its decode in the absorbed form, 2·128·(512 + 64) + 2·128·512 = 278,528."""
    m, p = preset("deepseek-v3"), round_params
    assert m.prefill_attention_flops_per_token_per_context == 2 * 128 * 192 + 2 * 128 * 128 == 81_920
    assert m.attention_flops_per_token_per_context == 2 * 128 * 576 + 2 * 128 * 512 == 278_528
    llama = preset("llama-3.1-70b")
    assert llama.prefill_attention_flops_per_token_per_context == llama.attention_flops_per_token_per_context
    hw = hardware(h100, "fp8", 8)
    kw = dict(tp=8, ep=8, weight_bytes=1.0, kv_bytes=2.0, tokens=4096, sequences=1, context_from=0,
              context_to=4096, reads_cache=False)
    pre = layer_step(m, hw, p, prefill=True, **kw)
    absorbed = layer_step(m, hw, p, prefill=False, **kw)
    # the attention core's FLOPs differ by (278,528 − 81,920) · 2048 keys · 4096 queries / 8 GPUs (MoE share 58/61
    # of the expert group is the same in both)
    assert absorbed.flops - pre.flops == pytest.approx((278_528 - 81_920) * 2048 * 4096 / 8, rel=1e-9)


def _two_kind_model():
    """A dense first layer, then three MoE layers (DeepSeek-V3's dense-first layout, small): h = 1024, 8 heads of
    128 (MHA), a plain (ungated) MLP of 4096, 4 experts of 1024, top-1."""
    from planner.specs.model import ModelSpec
    return ModelSpec(name="two-kind", num_layers=4, hidden_size=1024, vocab_size=1000, num_heads=8, num_kv_heads=8,
                     head_dim=128, max_context=8192, mlp_gated=False, dense_intermediate_size=4096,
                     num_dense_layers=1, num_experts=4, experts_per_token=1, expert_intermediate_size=1024)


def test_one_layer_of_each_kind_by_hand(h100, round_params):
    """kind_models: one decode step of one sequence at context 1000 on one GPU, memory bound (no collectives on one
    GPU). Dense layer: attention 4·1024² + norms 2·1024 + MLP 2·1024·4096 weights, 2 B each; MoE layer: the same
    attention and norms, the router 1024·4, and the one expert the token is routed to, 2·1024·1024; both read
    1000 cached tokens and write one, 2·8·128 elements of 2 B each."""
    from planner.perf.step import kind_models
    m, p = _two_kind_model(), round_params
    hw = hardware(h100, "bf16")
    hbm = 3.35e12 * 0.8
    kv_s = 1001 * 2 * 8 * 128 * 2 / hbm
    attention = 4 * 1024 * 1024 + 2 * 1024
    dense_s = (attention + 2 * 1024 * 4096) * 2 / hbm + kv_s
    moe_s = (attention + 1024 * 4 + 2 * 1024 * 1024) * 2 / hbm + kv_s
    kinds = kind_models(m)
    assert [(k.mlp, n) for k, n, _ in kinds] == [("dense", 1), ("moe", 3)]
    kw = dict(tp=1, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=1, sequences=1, context_from=1000, context_to=1000,
              reads_cache=True)
    got = [float(layer_step(km, hw, p, **kw).time_s) for _, _, km in kinds]
    assert got == [pytest.approx(dense_s, rel=1e-12), pytest.approx(moe_s, rel=1e-12)]
    # the average layer is their mix: (1 · dense + 3 · MoE) / 4
    assert float(layer_step(m, hw, p, **kw).time_s) == pytest.approx((dense_s + 3 * moe_s) / 4, rel=1e-12)


@pytest.mark.parametrize("name", ["deepseek-v3", "kimi-k2", "gpt-oss-120b", "gemma-2-27b", "llama-4-scout"])
@pytest.mark.parametrize("phase", ["decode", "prefill", "chunk"])
def test_kinds_sum_to_the_average_layer(preset, catalog, name, phase):
    """Σ_k n_k · t_k = L · layer_step(model) within float rounding, for decode (a long context, so the sliding and
    chunked windows bind), a prefill and a mixed step with a prefill chunk, with EP and DP."""
    from planner.perf.step import kind_models
    m, p = preset(name), catalog.perf
    hw = hardware(catalog.gpu("h200"), "fp8", 2, 4)
    kw = dict(tp=2, dp=4, ep=8 if m.is_moe else 1, weight_bytes=1.0, kv_bytes=1.0)
    kw.update({"decode": dict(tokens=256, sequences=256, context_from=20_000, context_to=24_000, reads_cache=True),
               "prefill": dict(tokens=4 * 16_000, sequences=4, context_from=0, context_to=16_000, reads_cache=False,
                               prefill=True),
               "chunk": dict(tokens=256, sequences=0, context_from=0, context_to=0, reads_cache=False,
                             chunk_tokens=4 * 2048, chunk_attended_tokens=9000, chunk_kv_read_tokens=8000)}[phase])
    kinds = kind_models(m)
    assert len(kinds) == 2
    parts = [layer_step(km, hw, p, **kw) for _, _, km in kinds]
    assert parts[0].time_s != pytest.approx(parts[1].time_s, rel=1e-3)  # the kinds differ here
    total = sum(n * float(s.time_s) for (_, n, _), s in zip(kinds, parts))
    assert total == pytest.approx(m.num_layers * float(layer_step(m, hw, p, **kw).time_s), rel=1e-12)


def test_stage_kind_counts_follow_the_layer_order(preset):
    from planner.perf.step import kind_prefix_counts, stage_kind_counts
    m = preset("deepseek-v3")  # 3 dense layers, then 58 MoE
    assert stage_kind_counts(m, [2, 20, 39]).tolist() == [[2, 0], [1, 19], [0, 39]]
    c = kind_prefix_counts(m)
    assert c.shape == (2, 62) and c[:, 3].tolist() == [3, 0] and c[:, -1].tolist() == [3, 58]


def test_placement_names_each_stages_layer_kinds(preset):
    from planner.perf.step import placement_dict
    assert placement_dict(preset("deepseek-v3"), [31, 30]) == {
        "layers_per_stage": [31, 30], "layer_kinds_per_stage": [{"dense": 3, "moe": 28}, {"moe": 30}]}
    gpt_oss = placement_dict(preset("gpt-oss-120b"), [3, 33])["layer_kinds_per_stage"]
    assert gpt_oss[0] == {"moe/sliding-128": 2, "moe": 1} and sum(gpt_oss[1].values()) == 33
    assert placement_dict(preset("llama-3.1-70b"), [40, 40]) == {"layers_per_stage": [40, 40]}  # one kind


@pytest.mark.parametrize("name, tbo", [("llama-3.1-70b", False), ("deepseek-v3", False), ("deepseek-v3", True),
                                       ("gpt-oss-120b", False)])
def test_time_only_steps_are_the_full_steps_times_bit_for_bit(preset, catalog, name, tbo):
    """layer_step(time_only=True) (and the embedding and LM head steps) keep time_s alone: the same floats as the
    full step's time_s, decode, prefill and mixed (a chunk riding on the decode batch), scalar and arrays, with
    and without two-batch overlap; the other fields are not kept."""
    import numpy as np

    m = preset(name)
    gpu = catalog.gpu("h200")
    p = replace(catalog.perf.for_gpu("h200", gpu.family), two_batch_overlap=tbo)
    hw = hardware(gpu, "fp8", 2, 4)
    ep = np.array([1, 2, 4, 8]) if m.is_moe else 1
    for tokens, chunk in ((3.0, 0.0), (np.array([1.0, 37.0, 512.0, 4000.0]), 0.0),
                          (np.array([8.0, 64.0, 300.0, 1000.0]), np.array([512.0, 100.0, 2048.0, 7.0]))):
        for prefill in (False, True):
            kw = dict(tp=2, ep=ep, dp=4, weight_bytes=1.0, kv_bytes=1.0, tokens=tokens, sequences=tokens,
                      context_from=0.0 if prefill else 1000.0, context_to=2000.0, reads_cache=not prefill,
                      chunk_tokens=chunk, chunk_attended_tokens=np.asarray(chunk) / 2.0 + 100.0,
                      chunk_kv_read_tokens=200.0, prefill=prefill)
            full, fast = layer_step(m, hw, p, **kw), layer_step(m, hw, p, time_only=True, **kw)
            assert np.array_equal(np.asarray(full.time_s), np.asarray(fast.time_s))
            assert fast.compute_bound_s is None and fast.flops is None and fast.bytes is None
    for t in (5.0, np.array([1.0, 77.0, 4096.0])):
        assert np.array_equal(embedding_step(m, hw, p, tokens=t).time_s,
                              embedding_step(m, hw, p, tokens=t, time_only=True).time_s)
        assert np.array_equal(lm_head_step(m, hw, p, tp=2, logit_tokens=t).time_s,
                              lm_head_step(m, hw, p, tp=2, logit_tokens=t, time_only=True).time_s)
