"""planner/specs/model.py: parameter counts against published figures, attention kinds, KV bytes per token by hand,
loading config.json files and folders, and the dense/MoE layer split of Qwen-MoE and DeepSeek configs."""
from __future__ import annotations

import json

import pytest

from planner.catalog import load_model, model_presets, published_params
from planner.errors import InputError
from planner.specs.model import model_from_config, model_from_path

PRESETS = (
    "deepseek-v3", "gemma-2-27b", "gpt-oss-120b", "gpt3-175b", "gpt4-moe-rumored", "gpt4-moe-rumored-32k",
    "kimi-k2", "llama-2-70b", "llama-3.1-405b", "llama-3.1-70b", "llama-3.1-8b", "llama-3.2-1b", "llama-4-scout",
    "mixtral-8x22b", "mixtral-8x7b", "palm-540b", "qwen3-235b-a22b",
)


def test_every_preset_has_a_published_figure():
    # guards the parametrized tests below against silently running over nothing
    assert tuple(model_presets()) == PRESETS
    pub = published_params()
    for name in PRESETS:
        assert pub[name]["total_params"] > 0 and pub[name]["active_params"] > 0 and pub[name]["source"]


def _tolerance(name: str) -> float:
    return 0.05 if name.startswith("gpt4-moe-rumored") else 0.02


@pytest.mark.parametrize("name", PRESETS)
def test_total_params_match_published(name, preset):
    published = published_params()[name]["total_params"]
    assert preset(name).total_params == pytest.approx(published, rel=_tolerance(name))


@pytest.mark.parametrize("name", PRESETS)
def test_active_params_match_published(name, preset):
    m = preset(name)
    pub = published_params()[name]
    active = m.active_params if pub.get("active_counts_input_embedding", True) else m.active_params - m.embedding_params
    assert active == pytest.approx(pub["active_params"], rel=_tolerance(name))
    if m.is_moe:
        assert m.active_params < 0.5 * m.total_params
    else:
        assert m.active_params == m.total_params


def test_llama_3_1_70b_total_params_exact(preset):
    # Hub safetensors size: 70,553,706,496. By hand (h 8192, 80 layers, 64 q / 8 kv heads of 128, ff 28672,
    # vocab 128256, untied):
    h, ff, v = 8192, 28672, 128256
    attention = h * 64 * 128 + 2 * h * 8 * 128 + 64 * 128 * h
    layer = attention + 3 * h * ff + 2 * h
    assert preset("llama-3.1-70b").total_params == 80 * layer + 2 * v * h + h == 70_553_706_496


def test_palm_540b_total_params_exact(preset):
    # Tied input/output embedding is counted once. h 18432, 118 layers, 48 query heads and one KV head of 256,
    # SwiGLU ff 73728, vocab 256000: 540,358,649,856, the paper's 540.35B (Table 1)
    h, ff, v = 18432, 73728, 256000
    attention = h * 48 * 256 + 2 * h * 1 * 256 + 48 * 256 * h
    layer = attention + 3 * h * ff + 2 * h
    total = 118 * layer + v * h + h
    assert total == 540_358_649_856
    assert preset("palm-540b").total_params == total
    assert total == pytest.approx(540.35e9, rel=1e-4)


@pytest.mark.parametrize("name, kind", [
    ("llama-3.1-70b", "gqa"), ("llama-3.1-8b", "gqa"), ("mixtral-8x7b", "gqa"), ("palm-540b", "mqa"),
    ("gpt4-moe-rumored", "mqa"), ("deepseek-v3", "mla"), ("gpt3-175b", "mha"),
])
def test_attention_kind(name, kind, preset):
    assert preset(name).attention_kind == kind


@pytest.mark.parametrize("name, kv_bytes, expected", [
    # layers × 2 (K and V) × kv heads × head_dim × bytes
    ("llama-3.1-70b", 2.0, 80 * 2 * 8 * 128 * 2),  # = 327,680 B/token
    ("llama-3.1-70b", 1.0, 80 * 2 * 8 * 128 * 1),
    ("llama-3.1-8b", 2.0, 32 * 2 * 8 * 128 * 2),
    ("gpt3-175b", 2.0, 96 * 2 * 96 * 128 * 2),
    ("palm-540b", 2.0, 118 * 2 * 1 * 256 * 2),  # MQA: one K/V head
    # MLA: layers × (kv_lora_rank + qk_rope_head_dim) × bytes
    ("deepseek-v3", 2.0, 61 * (512 + 64) * 2),  # = 70,272 B/token
])
def test_kv_bytes_per_token_by_hand(name, kv_bytes, expected, preset):
    assert preset(name).kv_bytes_per_token(kv_bytes) == expected


def test_kv_bytes_per_token_published_figures(preset):
    assert preset("llama-3.1-70b").kv_bytes_per_token(2.0) == 327_680  # 320 KiB/token, the usual quoted figure
    assert preset("deepseek-v3").kv_bytes_per_token(2.0) == 70_272  # ~68.6 KiB/token


def test_matmul_flops_per_token_is_twice_active_weights_minus_embedding(preset):
    m = preset("llama-3.1-70b")
    # the embedding is a lookup, the final norm is not a matmul: 2 · (70,553,706,496 − 128256·8192 − 8192)
    assert m.matmul_flops_per_token == 2 * (70_553_706_496 - 128256 * 8192 - 8192)


def test_attention_flops_per_token_per_context(preset):
    assert preset("llama-3.1-70b").attention_flops_per_token_per_context == 4 * 64 * 128
    # MLA absorbed: scores over 512 + 64 dims, values over the 512-dim latent, 128 heads, 2 FLOP per MAC
    assert preset("deepseek-v3").attention_flops_per_token_per_context == 2 * 128 * (512 + 64) + 2 * 128 * 512


# ---- dense / MoE layer split -------------------------------------------------------------------------------------
def test_preset_layer_split(preset):
    ds = preset("deepseek-v3")  # first_k_dense_replace = 3
    assert (ds.num_dense_layers, ds.num_moe_layers, ds.dense_intermediate_size) == (3, 58, 18432)
    assert (ds.num_experts, ds.experts_per_token, ds.num_shared_experts) == (256, 8, 1)
    q = preset("qwen3-235b-a22b")  # every layer sparse, no shared expert
    assert (q.num_dense_layers, q.num_moe_layers, q.num_shared_experts) == (0, 94, 0)
    mx = preset("mixtral-8x7b")
    assert (mx.num_dense_layers, mx.num_moe_layers, mx.dense_intermediate_size, mx.expert_intermediate_size) == \
        (0, 32, 0, 14336)
    assert preset("llama-3.1-70b").num_dense_layers == 80 and not preset("llama-3.1-70b").is_moe


QWEN_MOE_TINY = {
    "hidden_size": 64, "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
    "vocab_size": 100, "intermediate_size": 256, "moe_intermediate_size": 32, "num_experts": 8,
    "num_experts_per_tok": 2, "shared_expert_intermediate_size": 48, "decoder_sparse_step": 2,
    "mlp_only_layers": [1], "hidden_act": "silu", "tie_word_embeddings": False,
}


def test_qwen_moe_dense_layers_and_shared_expert():
    m = model_from_config(QWEN_MOE_TINY, "qwen-moe-tiny")
    # Qwen2-MoE rule: layer i is sparse iff i ∉ mlp_only_layers and (i + 1) % decoder_sparse_step == 0
    # -> i = 3, 5 (i = 1 is listed in mlp_only_layers): 2 MoE layers, 4 dense layers of width intermediate_size
    assert (m.num_moe_layers, m.num_dense_layers, m.dense_intermediate_size) == (2, 4, 256)
    assert (m.num_shared_experts, m.shared_expert_intermediate_size, m.expert_intermediate_size) == (1, 48, 32)
    attention = 64 * 64 + 2 * 64 * 32 + 64 * 64  # q (4·16), k and v (2·16), o = 12,288
    norms = 2 * 64
    dense_mlp = 3 * 64 * 256  # 49,152
    expert = 3 * 64 * 32  # 6,144
    shared = 3 * 64 * 48 + 64  # 9,216 and the shared expert's sigmoid gate (64 -> 1)
    router = 64 * 8
    outside = 2 * 100 * 64 + 64  # embedding, untied head, final norm
    total = 6 * (attention + norms) + 4 * dense_mlp + 2 * (8 * expert + shared + router) + outside
    active = 6 * (attention + norms) + 4 * dense_mlp + 2 * (2 * expert + shared + router) + outside
    assert (total, active) == (401_856, 328_128)
    assert m.total_params == pytest.approx(total, rel=1e-12)
    assert m.active_params == pytest.approx(active, rel=1e-12)


DEEPSEEK_TINY = {
    "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
    "vocab_size": 100, "intermediate_size": 256, "moe_intermediate_size": 32, "n_routed_experts": 8,
    "num_experts_per_tok": 2, "n_shared_experts": 1, "first_k_dense_replace": 1, "moe_layer_freq": 1,
    "kv_lora_rank": 16, "q_lora_rank": 24, "qk_rope_head_dim": 8, "qk_nope_head_dim": 16, "v_head_dim": 16,
    "hidden_act": "silu", "tie_word_embeddings": False,
}


def test_deepseek_dense_layers_and_mla():
    m = model_from_config(DEEPSEEK_TINY, "deepseek-tiny")
    # DeepSeek rule: layer i is MoE iff i >= first_k_dense_replace and i % moe_layer_freq == 0 -> 3 MoE, 1 dense
    assert (m.num_moe_layers, m.num_dense_layers, m.dense_intermediate_size) == (3, 1, 256)
    assert m.attention_kind == "mla"
    q = 64 * 24 + 24 + 24 * 4 * (16 + 8)  # q_a, q_a norm, q_b = 3,864
    kv_a = 64 * (16 + 8) + 16  # kv_a_proj_with_mqa (latent + rope key), kv_a norm = 1,552
    kv_b = 16 * 4 * (16 + 16)  # latent -> per-head nope key and value = 2,048
    o = 4 * 16 * 64  # 4,096
    attention = q + kv_a + kv_b + o
    assert attention == 11_560 and m.attention_params_per_layer == attention
    norms, dense_mlp, expert, router = 2 * 64, 3 * 64 * 256, 3 * 64 * 32, 64 * 8
    shared = 1 * expert  # one shared expert of moe_intermediate_size
    outside = 2 * 100 * 64 + 64
    total = 4 * (attention + norms) + 1 * dense_mlp + 3 * (8 * expert + shared + router) + outside
    active = 4 * (attention + norms) + 1 * dense_mlp + 3 * (2 * expert + shared + router) + outside
    assert (total, active) == (276_192, 165_600)
    assert m.total_params == pytest.approx(total, rel=1e-12)
    assert m.active_params == pytest.approx(active, rel=1e-12)
    # KV: 4 layers × (16 + 8) latent + rope elements × 2 B
    assert m.kv_bytes_per_token(2.0) == 4 * 24 * 2


def test_deepseek_moe_layer_freq():
    m = model_from_config({**DEEPSEEK_TINY, "num_hidden_layers": 8, "moe_layer_freq": 2}, "ds-freq")
    # i >= 1 and i even: 2, 4, 6
    assert (m.num_moe_layers, m.num_dense_layers) == (3, 5)


# ---- loading ---------------------------------------------------------------------------------------------------------
def test_config_json_file_and_folder_load(tmp_path, preset):
    from planner.catalog import CATALOG
    cfg = json.loads((CATALOG / "models" / "llama-3.1-8b.json").read_text(encoding="utf-8"))
    folder = tmp_path / "my-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    by_folder = load_model(folder)
    by_file = load_model(str(folder / "config.json"))
    by_spec_path = model_from_path(folder)
    assert by_folder.name == by_file.name == "my-llama"
    assert by_folder == by_file == by_spec_path
    # same architecture as the preset (names differ; ModelSpec equality compares the name too)
    assert by_folder.total_params == preset("llama-3.1-8b").total_params
    other = tmp_path / "custom.json"
    other.write_text(json.dumps(cfg), encoding="utf-8")
    assert load_model(other).name == "custom"


def test_folder_without_config_json(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        load_model(tmp_path)


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{\"hidden_size\": 8,", encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_model(path)
    assert str(path) in str(e.value) and "invalid JSON" in str(e.value)


@pytest.mark.parametrize("field", ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                                   "intermediate_size"])
def test_missing_field_error_names_the_field_and_file(field, dense_1t_path):
    path = dense_1t_path / "config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    del cfg[field]
    path.write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_model(dense_1t_path)
    assert repr(field) in str(e.value)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("field", ["num_experts_per_tok", "qk_rope_head_dim"])
def test_missing_moe_or_mla_field_names_the_field(field):
    cfg = dict(DEEPSEEK_TINY)
    del cfg[field]
    with pytest.raises(InputError, match=repr(field)):
        model_from_config(cfg, "ds", where="ds/config.json")


def test_kv_heads_must_divide_heads():
    with pytest.raises(InputError, match="num_key_value_heads"):
        model_from_config({**QWEN_MOE_TINY, "num_key_value_heads": 3}, "bad")


def test_dense_1t_config_counts_one_trillion(dense_1t_path, dense_1t_params):
    m = load_model(dense_1t_path)
    assert m.total_params == dense_1t_params
    assert 0.99e12 < m.total_params < 1.02e12
    assert m.attention_kind == "gqa" and not m.is_moe
