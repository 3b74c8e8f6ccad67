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
