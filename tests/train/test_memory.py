"""Memory per GPU against the ZeRO paper's figure and Korthikanti et al.'s activation formulas, by hand."""
import numpy as np
import pytest

from planner.catalog import load_model
from planner.train.memory import activation_bytes, activation_bytes_per_token_per_layer, model_state_bytes, \
    params_per_gpu

GB = 1e9


@pytest.mark.parametrize("stage,expected_gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_stages_match_rajbhandari_figure_1(stage, expected_gb):
    # ZeRO paper, Figure 1: 7.5B parameters on 64 data-parallel GPUs, K = 12
    w, g, o = model_state_bytes(7.5e9, 64, stage)
    assert float(w + g + o) / GB == pytest.approx(expected_gb, abs=0.06)


def test_sixteen_bytes_per_parameter_without_zero():
    w, g, o = model_state_bytes(1e9, 8, 0)
    assert (float(w), float(g), float(o)) == (2e9, 2e9, 12e9)


def test_korthikanti_per_layer_formulas_for_gpt3():
    m = load_model("gpt3-175b")  # h 12288, a 96, MLP 4h, GeLU: the paper's GPT-3 case
    h, a, s = 12288, 96, 2048
    assert float(activation_bytes_per_token_per_layer(m, s, "none")) == h * (34 + 5 * a * s / h)
    assert float(activation_bytes_per_token_per_layer(m, s, "selective")) == 34 * h
    assert float(activation_bytes_per_token_per_layer(m, s, "full")) == 2 * h


def test_activation_bytes_first_stage_1f1b():
    m = load_model("gpt3-175b")
    h, s, b, t, p = 12288, 2048, 1, 8, 8
    # selective, sequence parallel: s·b·h·34/t per layer, 96/8 = 12 layers, p = 8 micro-batches in flight
    expected = s * b * h * 34 / t * 12 * 8
    assert float(activation_bytes(m, s, b, t, p, 1, 64, "selective")) == pytest.approx(expected)
    # fewer micro-batches than stages: only m in flight
    assert float(activation_bytes(m, s, b, t, p, 1, 3, "selective")) == pytest.approx(expected * 3 / 8)
    # full: 2sbh/t per layer, plus one layer's full set while it is recomputed
    full = s * b * h * 2 / t * 12 * 8 + s * b * h * (34 + 5 * 96 * s / h) / t
    assert float(activation_bytes(m, s, b, t, p, 1, 64, "full")) == pytest.approx(full)


def test_params_per_gpu_shards_over_tp_pp_and_experts_over_ep():
    m = load_model("mixtral-8x7b")
    dense1, expert1 = params_per_gpu(m, 1, 1, 1)
    assert float(dense1 + expert1) == pytest.approx(m.total_params - min(m.embedding_params, m.lm_head_params)
                                                    - m.hidden_size, rel=1e-9)
    dense, expert = params_per_gpu(m, 2, 4, 8)
    assert float(expert) == pytest.approx(float(expert1) / (2 * 4 * 8))
    assert np.isclose(float(dense), (8 * m.layer_shared_params + m.embedding_params) / 2)


def test_gqa_shrinks_k_and_v_activations():
    m = load_model("llama-3.1-405b")  # h 16384, 128 heads, 8 KV heads, SwiGLU f 53248
    h, f = 16384, 53248
    # Korthikanti's 34h generalized: attention 11h less K and V's 2h·(1 − 8/128) each, norms 4h, MLP 3h + 6f
    expected = 11 * h - 4 * h * (1 - 8 / 128) + 4 * h + 3 * h + 6 * f
    assert float(activation_bytes_per_token_per_layer(m, 8192, "selective")) == pytest.approx(expected)
