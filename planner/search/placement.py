"""A first placement of a row's layers (the search's upper bound, explain's check of the next batch size)."""
from __future__ import annotations

from ..perf.pipeline import balance_layer_kinds, balance_layers
from .table import Table


def greedy_placement(t: Table, i: int, phase: str = "dec", memo: dict | None = None) -> tuple[int, ...] | None:
    """Memory-capped min-max placement on decode ("dec") or prefill ("pf") time (perf.pipeline.balance_layers, on
    the integer terms; with several layer kinds perf.pipeline.balance_layer_kinds on the per-kind terms).
    `memo`: a dict kept across calls on the same table; rows whose placement problem is the same (PP, per-kind
    times, extras, per-kind memory and rooms: the whole input of the balance) share one answer."""
    pp = int(t.pp[i])
    f = t.extras(i, "mem")
    e = t.extras(i, phase)
    per_kind, middle = (t.dec_ns_per_kind, t.dec_extra_ns) if phase == "dec" else (t.pf_ns_per_kind, t.pf_extra_ns)
    base = int(middle[i, 1])  # the per-step overhead every stage pays
    first = e[0] - base if pp > 1 else 0
    last = e[-1] - base if pp > 1 else 0
    if per_kind.shape[1] > 1:
        room = [int(t.cap_kib[i]) - fs for fs in f]
        times, mems = per_kind[i].tolist(), [m[i].tolist() for _, m in t.memory_per_kind]
        key = None if memo is None else (pp, tuple(times), first, last, tuple(map(tuple, mems)), tuple(room))
        if key is not None and key in memo:
            return memo[key]
        lay = balance_layer_kinds(t.kind_prefix, pp, times, float(first), float(last), mems,
                                  [room] * len(t.memory_per_kind))
        out = None if lay is None else tuple(lay)
        if key is not None:
            memo[key] = out
        return out
    caps = [max(0, (int(t.cap_kib[i]) - fs) // int(t.mem_kib_per_kind[i, 0])) for fs in f]
    lay = balance_layers(t.num_layers, pp, float(per_kind[i, 0]), float(first), float(last), caps)
    return None if lay is None else tuple(lay)
