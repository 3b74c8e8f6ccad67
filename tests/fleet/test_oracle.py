"""planner/fleet/oracle.py: the exhaustive fleet oracle on tables small enough to solve by hand (prices and
capacities in the table's integer units)."""
from __future__ import annotations

import pytest

from planner.fleet.oracle import exhaustive

from .conftest import pool, table

AGG_H100 = pool(0, "aggregated", "h100-sxm", 2, 10)  # 2 GPUs, serves 10
AGG_A100 = pool(0, "aggregated", "a100-80gb", 1, 30)  # 1 GPU, serves 30
PRE = pool(0, "prefill", "h100-sxm", 1, 30)
DEC = pool(0, "decode", "a100-80gb", 4, 20)


def test_the_cheaper_type_wins_unless_it_is_unavailable():
    od = {"h100-sxm": 100, "a100-80gb": 150}
    # demand 25: 3 H100 replicas (6 GPUs x 100 = 600) or one A100 replica (150)
    assert exhaustive(table([AGG_H100, AGG_A100], [[25]], od)) == (150, (0, 0), ((0,), (1,)))
    assert exhaustive(table([AGG_H100, AGG_A100], [[25]], od, avail={"a100-80gb": 0})) == (600, (0, 0), ((3,), (0,)))


def test_reserving_pays_off_for_the_replicas_every_hour_needs():
    one = pool(0, "aggregated", "h100-sxm", 1, 10)
    # demand 10 then 30: 1 then 3 replicas. Reserving r at 70 (on demand 100): r=0 400, r=1 70 + (70 + 200) = 340,
    # r=2 140 + (140 + 100) = 380, r=3 420
    ft = table([one], [[10, 30]], od={"h100-sxm": 100}, res={"h100-sxm": 70})
    assert exhaustive(ft) == (340, (1,), ((1, 3),))
    # an hourly budget of 250 rules out hour 1 at 270 (r=1) and 300 (r=0): two reserved (140, then 140 + 100)
    assert exhaustive(table([one], [[10, 30]], od={"h100-sxm": 100}, res={"h100-sxm": 70}, budget_hour=250)) \
        == (380, (2,), ((2, 3),))
    # ... and a total budget below 380 leaves no fleet
    assert exhaustive(table([one], [[10, 30]], od={"h100-sxm": 100}, res={"h100-sxm": 70}, budget_hour=250,
                            budget_total=379)) is None


def test_disaggregated_pairs_serve_the_slower_half_and_can_be_forbidden():
    od = {"h100-sxm": 100, "a100-80gb": 60}
    # demand 40: 4 aggregated (4 x 2 x 100 = 800), or 2 prefill (200) + 2 decode (2 x 4 x 60 = 480) = 680 serving
    # min(60, 40) = 40; mixes (2 agg + 1 + 1: 740) cost more
    assert exhaustive(table([AGG_H100, PRE, DEC], [[40]], od)) == (680, (0, 0, 0), ((0,), (2,), (2,)))
    # the prefill pool cannot hand its KV to this decode pool (e.g. different KV precision): aggregated only
    assert exhaustive(table([AGG_H100, PRE, DEC], [[40]], od, incompatible=[(1, 2)]))[0] == 800


def test_the_oracle_refuses_a_table_too_large_to_enumerate():
    big = [pool(0, "aggregated", "h100-sxm", 1, 1) for _ in range(4)]
    with pytest.raises(ValueError, match="oracle space has"):
        exhaustive(table(big, [[50]], od={"h100-sxm": 1}))
