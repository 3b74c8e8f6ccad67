"""planner/export/base.py: the plan checks every engine export relies on (bad fields: one-line InputError naming
the field), the memory-fraction rounding, the Hugging Face repo of a preset, and the re-estimate of an emitted
layout against the plan (same layout: no change; a tighter SLO: reported as a miss)."""
from __future__ import annotations

import copy

import pytest

from planner.errors import InputError
from planner.export.base import check_plan, floor2, hf_repo, make_context, reestimator, resolve_layout
from planner.export.spec import engine_spec

from .conftest import EXAMPLES, plan_example


@pytest.fixture(scope="module")
def plan():
    return plan_example(next(p for p in EXAMPLES if p.name == "chat-70b.toml"))


def test_a_planned_plan_passes_its_checks(plan):
    assert check_plan(copy.deepcopy(plan)) is not None


@pytest.mark.parametrize("path, value, message", [
    (("parallelism", "tp"), 0, "parallelism.tp must be a positive integer"),
    (("parallelism", "tp"), True, "parallelism.tp must be a positive integer"),
    (("parallelism", "pp"), 1.5, "parallelism.pp must be a positive integer"),
    (("batch",), "8", "batch must be a positive integer"),
])
def test_bad_numbers_name_the_field(plan, path, value, message):
    bad = copy.deepcopy(plan)
    d = bad
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value
    with pytest.raises(InputError, match=message):
        check_plan(bad)


def test_missing_field_and_wrong_schema(plan):
    bad = copy.deepcopy(plan)
    del bad["placement"]
    with pytest.raises(InputError, match="missing field 'placement'"):
        check_plan(bad)
    with pytest.raises(InputError, match="schema_version 2 is not supported"):
        check_plan({**plan, "schema_version": 2})


def test_floor2_never_rounds_up():
    assert floor2(0.919999) == 0.91 and floor2(0.92) == 0.92 and floor2(0.5) == 0.5


def test_hf_repo_of_a_preset():
    assert hf_repo("llama-3.1-70b") == "meta-llama/Llama-3.1-70B"  # its catalog _planner_source
    assert hf_repo("no-such-model") is None


def test_reestimate_of_the_planned_layout_matches_the_plan(plan):
    spec = engine_spec("vllm")
    ctx = make_context(copy.deepcopy(plan), spec, model=None, model_path=None, catalog=None, price_tier=None)
    layout = resolve_layout(ctx).planned
    r = reestimator(ctx)(layout)
    assert r["violations"] == []
    assert r["tpot_change"] == pytest.approx(0.0, abs=1e-5)
    # the same layout against a TPOT target 10 % under what it reaches is a miss, in the plan's own words
    tight = copy.deepcopy(plan)
    tight["slo"]["tpot_s"] = plan["metrics"]["tpot_s"] * 0.9
    ctx = make_context(tight, spec, model=None, model_path=None, catalog=None, price_tier=None)
    assert any(v.startswith("TPOT") for v in reestimator(ctx)(layout)["violations"])
