"""Pipeline parallelism: layer placement, decode cycle and prefill latency across stages."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def stage_times_s(layers_per_stage: Sequence[int], layer_s: float, first_extra_s: float, last_extra_s: float,
                  per_step_s: float) -> np.ndarray:
    """Time of one micro-batch step on each stage: l_s · t_layer + (embedding on the first stage, LM head on the
    last) + the fixed per-step overhead."""
    t = np.asarray(layers_per_stage, float) * layer_s + per_step_s
    t[0] += first_extra_s
    t[-1] += last_extra_s
    return t


def decode_cycle_s(stage_s: np.ndarray, p2p_s: float, micro_batches: int) -> float:
    """Time for every in-flight sequence to gain one token. With m micro-batches circulating over P stages,

        cycle = max(m · max_s(t_s + p2p), Σ_s (t_s + p2p))

    A token crosses every stage (the sum); throughput is set by the slowest stage (the max), which also serves the
    other m − 1 micro-batches in each cycle. With one stage there is no send/recv."""
    t = np.asarray(stage_s, float)  # stages along axis 0; further axes: candidates (then an array comes back)
    hop = np.asarray(p2p_s, float) if t.shape[0] > 1 else 0.0
    out = np.maximum(micro_batches * np.max(t + hop, axis=0), np.sum(t + hop, axis=0))
    return float(out) if np.ndim(out) == 0 else out


def chunk_stall_s(stage_s: np.ndarray, chunk_stage_s: np.ndarray, p2p_s: float, chunk_p2p_s: float,
                  micro_batches: int) -> float:
    """How much longer a decode cycle gets when one micro-batch also carries a prefill chunk that adds
    `chunk_stage_s[s]` to its step on stage s (and `chunk_p2p_s` to each hop):

        stall = max(max_s(m·(t_s + p2p) + Δ_s + Δp2p), Σ_s (t_s + Δ_s + p2p + Δp2p)) − cycle

    (decode_cycle_s with the chunk's work added once per stage: once on the busiest stage, and once on every
    stage of the chunk's own path)."""
    t = np.asarray(stage_s, float)
    d = np.asarray(chunk_stage_s, float)
    if len(t) == 1:
        return float(d[0])
    hop, dhop = p2p_s, chunk_p2p_s
    busy = float(np.max(micro_batches * (t + hop) + d + dhop))
    path = float(np.sum(t + d + hop + dhop))
    return max(busy, path) - decode_cycle_s(t, p2p_s, micro_batches)


def prefill_latency_s(stage_s: np.ndarray, p2p_s: float) -> float:
    """A prompt crosses every stage once: Σ_s t_s + (P − 1) · p2p."""
    return float(np.sum(stage_s) + (len(stage_s) - 1) * p2p_s)


def balance_layers(num_layers: int, pp: int, layer_s: float, first_extra_s: float, last_extra_s: float,
                   max_layers: Sequence[int] | None = None) -> list[int] | None:
    """Layers per stage minimizing the slowest stage max_s(l_s·t + o_s), each stage ≥ 1 layer and ≤ its memory
    bound `max_layers[s]`. Exact: the smallest T with Σ_s min(cap_s, ⌊(T − o_s)/t⌋) ≥ L is found by scanning the
    candidate values T = l·t + o_s; layers are then handed out up to those caps, first stage last (it carries the
    input-side overhead). None when the layers cannot be placed within memory."""
    if pp > num_layers:
        return None
    # no stage can hold more than L − (P − 1) layers (the others hold at least one each); capping here also keeps
    # the candidate scan below O(P·L) when memory would allow millions of (tiny) layers per stage
    most = num_layers - pp + 1
    caps = [min(int(c), most) for c in max_layers] if max_layers is not None else [most] * pp
    if any(c < 1 for c in caps) or sum(caps) < num_layers:
        return None
    extras = [0.0] * pp
    extras[0] += first_extra_s
    extras[-1] += last_extra_s
    if layer_s <= 0:
        counts = [1] * pp
        left = num_layers - pp
        for s in range(pp - 1, -1, -1):
            add = min(left, caps[s] - 1)
            counts[s] += add
            left -= add
        return counts

    def fits(limit: float) -> list[int] | None:
        alloc = []
        for s in range(pp):
            n = math.floor((limit - extras[s]) / layer_s + 1e-9)
            alloc.append(min(caps[s], n))
        if min(alloc) < 1 or sum(alloc) < num_layers:
            return None
        # trim the surplus from the first stage first, then from the front
        surplus = sum(alloc) - num_layers
        for s in range(pp):
            cut = min(surplus, alloc[s] - 1)
            alloc[s] -= cut
            surplus -= cut
        return alloc

    candidates = sorted({l * layer_s + extras[s] for s in range(pp) for l in range(1, caps[s] + 1)})
    lo, hi = 0, len(candidates) - 1
    if fits(candidates[hi]) is None:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(candidates[mid]) is None:
            lo = mid + 1
        else:
            hi = mid
    return fits(candidates[lo])
