"""Property tests over random models, catalogs, workloads and SLOs: every plan or frontier point the planner
returns passes the independent checker (checker.py), and a looser request never costs more. (CP-SAT against the
exhaustive oracle is tests/search's.) Example counts are sized for the default suite; `-m slow` runs more."""
from __future__ import annotations

import importlib
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .properties import accepted_input_never_crashes, frontier_is_sound, never_costs_more, plan_is_sound, relaxations
from .strategies import Scenario, boundary_scenarios, scenarios

FAST = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(FAST, max_examples=300)


def _plan(s: Scenario) -> None:
    assert plan_is_sound(s) == []


@FAST
@given(scenarios())
def test_every_plan_passes_the_independent_checker(s: Scenario):
    _plan(s)


@pytest.mark.slow
@SLOW
@given(scenarios())
def test_every_plan_passes_the_independent_checker_many(s: Scenario):
    _plan(s)


SPEEDS = st.lists(st.sampled_from([3.0, 8.0, 20.0, 33.3, 60.0, 120.0]), min_size=1, max_size=4, unique=True)


@settings(FAST, max_examples=10)
@given(scenarios(demand=False), SPEEDS)
def test_every_frontier_point_passes_the_independent_checker(s: Scenario, speeds: list[float]):
    assert frontier_is_sound(s, tuple(speeds)) == []


# CP-SAT's limit per solve in the default suite's monotonicity examples: a bound on what one example may cost. The
# examples are fixed by this test's source (derandomize) and the Hypothesis version (tests/conftest.py), so an edit
# draws new ones, and a scenario whose solve cannot prove optimality spends the whole limit while checking only
# that the looser request still has a plan (the comparison needs both optimal): an earlier draw, a 67-layer dense
# config on H200 + L40S up to 174 GPUs at 7.56 tokens/s/user relaxed 3x, stops FEASIBLE (gap 2 %) at the default
# 30 s. Every solve of the present examples proves optimality in under 0.3 s (2026-11-28); the slow variant keeps
# the planner's default limit.
DEFAULT_SUITE_SOLVE_LIMIT_S = 10.0


@settings(FAST, max_examples=12)
@given(scenarios(), st.floats(0.3, 0.95))
def test_a_looser_request_never_costs_more(s: Scenario, factor: float):
    problems = []
    for loose, what in relaxations(s, factor):
        problems += never_costs_more(s, loose, what, DEFAULT_SUITE_SOLVE_LIMIT_S)
    assert problems == []


@pytest.mark.slow
@settings(SLOW, max_examples=150)
@given(scenarios(), st.floats(0.3, 0.95))
def test_a_looser_request_never_costs_more_many(s: Scenario, factor: float):
    problems = []
    for loose, what in relaxations(s, factor):
        problems += never_costs_more(s, loose, what)
    assert problems == []


@settings(FAST, max_examples=15)
@given(boundary_scenarios())
def test_inputs_at_the_validation_limits_never_crash(s: Scenario):
    assert accepted_input_never_crashes(s) == []


@pytest.mark.slow
@settings(SLOW, max_examples=400)
@given(boundary_scenarios())
def test_inputs_at_the_validation_limits_never_crash_many(s: Scenario):
    assert accepted_input_never_crashes(s) == []



def test_examples_do_not_depend_on_the_modules_loaded_before(tmp_path, monkeypatch):
    """A derandomized test draws the same examples after a new local module full of literals in its ranges is
    loaded (tests/conftest.py: otherwise Hypothesis may draw those literals, and a property test's examples and cost
    would depend on which tests ran before it)."""
    seen: list[tuple[int, float]] = []

    @settings(FAST, max_examples=60)
    @given(st.integers(0, 1000), st.floats(0.3, 0.95))
    def draw(u: int, f: float) -> None:
        seen.append((u, f))

    draw()
    before = list(seen)
    literals = [*range(101, 1000, 7), *(0.3 + i / 1000 for i in range(1, 650, 3))]
    (tmp_path / "literals_for_hypothesis.py").write_text(f"LITERALS = {tuple(literals)!r}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("literals_for_hypothesis")
        seen.clear()
        draw()
    finally:
        sys.modules.pop("literals_for_hypothesis", None)
    assert seen == before
