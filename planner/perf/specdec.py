"""Speculative decoding: a draft model proposes γ tokens, the target verifies them in one step."""
from __future__ import annotations

import numpy as np


def expected_tokens_per_step(acceptance, draft_length):
    """Expected tokens emitted per verification step when each drafted token is accepted independently with
    probability α and the target always adds one token (Leviathan et al. 2023, eq. 1):

        (1 − α^(γ+1)) / (1 − α)          (→ γ + 1 as α → 1)"""
    a = np.asarray(acceptance, dtype=float)
    g = np.asarray(draft_length, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (1.0 - np.power(a, g + 1.0)) / (1.0 - a)
    return np.where(np.isclose(a, 1.0), g + 1.0, value)


def speculative_tpot_s(draft_step_s, verify_step_s, acceptance, draft_length):
    """Time per output token with speculation: (γ · t_draft + t_verify(γ+1 tokens)) / E[tokens per step]."""
    return (np.asarray(draft_length, float) * draft_step_s + verify_step_s) / expected_tokens_per_step(acceptance, draft_length)


def draft_pass_s(num_layers, layer_s, first_s, last_s, overhead_s=0.0):
    """One pass (a decode step, a prefill, a prefill chunk) of the draft model, which runs whole on the first
    pipeline stage's GPUs (no pipelining): L_draft · t_layer + t_first + t_last (+ the per-step overhead)."""
    return num_layers * layer_s + first_s + last_s + overhead_s
