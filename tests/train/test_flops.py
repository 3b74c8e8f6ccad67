"""FLOPs per token against hand computations (GPT-3 175B shape, Brown et al. 2020 Table 2.1)."""
import pytest

from planner.catalog import load_model
from planner.train.flops import attention_flops_per_token, flops_total, hardware_flops_per_token, \
    model_flops_per_token

H, L, V, S = 12288, 96, 50257, 2048


def _n_matmul():
    # per layer: Q, K, V, O (4h²) + MLP up and down (2·h·4h = 8h²) + two norms (2h) + the linear layers' biases
    # (GPT-3 has them: Q, K, V, O 4h + MLP 4h + h = 9h); plus the LM head V·h
    return L * (12 * H * H + 2 * H + 9 * H) + V * H


def test_gpt3_model_flops_per_token_by_hand():
    m = load_model("gpt3-175b")
    n = _n_matmul()
    assert n == 174_576_709_632
    attention = 12 * L * H * S  # 12·L·(a·d_head)·s, not halved for the causal mask (PaLM appendix B)
    assert model_flops_per_token(m, S) == pytest.approx(6 * n + attention, rel=1e-12)
    assert attention_flops_per_token(m, S) == 4 * L * H * S  # forward only
    # ~1.08e12 FLOPs per token: the 6N rule (1.05e12) plus 2.8 % attention at 2k context
    assert model_flops_per_token(m, S) / (6 * n) == pytest.approx(1 + 2 * S / (n / (L * H)), rel=1e-9)


def test_recomputation_adds_hardware_flops_only():
    m = load_model("gpt3-175b")
    n = _n_matmul()
    model = model_flops_per_token(m, S)
    assert hardware_flops_per_token(m, S, "none") == model
    assert hardware_flops_per_token(m, S, "selective") == pytest.approx(model + 4 * L * H * S)
    # full: a second forward pass, 8N + 16·L·h·s (Narayanan et al. 2021 eq. 3 counts these 4 passes)
    assert hardware_flops_per_token(m, S, "full") == pytest.approx(8 * n + 16 * L * H * S)


def test_moe_counts_active_experts():
    m = load_model("mixtral-8x7b")  # 8 experts, top-2
    dense_equivalent = 3 * m.matmul_flops_per_token
    assert model_flops_per_token(m, 4096) - 3 * attention_flops_per_token(m, 4096) == pytest.approx(dense_equivalent)
    # active (12.9B published) not total (46.7B): 6 x active ~ 7.7e10 per token
    assert 6 * 12e9 < dense_equivalent < 6 * 13.5e9


def test_flops_total():
    m = load_model("gpt3-175b")
    assert flops_total(m, S, 300e9) == pytest.approx(300e9 * model_flops_per_token(m, S))
    # GPT-3's 3.14e23 training FLOPs (Brown et al. 2020, Table D.1) used 6N·D without attention: within 4 %
    assert flops_total(m, S, 300e9) == pytest.approx(3.14e23, rel=0.04)


def test_deepseek_v3_attention_in_the_materialized_form_by_hand():
    """Training runs MLA in its multi-head form, as a prefill does: per query·key per layer QKᵀ over 128 heads ×
    (qk_nope 128 + qk_rope 64) and PV over 128 heads × v_head 128, 2 FLOP per multiply-add = 81,920 (not the
    absorbed form's 2·128·(512 + 64) + 2·128·512 = 278,528). DeepSeek-V3 config.json: 61 layers."""
    m = load_model("deepseek-v3")
    s = 4096
    per_key = 2 * 128 * (128 + 64) + 2 * 128 * 128
    assert per_key == 81_920
    assert attention_flops_per_token(m, s) == 61 * s * per_key  # 2.047e10 forward FLOPs per token at 4k
    assert model_flops_per_token(m, s) == pytest.approx(3 * (m.matmul_flops_per_token + 61 * s * per_key), rel=1e-12)
    assert hardware_flops_per_token(m, s, "selective") - model_flops_per_token(m, s) == 61 * s * per_key
