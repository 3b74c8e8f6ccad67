"""The checker's per-stage memory with several layer kinds, on the example Hypothesis found (Session 14):
DeepSeek-V3's first stage holds its 3 dense layers, lighter than the average layer, so the average-layer figure
(182.5 GiB) reported an overflow the plan does not have (175.2 GiB on a 179 GiB B200)."""
from __future__ import annotations

from pathlib import Path

import pytest

from .checker import _estimate, stage_memory_bytes
from .properties import _folder, plan_is_sound
from .strategies import Scenario

FOUND = Scenario(model='deepseek-v3', gpus_new=[], gpus_shipped=['b200', 'h100-sxm'], isl=1, osl=1,
                 min_tokens_per_s_user=2.0, weights=('bf16',), kv=('bf16', 'fp8'), max_gpus=8,
                 max_gpus_per_type={'b200': 8})


def test_stage_memory_counts_each_layer_kind():
    with _folder() as d:
        ask, cat = FOUND.ask(FOUND.write(Path(d)))
    args = ("b200", 4, 2, 1, 510, "bf16", "fp8", [32, 29], 1)  # the plan the planner returns here
    e = _estimate(ask, cat, *args)
    stages = stage_memory_bytes(ask, cat, *args[:3], *args[4:7], args[7], args[8])
    assert e.fits and max(stages) == pytest.approx(e.memory["total"], rel=1e-12)
    assert max(stages) <= cat.accelerators["b200"].memory_bytes


def test_the_found_plan_passes_the_checker():
    assert plan_is_sound(FOUND) == []
