"""planner/perf/specdec.py: expected tokens per verification step (1 − α^(γ+1)) / (1 − α) and the TPOT it gives."""
from __future__ import annotations

import numpy as np
import pytest

from planner.perf.specdec import expected_tokens_per_step, speculative_tpot_s


@pytest.mark.parametrize("alpha, gamma, expected", [
    (0.8, 4, (1 - 0.8 ** 5) / 0.2),  # = 3.3616
    (0.5, 1, 1.5),  # 1 + α
    (0.5, 3, 1 + 0.5 + 0.25 + 0.125),  # geometric series 1 + α + … + α^γ
    (0.7, 4, 1 + 0.7 + 0.49 + 0.343 + 0.2401),
])
def test_by_hand(alpha, gamma, expected):
    assert expected_tokens_per_step(alpha, gamma) == pytest.approx(expected, rel=1e-12)


def test_known_value():
    assert expected_tokens_per_step(0.8, 4) == pytest.approx(3.3616)


def test_limits():
    assert expected_tokens_per_step(0.0, 4) == pytest.approx(1.0)  # nothing accepted: the target's own token
    assert expected_tokens_per_step(1.0, 4) == 5.0  # α = 1: all γ drafts plus one
    assert expected_tokens_per_step(1.0 - 1e-9, 4) == pytest.approx(5.0, rel=1e-6)
    np.testing.assert_allclose(expected_tokens_per_step(np.array([0.0, 0.5, 1.0]), 2), [1.0, 1.75, 3.0])


def test_monotone_in_alpha_and_gamma():
    a = np.linspace(0, 0.99, 100)
    assert np.all(np.diff(expected_tokens_per_step(a, 4)) > 0)
    assert np.all(np.diff(expected_tokens_per_step(0.6, np.arange(1, 17))) > 0)


def test_speculative_tpot_by_hand():
    # (γ · t_draft + t_verify) / E[tokens] = (4 · 1 ms + 10 ms) / 3.3616
    assert speculative_tpot_s(1e-3, 10e-3, 0.8, 4) == pytest.approx(14e-3 / 3.3616)


def test_draft_pass_runs_every_draft_layer_unpipelined():
    from planner.perf.specdec import draft_pass_s

    # 32 layers of 0.5 ms, 0.2 ms embedding, 1.0 ms LM head, 0.3 ms step overhead: 16 + 0.2 + 1.0 + 0.3 = 17.5 ms
    assert draft_pass_s(32, 0.5e-3, 0.2e-3, 1.0e-3, 0.3e-3) == pytest.approx(17.5e-3)
    assert draft_pass_s(32, 0.5e-3, 0.2e-3, 1.0e-3) == pytest.approx(17.2e-3)


def test_speculative_speedup_and_cost_by_hand(preset, h100, round_params):
    """Llama-3.1-70B on 8 H100 at batch 1 with Llama-3.1-8B drafting γ = 3 tokens accepted at α = 0.8, every term
    by hand (round_params: HBM at 80 %, 2 ms per step; weight streaming dominates each kernel group)."""
    from planner.perf.estimate import Config, SpecDecode, estimate
    from planner.specs.workload import Workload

    hbm, ctx = 3.35e12 * 0.8, 1000 + 200 / 2

    def allreduce(tokens, hidden):  # two per layer over NVLink: 8 µs + 1.75 · message / 360 GB/s
        return 2 * (8e-6 + 1.75 * tokens * hidden * 2 / 360e9)

    # the target verifies 4 tokens per step: same weights, KV read of its context plus 4 writes (512 B/token/GPU)
    shared_70b = 855_654_400
    verify_layer = (shared_70b * 2 / 8 + (ctx + 4) * 512) / hbm + allreduce(4, 8192)
    verify = 80 * verify_layer + 4 * 8192 * 2 / hbm + 128256 * 8192 * 2 / 8 / hbm + 0.002
    # the 8B draft, whole on the same 8 GPUs, one token: attention 2·4096² + 2·4096·1024, MLP 3·4096·14336, norms
    shared_8b = 2 * 4096**2 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    assert 32 * shared_8b + 2 * 128256 * 4096 + 4096 == 8_030_261_248  # its published parameter count
    draft_layer = (shared_8b * 2 / 8 + (ctx + 1) * 512) / hbm + allreduce(1, 4096)
    draft = 32 * draft_layer + 4096 * 2 / hbm + 128256 * 4096 * 2 / 8 / hbm + 0.002
    tokens = 1 + 0.8 + 0.8**2 + 0.8**3  # E = (1 − α^(γ+1)) / (1 − α) = 2.952
    tpot = (verify + 3 * draft) / tokens

    w = Workload(isl=1000, osl=200)
    spec = estimate(preset("llama-3.1-70b"), Config(gpu=h100, tp=8, batch=1,
                                                    spec=SpecDecode(preset("llama-3.1-8b"), 3, 0.8)), w, round_params)
    plain = estimate(preset("llama-3.1-70b"), Config(gpu=h100, tp=8, batch=1), w, round_params)
    assert spec.decode_cycle_s == pytest.approx(verify + 3 * draft, rel=1e-9)
    assert spec.tpot_s == pytest.approx(tpot, rel=1e-9)  # batch 1: no other prompt stalls it
    plain_tpot = 80 * ((shared_70b * 2 / 8 + (ctx + 1) * 512) / hbm + allreduce(1, 8192)) \
        + 8192 * 2 / hbm + 128256 * 8192 * 2 / 8 / hbm + 0.002
    assert plain.tpot_s == pytest.approx(plain_tpot, rel=1e-9)
    assert plain.tpot_s / spec.tpot_s == pytest.approx(plain_tpot / tpot, rel=1e-9)
    assert plain_tpot == pytest.approx(9.793e-3, rel=1e-3) and tpot == pytest.approx(6.604e-3, rel=1e-3)  # 1.48x
    # cost at capacity: 8 GPUs' $/h over the replica's tokens, each prompt's prefill stall included
    per_token = tpot + spec.prefill_stall_s / 200
    assert spec.usd_per_million_output_tokens == pytest.approx(8 * h100.usd_per_hour / 3600 * per_token * 1e6,
                                                               rel=1e-9)
