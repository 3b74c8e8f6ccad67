"""planner/search/placement.py: the greedy first placement of a row's layers (min-max stage time under each stage's
memory cap, on the integer table's terms), checked against placements worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from planner.search.placement import greedy_placement
from planner.search.table import Table


def _row(layers: int, pp: int, *, dec_ns: int = 10, dec_extra=(55, 5, 35), pf_ns: int = 10, pf_extra=(5, 5, 5),
         mem_kib: int = 100, fixed_kib=(0, 0, 0), cap_kib: int = 10**9) -> Table:
    """A one-row table: per-layer times and memory, per-stage extras as (first, middle, last) — or the single
    stage's, the first entry, when pp = 1 — and a device capacity. Terms the placement does not read are 0."""
    one = lambda v: np.array([v], np.int64)  # noqa: E731
    three = lambda v: np.array([v], np.int64).reshape(1, 3)  # noqa: E731
    zero3 = three((0, 0, 0))
    col = lambda v: np.array([[v]], np.int64)  # noqa: E731  (one layer kind)
    return Table(rows=[None], num_layers=layers, osl=1, kind_prefix=np.arange(layers + 1).reshape(1, -1),
                 dec_ns_per_kind=col(dec_ns), dec_extra_ns=three(dec_extra), dec_extra_single_ns=one(dec_extra[0]),
                 dec_hop_ns=one(0), pf_ns_per_kind=col(pf_ns), pf_extra_ns=three(pf_extra),
                 pf_extra_single_ns=one(pf_extra[0]), pf_hop_ns=one(0), ttft_ns=one(0),
                 chunk_ns_per_kind=col(0), chunk_extra_ns=zero3, chunk_extra_single_ns=one(0), chunk_hop_ns=one(0),
                 stall_coef=one(0), mem_kib_per_kind=col(mem_kib), fixed_mem_kib=three(fixed_kib),
                 fixed_mem_single_kib=one(fixed_kib[0]), cap_kib=one(cap_kib), price_1e4_usd_per_h=one(1),
                 batch=one(1), pp=one(pp), gpus=one(pp), gpu_limit=one(-1))


def test_balanced_decode_stages_absorb_the_first_and_last_stage_overheads():
    # extras over the per-step overhead (5 ns every stage pays): first stage +50 ns, last +30 ns, per layer 10 ns.
    # Slowest stage T: Σ_s ⌊(T − o_s)/10⌋ ≥ 32 with o = (50, 0, 0, 30) first holds at T = 100 (5 + 10 + 10 + 7);
    # at T = 90 it is 4 + 9 + 9 + 6 = 28. Every stage then takes exactly 100 ns.
    assert greedy_placement(_row(32, 4), 0) == (5, 10, 10, 7)


def test_a_stage_memory_cap_moves_layers_to_the_others_and_the_surplus_leaves_the_first_stage():
    # capacity 2000 KiB, 100 KiB per layer: the last stage's 1500 KiB of fixed memory leaves room for 5 layers,
    # the first's 1000 KiB for 10. At T = 100 the stages take 5 + 10 + 10 + 5 = 30 < 32; at T = 110,
    # 6 + 11 + 11 + 5 = 33, and the one surplus layer comes off the first stage.
    lay = greedy_placement(_row(32, 4, fixed_kib=(1000, 0, 1500), cap_kib=2000), 0)
    assert lay == (5, 11, 11, 5)
    assert max(n * 10 + o for n, o in zip(lay, (50, 0, 0, 30))) == 110


def test_prefill_placement_uses_the_prefill_terms():
    # prefill: per layer 10 ns, last stage +300 ns over the 5 ns every stage pays, so the last stage holds one
    # layer and T = 310; each other stage may hold up to L − (pp − 1) = 29, 88 in all, and the 56 surplus layers
    # come off the front: (1, 1, 29, 1).
    t = _row(32, 4, pf_extra=(5, 5, 305))
    assert greedy_placement(t, 0, "pf") == (1, 1, 29, 1)
    assert greedy_placement(t, 0, "dec") == (5, 10, 10, 7)  # the decode terms place it differently


@pytest.mark.parametrize("cap_kib, expected", [(1200, (10,)), (1199, None)])
def test_one_stage_holds_every_layer_when_memory_allows(cap_kib, expected):
    # 10 layers × 100 KiB + 200 KiB fixed = 1200 KiB
    assert greedy_placement(_row(10, 1, fixed_kib=(200, 0, 0), cap_kib=cap_kib), 0) == expected


def test_no_placement_when_the_stages_outnumber_the_layers_or_memory_is_short():
    assert greedy_placement(_row(3, 4), 0) is None
    # 4 stages of at most 7 layers (700 KiB each) hold 28 < 32 layers
    assert greedy_placement(_row(32, 4, cap_kib=700), 0) is None
