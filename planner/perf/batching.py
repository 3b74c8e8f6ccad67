"""Continuous batching in steady state.

With B sequences in flight, each decode cycle gives every one of them a token, and new requests are admitted as
others finish. Each finished request is replaced by a prefill whose chunks ride on decode steps (chunked prefill,
vLLM's and SGLang's default: one forward pass per step, weights read once). Per cycle B/OSL requests finish (each
lasts OSL cycles), so B·ISL/OSL prompt tokens arrive; the engine packs them, several prompts' chunks per step, into
the token budget the decode tokens leave, and each prompt's stall s (perf.estimate.prefill_stall_s) is its share
of the steps that carry them (perf.estimate.packed_chunk): (B/OSL)·s is then what those packed steps add to the
cycle, at least the prompt tokens' FLOPs at peak, however many prompts share a step.

A request's own prefill comes before its first token (it is TTFT's), so while it decodes it waits only for the
prefills of the B − 1 others:

    TPOT = t_cycle + ((B − 1) / OSL) · s

while the replica as a whole spends t_cycle + (B / OSL) · s per round of B tokens, so its throughput is

    B / (t_cycle + (B / OSL) · s)."""
from __future__ import annotations

import numpy as np


def steady_state_tpot_s(cycle_s, batch, prefill_stall_s, osl):
    """Per-user time per output token: the cycle plus the other B − 1 requests' prefill stalls."""
    others = np.maximum(np.asarray(batch, float) - 1.0, 0.0)
    return np.asarray(cycle_s, float) + others / float(osl) * np.asarray(prefill_stall_s, float)


def replica_time_per_round_s(cycle_s, batch, prefill_stall_s, osl):
    """Time the replica takes to give each of its B sequences one token, every prefill included."""
    return np.asarray(cycle_s, float) + np.asarray(batch, float) / float(osl) * np.asarray(prefill_stall_s, float)


def output_tokens_per_s(batch, round_s):
    """Replica throughput: B tokens per `replica_time_per_round_s`."""
    return np.asarray(batch, float) / np.asarray(round_s, float)
