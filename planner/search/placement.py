"""A first placement of a row's layers (the search's upper bound, explain's check of the next batch size)."""
from __future__ import annotations

from ..perf.pipeline import balance_layers
from .table import Table


def greedy_placement(t: Table, i: int, phase: str = "dec") -> tuple[int, ...] | None:
    """Memory-capped min-max placement on decode ("dec") or prefill ("pf") time (perf.pipeline.balance_layers, on
    the integer terms)."""
    pp = int(t.pp[i])
    f = t.extras(i, "mem")
    caps = [max(0, (int(t.cap_kib[i]) - fs) // int(t.mem_kib_per_layer[i])) for fs in f]
    e = t.extras(i, phase)
    per_layer, middle = (t.dec_ns_per_layer, t.dec_extra_ns) if phase == "dec" else (t.pf_ns_per_layer, t.pf_extra_ns)
    base = int(middle[i, 1])  # the per-step overhead every stage pays
    first = e[0] - base if pp > 1 else 0
    last = e[-1] - base if pp > 1 else 0
    lay = balance_layers(t.num_layers, pp, float(per_layer[i]), float(first), float(last), caps)
    return None if lay is None else tuple(lay)
