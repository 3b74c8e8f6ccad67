"""Mixture-of-experts routing statistics under uniform top-k routing."""
from __future__ import annotations

import numpy as np


def expected_experts_touched(num_experts, experts_per_token, tokens):
    """Expected distinct experts hit in one step by `tokens` tokens, each routed to k of E experts:

        E · (1 − (1 − k/E)^T)

    (each expert is missed by one token with probability 1 − k/E, independently per token).
    Returns 0 for a dense model (E = 0)."""
    e = np.asarray(num_experts, dtype=float)
    k = np.asarray(experts_per_token, dtype=float)
    t = np.asarray(tokens, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        touched = e * (1.0 - np.power(1.0 - np.where(e > 0, k / np.where(e > 0, e, 1.0), 0.0), t))
    return np.where(e > 0, touched, 0.0)


def tokens_per_touched_expert(num_experts, experts_per_token, tokens):
    """Mean batch each touched expert processes: T·k / E[touched]. At small T this is ~1: every touched expert
    streams its whole weight matrix for about one token, which is why small-batch MoE decode is memory bound."""
    touched = expected_experts_touched(num_experts, experts_per_token, tokens)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(touched > 0, np.asarray(tokens, float) * experts_per_token / np.where(touched > 0, touched, 1), 0.0)
