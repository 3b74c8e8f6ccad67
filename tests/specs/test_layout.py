"""planner/specs/layout.py: the layout field list is defined once and shared by the exporter's and the fleet's
layout records."""
from __future__ import annotations

from dataclasses import FrozenInstanceError, fields

import pytest

from planner.export.layout import Layout
from planner.fleet.result import PoolPlan
from planner.specs.layout import ReplicaLayout

SHARED = ["tp", "pp", "ep", "batch", "weights", "kv", "layers_per_stage", "dp"]


def test_one_field_list_for_every_layout_record():
    assert [f.name for f in fields(ReplicaLayout)] == SHARED
    for record in (Layout, PoolPlan):
        assert issubclass(record, ReplicaLayout)
        names = [f.name for f in fields(record)]
        assert names[:len(SHARED)] == SHARED and not set(SHARED) & set(names[len(SHARED):])


def test_an_export_layout_reads_a_plan_and_keeps_its_positional_order():
    plan = {"parallelism": {"tp": 4, "pp": 2, "ep": 1, "dp": 1, "replicas": 3}, "batch": 16,
            "precision": {"weights": "fp8", "kv": "bf16"}, "placement": {"layers_per_stage": [40, 40]}}
    lay = Layout.from_plan(plan)
    assert lay == Layout(4, 2, 1, 16, "fp8", "bf16", (40, 40), 3)  # fields in the order before the split
    assert (lay.gpus, lay.micro_batch) == (4 * 1 * 2, 16 // 2)
    with pytest.raises(FrozenInstanceError):
        lay.tp = 8  # type: ignore[misc]
