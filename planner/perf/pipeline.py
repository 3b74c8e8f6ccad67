"""Pipeline parallelism: layer placement, decode cycle and prefill latency across stages."""
from __future__ import annotations

import math
from functools import lru_cache
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


def stage_kind_times_s(kind_counts: Sequence[Sequence[int]], layer_s_per_kind: Sequence[float], first_extra_s: float,
                       last_extra_s: float, per_step_s: float) -> np.ndarray:
    """`stage_times_s` for a model of several layer kinds: stage s holds n_{s,k} layers of kind k
    (perf.step.stage_kind_counts, [pp, K]) of t_k each, Σ_k n_{s,k} · t_k (one kind: l_s · t exactly)."""
    layers_s = [sum(n * t for n, t in zip(counts, layer_s_per_kind)) for counts in np.asarray(kind_counts).tolist()]
    return stage_times_s([1] * len(layers_s), np.asarray(layers_s, float), first_extra_s, last_extra_s, per_step_s)


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

    # the values l·t + o_s, l ≤ cap_s, taken once per distinct overhead (middle stages share one) up to the
    # largest cap among its stages: the same set, without a pass over every stage
    most_of: dict[float, int] = {}
    for e, c in zip(extras, caps):
        most_of[e] = max(most_of.get(e, 0), c)
    candidates = sorted({l * layer_s + e for e, c in most_of.items() for l in range(1, c + 1)})
    # stages alike in (overhead, cap) allot alike: whether `fits` places every layer is decided once per kind of
    # stage, times its count (the same floor of the same floats as fits' per-stage loop)
    alike: dict[tuple[float, int], int] = {}
    for e, c in zip(extras, caps):
        alike[(e, c)] = alike.get((e, c), 0) + 1

    def places(limit: float) -> bool:  # fits(limit) is not None
        total = 0
        for (e, c), k in alike.items():
            n = min(c, math.floor((limit - e) / layer_s + 1e-9))
            if n < 1:
                return False
            total += n * k
        return total >= num_layers

    lo, hi = 0, len(candidates) - 1
    if not places(candidates[hi]):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if not places(candidates[mid]):
            lo = mid + 1
        else:
            hi = mid
    return fits(candidates[lo])


def balance_layer_kinds(kind_prefix: np.ndarray, pp: int, layer_s_per_kind: Sequence[float], first_extra_s: float,
                        last_extra_s: float, layer_bytes_per_kind=None, stage_room_bytes=None) -> list[int] | None:
    """`balance_layers` for a model of several layer kinds (perf.step.kind_models): layers per stage minimizing
    the slowest stage max_s(Σ_k n_{s,k}·t_k + o_s), each stage ≥ 1 layer and its layers' bytes Σ_k n_{s,k}·m_k
    within `stage_room_bytes[s]`, where n_{s,k} are the layers of kind k in the stage's consecutive layers
    (kind_prefix[k, b]: layers of kind k among the first b). Several memory conditions: `layer_bytes_per_kind`
    [D][K] and `stage_room_bytes` [D][pp]. None when the layers cannot be placed within memory.

    Exact: for a limit T, stages filled from the last one backwards, each taking as many layers as T and its room
    allow (leaving one for each earlier stage), place every layer iff any placement meets T: a stage's constraints
    only tighten as it gains layers, so by induction the greedy's stage starts are never later than any feasible
    placement's; the stage a greedy stage must hold alone belongs to an earlier stage of that placement, and the
    first stage is never forced so, while the middle stages' extras and fixed memory are the smallest (no
    embedding, no head). T is the smallest of the values a stage can take (Σ over a run of layers + o_s) where the
    greedy places every layer: searched up from the mean stage (`_smallest_passing`), each stage's start bisected
    (`_greedy_stages`)."""
    c = np.asarray(kind_prefix)
    L = c.shape[1] - 1
    if pp > L:
        return None
    time = np.asarray(layer_s_per_kind, float) @ c  # [L + 1] time of the first b layers
    # [D, L + 1] bytes of the first b layers under each memory condition, [D, pp] each stage's room for them
    size = (np.zeros((1, L + 1)) if layer_bytes_per_kind is None
            else np.atleast_2d(np.asarray(layer_bytes_per_kind, float)) @ c)
    room = (np.full((1, pp), math.inf) if stage_room_bytes is None
            else np.atleast_2d(np.asarray(stage_room_bytes, float)))
    extras = [0.0] * pp
    extras[0] += first_extra_s
    extras[-1] += last_extra_s

    fits, monotone = _greedy_stages(time, size, room, extras, pp, L)
    candidates = np.concatenate([_runs(time) + e for e in sorted(set(extras))])
    if monotone:
        # The slowest stage is at least the mean one, (time[L] + Σ_s o_s) / pp (the stages' runs add up to all
        # layers), so the smaller candidates fail (a margin for the float sums), and the answer is most often the
        # first or second one above that mean: an exponential search up from it, then bisection, finds the same
        # smallest passing value as bisecting the whole list in a few tests instead of log2(L² · 3).
        floor = (float(time[L]) + sum(extras)) / pp - 1e-9 * (abs(float(time[L])) + sum(map(abs, extras)))
        above = np.sort(candidates[candidates >= floor])
        if len(above) and above[-1] == candidates.max():
            return _smallest_passing(fits, above)
    candidates = np.unique(candidates)
    lo, hi = 0, len(candidates) - 1
    if fits(float(candidates[hi])) is None:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(float(candidates[mid])) is None:
            lo = mid + 1
        else:
            hi = mid
    return fits(float(candidates[lo]))


@lru_cache(maxsize=64)
def _run_index(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, 1)


def _runs(time: np.ndarray) -> np.ndarray:
    """time[b] − time[a] for every a < b: the time of each run of consecutive layers."""
    return (time[None, :] - time[:, None])[_run_index(len(time))]


def _smallest_passing(fits, values: np.ndarray) -> list[int] | None:
    """fits(v) at the smallest of the sorted `values` where it passes (fits passes at every value above one where
    it does), None when it fails at the largest: probes at 0, 1, 3, 7, … then bisection between the last
    failure and the first pass."""
    n = len(values)
    k, step, failed = 0, 1, -1
    while True:
        got = fits(float(values[k]))
        if got is not None:
            break
        if k == n - 1:
            return None
        failed, k, step = k, min(k + step, n - 1), step * 2
    lo, hi = failed + 1, k  # the smallest passing index lies in [lo, hi]; hi passes (got)
    while lo < hi:
        mid = (lo + hi) // 2
        r = fits(float(values[mid]))
        if r is None:
            lo = mid + 1
        else:
            hi, got = mid, r
    return got


def _greedy_stages(time: np.ndarray, size: np.ndarray, room: np.ndarray, extras: list[float], pp: int, L: int):
    """`balance_layer_kinds`' test of a limit T: the stages filled from the last one backwards, each taking as many
    layers as T and its room allow (leaving one for each earlier stage); their layer counts, or None.

    A stage ending before layer `end` may start at layer a when time[end] − time[a] + o_s ≤ T and, under each
    memory condition, size[end] − size[a] ≤ room_s. With `time` and every row of `size` non-decreasing in a
    (non-negative per-kind terms), each side is non-increasing in a (rounding is monotone), so the starts that
    pass form a range [a*, end − 1]: the earliest start is found by bisection over those very expressions, the
    same answer as stepping back one layer at a time (`_greedy_stages_stepwise`, kept for the prefix sums that
    are not monotone) in O(log L) tests per stage instead of O(L), in Python floats (the same IEEE doubles)."""
    tl = time.tolist()
    sl = size.tolist()
    if bool((time[1:] < time[:-1]).any()) or bool((size[:, 1:] < size[:, :-1]).any()):  # a prefix sum falls
        return _greedy_stages_stepwise(time, size, room, extras, pp, L), False
    rl = room.T.tolist()  # [pp][D]
    if len(sl) == 1:
        return _greedy_fits_one(tl, sl[0], [r[0] for r in rl], extras, pp, L), True
    if len(sl) == 2:
        return _greedy_fits_two(tl, sl[0], sl[1], rl, extras, pp, L), True
    conds = range(len(sl))

    def fits(limit: float) -> list[int] | None:
        counts, end = [], L
        for s in range(pp - 1, -1, -1):
            te, ex, rs = tl[end], extras[s], rl[s]
            se = [row[end] for row in sl]

            def ok(a: int) -> bool:
                return te - tl[a] + ex <= limit and all(se[d] - sl[d][a] <= rs[d] for d in conds)

            if not ok(end - 1):  # at least one layer
                return None
            lo, hi = s, end - 1  # the earliest passing start lies in [lo, hi]; hi passes
            while lo < hi:
                mid = (lo + hi) // 2
                if ok(mid):
                    hi = mid
                else:
                    lo = mid + 1
            if s == 0 and lo > 0:
                return None
            counts.append(end - lo)
            end = lo
        return counts[::-1]

    return fits, True


def _greedy_fits_one(tl: list[float], sl: list[float], rl: list[float], extras: list[float], pp: int, L: int):
    """`_greedy_stages`' test of a limit for one memory condition (sizes `sl`, each stage's room `rl[s]`): the same
    comparisons in the same float expressions, with the stage test written out in the bisection instead of a
    closure and a generator per test (most of a placement's time)."""

    def fits(limit: float) -> list[int] | None:
        counts, end = [], L
        for s in range(pp - 1, -1, -1):
            te, ex, rs, se = tl[end], extras[s], rl[s], sl[end]
            a = end - 1  # at least one layer
            if not (te - tl[a] + ex <= limit and se - sl[a] <= rs):
                return None
            lo, hi = s, a  # the earliest passing start lies in [lo, hi]; hi passes
            while lo < hi:
                mid = (lo + hi) // 2
                if te - tl[mid] + ex <= limit and se - sl[mid] <= rs:
                    hi = mid
                else:
                    lo = mid + 1
            if s == 0 and lo > 0:
                return None
            counts.append(end - lo)
            end = lo
        return counts[::-1]

    return fits


def _greedy_fits_two(tl: list[float], s0: list[float], s1: list[float], rl: list[list[float]], extras: list[float],
                     pp: int, L: int):
    """`_greedy_fits_one` for two memory conditions (sizes `s0`, `s1`; each stage's rooms `rl[s]`), as models of
    several layer kinds have ('mem' and 'long'): the same comparisons, the second condition tested after the
    first as `all` does."""

    def fits(limit: float) -> list[int] | None:
        counts, end = [], L
        for s in range(pp - 1, -1, -1):
            te, ex, (r0, r1), e0, e1 = tl[end], extras[s], rl[s], s0[end], s1[end]
            a = end - 1  # at least one layer
            if not (te - tl[a] + ex <= limit and e0 - s0[a] <= r0 and e1 - s1[a] <= r1):
                return None
            lo, hi = s, a  # the earliest passing start lies in [lo, hi]; hi passes
            while lo < hi:
                mid = (lo + hi) // 2
                if te - tl[mid] + ex <= limit and e0 - s0[mid] <= r0 and e1 - s1[mid] <= r1:
                    hi = mid
                else:
                    lo = mid + 1
            if s == 0 and lo > 0:
                return None
            counts.append(end - lo)
            end = lo
        return counts[::-1]

    return fits


def _greedy_stages_stepwise(time: np.ndarray, size: np.ndarray, room: np.ndarray, extras: list[float], pp: int,
                            L: int):
    """`_greedy_stages` stepping each stage's start back one layer at a time (any prefix sums)."""

    def fits(limit: float) -> list[int] | None:
        counts, end = [], L
        for s in range(pp - 1, -1, -1):
            a = end - 1  # at least one layer; then as many more as the limit and the room allow
            if time[end] - time[a] + extras[s] > limit or (size[:, end] - size[:, a] > room[:, s]).any():
                return None
            while (a > s and time[end] - time[a - 1] + extras[s] <= limit
                   and (size[:, end] - size[:, a - 1] <= room[:, s]).all()):
                a -= 1
            if s == 0 and a > 0:
                return None
            counts.append(end - a)
            end = a
        return counts[::-1]

    return fits
