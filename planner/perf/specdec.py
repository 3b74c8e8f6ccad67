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


def per_token_decode_terms(layer_s, stage_extras_s, hop_s, pp, draft_step_s, acceptance, draft_length):
    """The decode cycle's terms per expected emitted token, for a table that times a cycle as
    pp · (max_s(l_s · layer + extra_s) + hop) (search/table.py): with a draft the cycle is the target's verification
    cycle (its terms already over γ+1 tokens per sequence) plus γ draft passes on the first stage,

        (pp · (max_s(l_s · t + e_s) + hop) + γ · t_draft) / E = pp · (max_s(l_s · t/E + (e_s + γ·t_draft/pp)/E) + hop/E)

    so spreading γ · t_draft / pp onto every stage's extra and dividing every term by E = expected_tokens_per_step
    is exact (the same constant on every stage leaves the slowest stage the slowest). Returns (layer, extras, hop)
    in the units given; `stage_extras_s` is a sequence of per-stage extras (arrays)."""
    g = np.asarray(draft_length, float)
    inv = 1.0 / expected_tokens_per_step(acceptance, draft_length)
    add = g * np.asarray(draft_step_s, float) / np.asarray(pp, float)
    return (np.asarray(layer_s, float) * inv, [(np.asarray(e, float) + add) * inv for e in stage_extras_s],
            np.asarray(hop_s, float) * inv)
