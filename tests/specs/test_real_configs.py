"""Real config.json files (tests/data/configs/, provenance and published counts in each sidecar .toml): parameter
counts within 2 % of the published figures, layer kinds, native quantization, and hand counts of the parts."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from planner.errors import InputError
from planner.specs.model import LayerKind, model_from_config, model_from_path

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"
NAMES = sorted(p.stem for p in CONFIGS.glob("*.json"))
REQUIRED = {"gemma-2-27b", "llama-4-scout-17b-16e-instruct", "gpt-oss-120b", "deepseek-v3", "qwen3-30b-a3b",
            "kimi-k2-instruct", "mistral-nemo-base-2407", "phi-3-mini-4k-instruct", "qwen2.5-72b-instruct"}


def _sidecar(name: str) -> dict:
    return tomllib.loads((CONFIGS / f"{name}.toml").read_text(encoding="utf-8"))


def _model(name: str):
    return model_from_path(CONFIGS / f"{name}.json")


def test_at_least_twelve_real_configs_with_provenance():
    assert len(NAMES) >= 12 and REQUIRED <= set(NAMES)
    for name in NAMES:
        side = _sidecar(name)
        assert side["source"].startswith("https://huggingface.co/") and side["copied_from"] and side["published"]
        assert side["total_params"] >= side["active_params"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_total_params_within_2_percent_of_published(name):
    assert _model(name).total_params == pytest.approx(_sidecar(name)["total_params"], rel=0.02)


@pytest.mark.parametrize("name", NAMES)
def test_active_params_within_2_percent_of_published(name):
    m, side = _model(name), _sidecar(name)
    # publishers differ on whether the input embedding (a lookup) is "active": the sidecar says which they chose
    active = m.active_params if side["active_counts_input_embedding"] else m.active_params - m.embedding_params
    assert active == pytest.approx(side["active_params"], rel=0.02)


def test_gpt2_counts_exactly_the_hub_figure():
    # h 768, 12 layers, MHA, plain GELU MLP of 4h (n_inner absent), biases everywhere, LayerNorm weight + bias,
    # learned positions 1024 x 768, tied head. Per layer: ln_1, c_attn (w+b), c_proj (w+b), ln_2, c_fc (w+b),
    # c_proj (w+b).
    h = 768
    layer = 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + 2 * h + (h * 4 * h + 4 * h) + (4 * h * h + h)
    assert layer == 7_087_872
    total = 50257 * h + 1024 * h + 12 * layer + 2 * h  # wte, wpe, blocks, ln_f
    assert total == 124_439_808
    m = _model("gpt2")
    assert (m.dense_intermediate_size, m.mlp_gated, m.tie_word_embeddings) == (4 * h, False, True)
    assert m.total_params == total


def test_gpt2_style_config_with_null_n_inner_is_accepted():
    cfg = {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "n_inner": None, "n_positions": 128,
           "vocab_size": 100}
    m = model_from_config(cfg, "tiny-gpt2")
    assert m.dense_intermediate_size == 256 and m.position_embeddings == 128


def test_gpt_oss_120b_by_hand():
    m = _model("gpt-oss-120b")
    h, e, ff = 2880, 128, 2880
    # attention: q 64x64, k/v 8x64, o; q/k/v/o biases; one sink logit per head
    attention = h * 4096 + 2 * h * 512 + 4096 * h + (4096 + 2 * 512 + h) + 64
    expert = 3 * h * ff + (2 * ff + h)  # gate+up and down, with their biases
    router = h * e + e
    layer = attention + 2 * h + e * expert + router
    total = 36 * layer + 2 * 201088 * h + h
    assert m.total_params == total
    assert m.active_params == total - 36 * (e - 4) * expert
    # 18 sliding-window layers of 128 tokens alternate with 18 full-attention layers, every layer MoE
    assert m.layer_kind_counts() == {LayerKind("moe", "sliding", 128): 18, LayerKind("moe", "full", 0): 18}
    assert (m.native_weights, m.native_quant_scope) == ("mxfp4", "experts")  # attention, router, embeddings bf16


def test_llama_4_scout_shared_expert_and_chunked_layers():
    m = _model("llama-4-scout-17b-16e-instruct")
    h, ff = 5120, 8192
    assert (m.num_experts, m.experts_per_token, m.num_shared_experts, m.shared_expert_intermediate_size) == \
        (16, 1, 1, ff)
    # interleave_moe_layer_step 1: every layer MoE; RoPE layers (3 of every 4) attend within 8192-token chunks
    assert m.layer_kind_counts() == {LayerKind("moe", "chunked", 8192): 36, LayerKind("moe", "full", 0): 12}
    assert [k.attention for k in m.layer_kinds[:4]] == ["chunked", "chunked", "chunked", "full"]
    attention = h * 40 * 128 + 2 * h * 8 * 128 + 40 * 128 * h  # qk-norm is a weightless L2 norm
    moe_layer = attention + 2 * h + 17 * 3 * h * ff + h * 16  # 16 routed + 1 shared expert, router
    assert m.total_params == 48 * moe_layer + 2 * 202048 * h + h


def test_llama_4_interleaved_moe_layers_use_the_dense_width_elsewhere():
    cfg = json.loads((CONFIGS / "llama-4-scout-17b-16e-instruct.json").read_text(encoding="utf-8"))
    cfg["text_config"] = {**cfg["text_config"], "interleave_moe_layer_step": 2}  # Maverick's interleaving
    m = model_from_config(cfg, "interleaved")
    assert [k.mlp for k in m.layer_kinds[:4]] == ["dense", "moe", "dense", "moe"]
    assert (m.num_dense_layers, m.dense_intermediate_size) == (24, 16384)
    assert m.shared_params_of(m.layer_kinds[0]) - m.shared_params_of(m.layer_kinds[1]) == \
        3 * 5120 * 16384 - (3 * 5120 * 8192 + 5120 * 16)


def test_deepseek_and_kimi_dense_first_layers_and_fp8():
    ds, kimi = _model("deepseek-v3"), _model("kimi-k2-instruct")
    assert [k.mlp for k in ds.layer_kinds[:4]] == ["dense", "dense", "dense", "moe"]
    assert (kimi.num_dense_layers, kimi.num_experts, kimi.num_shared_experts) == (1, 384, 1)
    assert ds.native_weights == kimi.native_weights == "fp8"
    assert ds.attention_kind == kimi.attention_kind == "mla"
    assert kimi.kv_bytes_per_token(1.0) == 61 * (512 + 64)  # MLA latent + rope key, fp8


def test_sliding_window_patterns():
    g2, g3, phi = _model("gemma-2-27b"), _model("gemma-3-4b-it"), _model("phi-3-mini-4k-instruct")
    assert [k.attention for k in g2.layer_kinds[:4]] == ["sliding", "full", "sliding", "full"]
    assert g2.layer_kind_counts()[LayerKind("dense", "sliding", 4096)] == 23
    # Gemma-3: sliding_window_pattern 6 -> layers 5, 11, 17, 23, 29 global
    assert [i for i, k in enumerate(g3.layer_kinds) if k.attention == "full"] == [5, 11, 17, 23, 29]
    assert set(phi.layer_kinds) == {LayerKind("dense", "sliding", 2047)}  # Phi-3-mini: every layer
    for name in ("qwen2.5-72b-instruct", "qwen3-30b-a3b", "mistral-nemo-base-2407", "llama-3.1-8b"):
        assert {k.attention for k in _model(name).layer_kinds} == {"full"}  # use_sliding_window false / null


def test_gemma_2_27b_by_hand():
    # GeGLU MLP (gate, up, down), four RMSNorms per layer, tied 256000 x 4608 embedding: the count that was 20.6B
    h = 4608
    layer = h * 4096 + 2 * h * 2048 + 4096 * h + 3 * h * 36864 + 4 * h
    assert _model("gemma-2-27b").total_params == 46 * layer + 256000 * h + h


def test_qwen2_qkv_bias_and_qwen3_qk_norm():
    q2, q3 = _model("qwen2.5-72b-instruct"), _model("qwen3-30b-a3b")
    assert q2.attention_bias_params == 64 * 128 + 2 * 8 * 128  # q, k, v biases, none on o
    assert q3.qk_norm and q3.attention_params_per_layer == 2048 * 4096 + 2 * 2048 * 512 + 4096 * 2048 + 2 * 128


@pytest.mark.parametrize("qc, expected", [
    ({"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}, ("fp8", "all")),
    ({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm", "zero_point": True}, ("int4", "all")),
    ({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False}, ("int4", "all")),
    ({"quant_method": "gptq", "bits": 8}, ("int8", "all")),
    ({"quant_method": "mxfp4"}, ("mxfp4", "all")),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4"}, ("fp4", "all")),
    ({"quant_method": "compressed-tensors",
      "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float"}}}}, ("fp8", "all")),
])
def test_native_quantization_methods(qc, expected):
    cfg = json.loads((CONFIGS / "llama-3.1-8b.json").read_text(encoding="utf-8"))
    m = model_from_config({**cfg, "quantization_config": qc}, "q")
    assert (m.native_weights, m.native_quant_scope) == expected
    assert model_from_config(cfg, "plain").native_weights == ""


@pytest.mark.parametrize("change, phrase", [
    ({"quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True}},
     "quantization method 'bitsandbytes'"),
    ({"layer_types": ["linear_attention"] * 32}, "layer type 'linear_attention'"),
    ({"layer_types": [["full_attention"]] * 32}, "layer type \"['full_attention']\""),
    ({"hybrid_override_pattern": "M-M-"}, "state-space (Mamba) layers"),
    ({"is_encoder_decoder": True}, "encoder-decoder"),
    ({"index_topk": 2048}, "DeepSeek sparse attention"),
    ({"quantization_config": {"quant_method": "awq", "bits": 3}}, "3-bit"),
])
def test_unmodelled_architectures_name_what_is_missing(change, phrase):
    cfg = json.loads((CONFIGS / "llama-3.1-8b.json").read_text(encoding="utf-8"))
    with pytest.raises(InputError) as e:
        model_from_config({**cfg, **change}, "x", where="x/config.json")
    msg = str(e.value)
    assert msg.startswith("x/config.json: cannot model") and phrase in msg and "\n" not in msg


def test_cli_refuses_an_unmodelled_architecture_in_one_line(tmp_path):
    from click.testing import CliRunner

    from planner.cli import main
    cfg = json.loads((CONFIGS / "llama-3.1-8b.json").read_text(encoding="utf-8"))
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**cfg, "layer_types": ["linear_attention"] * 32}), encoding="utf-8")
    r = CliRunner().invoke(main, ["estimate", "--model", str(path), "--gpu", "h100", "--batch", "1", "--isl", "10",
                                  "--osl", "10"])
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1 and "cannot model layer type 'linear_attention'" in r.output


def test_native_precision_is_the_default_weight_precision():
    from planner import api
    path = CONFIGS / "gpt-oss-120b.json"
    e = api.estimate(path, "h100", batch=1, isl=1000, osl=1000)
    assert e.config.weights == "mxfp4" and e.fits  # gpt-oss-120b on one 80 GB GPU, as OpenAI ships it
    assert api.estimate(path, "h100", batch=1, isl=1000, osl=1000, weights="fp8").config.weights == "fp8"
    assert api.estimate(CONFIGS / "llama-3.1-8b.json", "h100", batch=1, isl=10, osl=10).config.weights == "bf16"
    req, _ = api.make_request(CONFIGS / "deepseek-v3.json", isl=1000, osl=100, gpus="h200")
    assert req.weights == ("fp8",)  # the FP8 checkpoint, not bf16,fp8,int8
    req, _ = api.make_request(CONFIGS / "mistral-nemo-base-2407.json", isl=1000, osl=100, gpus="h200")
    assert req.weights == ("bf16", "fp8", "int8")


def test_a_plan_at_a_native_precision_matches_the_plan_schema():
    import jsonschema

    from planner import api
    from planner.plan import plan_schema
    from planner.units import WEIGHT_PRECISIONS
    schema = plan_schema()
    assert schema["properties"]["precision"]["properties"]["weights"]["enum"] == list(WEIGHT_PRECISIONS)
    d = api.plan(CONFIGS / "gpt-oss-120b.json", isl=1000, osl=200, gpus="h100", tpot_ms=50, time_limit_s=5).to_dict()
    assert d["precision"]["weights"] == "mxfp4"
    jsonschema.validate(d, schema)
