"""Continuous batching in steady state.

With B sequences in flight, each decode cycle gives every one of them a token, and new requests are admitted as
others finish. Each finished request must be replaced by a prefill, which occupies the bottleneck stage for its
share of the prompt's compute. Per cycle B/OSL requests finish (each lasts OSL cycles), so per output token a user
waits

    TPOT = t_cycle + (B / OSL) · t_prefill_bottleneck

(prefills interleave with decode steps, as under chunked prefill). Throughput per replica is B / TPOT."""
from __future__ import annotations

import numpy as np


def steady_state_tpot_s(cycle_s, batch, prefill_bottleneck_s, osl):
    return np.asarray(cycle_s, float) + np.asarray(batch, float) / float(osl) * np.asarray(prefill_bottleneck_s, float)


def output_tokens_per_s(batch, tpot_s):
    return np.asarray(batch, float) / np.asarray(tpot_s, float)
