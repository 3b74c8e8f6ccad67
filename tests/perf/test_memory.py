"""planner/perf/memory.py: weights, KV cache sharding (GQA split to one head per GPU, MQA/MLA replicated), reserve
and activations, by hand."""
from __future__ import annotations

import numpy as np
import pytest

from planner.perf import memory as mem

GiB = 2 ** 30


def test_llama_3_1_70b_bf16_weights_are_141_gb(preset):
    m = preset("llama-3.1-70b")
    for tp in (1, 2, 4, 8):
        per_gpu = mem.stage_weight_bytes_per_gpu(m, 2.0, tp, m.num_layers, True, True)
        assert per_gpu * tp == pytest.approx(141e9, rel=0.005)
        # all weights, every one 16-bit: 2 B × (70,553,706,496 − final norm 8,192)
        assert per_gpu * tp == pytest.approx(2 * (70_553_706_496 - 8192), rel=1e-12)


def test_fp8_keeps_embedding_and_head_in_16_bit(preset):
    m = preset("llama-3.1-70b")
    emb = 128256 * 8192
    fp8 = mem.stage_weight_bytes_per_gpu(m, 1.0, 1, m.num_layers, True, True)
    assert fp8 == pytest.approx((70_553_706_496 - 8192 - 2 * emb) * 1 + 2 * emb * 2, rel=1e-12)


def test_pipeline_stages_split_the_weights(preset):
    m = preset("llama-3.1-70b")
    layer = mem.layer_weight_bytes(m, 2.0)
    emb = 128256 * 8192 * 2
    first = mem.stage_weight_bytes_per_gpu(m, 2.0, 8, 40, True, False)
    last = mem.stage_weight_bytes_per_gpu(m, 2.0, 8, 40, False, True)
    assert first == pytest.approx((40 * layer + emb) / 8)
    assert last == pytest.approx((40 * layer + emb) / 8)  # LM head is the same size as the embedding


def test_tied_embedding_stored_once_on_one_stage_twice_on_two(preset):
    m = preset("palm-540b")  # tie_word_embeddings = true
    emb = 256000 * 18432 * 2
    one = mem.stage_weight_bytes_per_gpu(m, 2.0, 1, 0, True, True)
    assert one == pytest.approx(emb)
    two = mem.stage_weight_bytes_per_gpu(m, 2.0, 1, 0, True, False) + mem.stage_weight_bytes_per_gpu(m, 2.0, 1, 0, False, True)
    assert two == pytest.approx(2 * emb)


def test_gqa_kv_split_down_to_one_head_per_gpu(preset):
    m = preset("llama-3.1-70b")  # 8 KV heads
    full = 2 * 8 * 128 * 2  # K and V, 8 heads × 128, bf16: 4096 B per token per layer
    for tp, heads_per_gpu in ((1, 8), (2, 4), (4, 2), (8, 1), (16, 1), (3, 3)):
        # ceil(8 / tp) heads per GPU; beyond tp = 8 each GPU keeps a replica of one head
        assert mem.kv_bytes_per_token_per_layer_per_gpu(m, 2.0, tp) == pytest.approx(full * heads_per_gpu / 8)
    # 4096 sequences-tokens × 80 layers × 512 B on TP8
    assert mem.kv_cache_bytes_per_gpu(m, 2.0, 8, 80, 2, 2048) == pytest.approx(2 * 2048 * 80 * 512)


def test_mqa_kv_does_not_shrink_with_tp(preset):
    m = preset("gpt4-moe-rumored")  # one KV head: every TP rank holds all of it
    per_token_layer = 2 * 1 * 128 * 2
    values = [float(mem.kv_cache_bytes_per_gpu(m, 2.0, tp, 120, 4, 8192)) for tp in (1, 2, 4, 8)]
    assert values == pytest.approx([4 * 8192 * 120 * per_token_layer] * 4)


def test_mla_latent_replicated_on_every_rank(preset):
    m = preset("deepseek-v3")
    for tp in (1, 8):
        assert mem.kv_bytes_per_token_per_layer_per_gpu(m, 2.0, tp) == pytest.approx((512 + 64) * 2)


def test_kv_fraction_vectorized(preset):
    np.testing.assert_allclose(mem.kv_fraction_per_gpu(preset("llama-3.1-70b"), np.array([1, 2, 8, 16])),
                               [1.0, 0.5, 0.125, 0.125])


def test_reserve_fraction():
    assert mem.reserve_bytes(80 * GiB, 0.10) == pytest.approx(8 * GiB)
    np.testing.assert_allclose(mem.reserve_bytes(np.array([80, 141]) * GiB, 0.05), np.array([4, 7.05]) * GiB)


def test_activations_by_hand(preset):
    m = preset("llama-3.1-70b")
    # per token: 2 B × (4·h + 3·ff/tp) = 2 × (4·8192 + 3·28672/8) = 87,040 B; + fp32 logits 128256/8 × 4 B per seq
    assert mem.activation_bytes_per_gpu(m, 8, 2048, 1) == pytest.approx(2048 * 87_040 + 128256 / 8 * 4)


def test_activations_positive_and_growing_with_tokens(preset):
    for name in ("llama-3.1-70b", "mixtral-8x7b", "deepseek-v3", "gpt3-175b"):
        m = preset(name)
        tokens = np.array([1, 16, 256, 2048, 8192])
        a = mem.activation_bytes_per_gpu(m, 8, tokens, 1)
        assert np.all(a > 0)
        assert np.all(np.diff(a) > 0)
        assert mem.activation_bytes_per_gpu(m, 8, 512, 64) > mem.activation_bytes_per_gpu(m, 8, 512, 1)


# ---- windows, native quantization scope -----------------------------------------------------------------------
def _real(name):
    from pathlib import Path

    from planner.specs.model import model_from_path
    return model_from_path(Path(__file__).resolve().parent.parent / "data" / "configs" / f"{name}.json")


def test_sliding_window_layers_cap_the_kv_cache():
    m = _real("gpt-oss-120b")  # 18 layers of a 128-token window, 18 full; 8 KV heads of 64
    per_token_layer = 2 * 8 * 64 * 2  # K and V, bf16: 2,048 B
    # one 10,000-token sequence: (18·10,000 + 18·128) token-layers × 2,048 B = 373,358,592 B (not 36·10,000·2,048)
    assert mem.kv_bytes_per_sequence(m, 2.0, 10_000) == (18 * 10_000 + 18 * 128) * per_token_layer == 373_358_592
    # per average layer on one GPU of TP8 (one KV head each)
    assert mem.kv_bytes_per_sequence_per_layer_per_gpu(m, 2.0, 8, 10_000) == \
        pytest.approx((18 * 10_000 + 18 * 128) / 36 * per_token_layer / 8)
    assert mem.kv_cache_bytes_per_gpu(m, 2.0, 8, 36, 4, 10_000) == pytest.approx(4 * 373_358_592 / 8)
    g = _real("gemma-2-27b")  # 23 sliding (4096) + 23 full; 16 KV heads of 128: 8,192 B per token-layer
    assert mem.kv_bytes_per_sequence(g, 2.0, 8192) == (23 * 4096 + 23 * 8192) * 8192


def test_experts_only_native_quantization_keeps_attention_in_16_bit():
    m = _real("gpt-oss-120b")
    mx = 0.5 + 1 / 32  # MXFP4: 4-bit values, one 8-bit scale per 32
    shared, experts = m.layer_shared_params, m.layer_expert_params
    assert mem.layer_weight_bytes(m, mx) == pytest.approx(shared * 2.0 + experts * mx)
    # served at another precision, every matrix takes that precision
    assert mem.layer_weight_bytes(m, 1.0) == pytest.approx((shared + experts) * 1.0)
    # whole model at its native precision: 36 layers + 16-bit embedding and head ≈ 65.5 GB (the checkpoint is 65 GB)
    total = mem.stage_weight_bytes_per_gpu(m, mx, 1, 36, True, True)
    assert total == pytest.approx(36 * (shared * 2.0 + experts * mx) + 2 * 201088 * 2880 * 2)
    assert 60e9 < total < 66e9


def test_layer_weights_per_gpu_with_dp_and_ep_by_hand(preset):
    """Mixtral-8x7B, FP8: shared weights over TP, experts over all TP·DP GPUs (+ redundant copies)."""
    m = preset("mixtral-8x7b")
    shared = m.layer_shared_params
    experts = 8 * 3 * 4096 * 14336  # every layer is MoE
    assert mem.layer_weight_bytes_per_gpu(m, 1.0, 2, 4) == pytest.approx(shared / 2 + experts / 8)
    assert mem.layer_weight_bytes_per_gpu(m, 1.0, 8, 1) == pytest.approx((shared + experts) / 8)
    # 8 redundant copies on 8 GPUs: 16 expert slots, one more expert per GPU
    assert mem.layer_weight_bytes_per_gpu(m, 1.0, 1, 8, 8) == pytest.approx(shared + 2 * experts / 8)
    # KV: a replica's sequences split over DP groups
    assert mem.kv_cache_bytes_per_gpu(m, 2.0, 1, 32, 64, 1000, 8) == pytest.approx(8 * 1000 * 32 * 2 * 8 * 128 * 2)
