"""Property tests over random models, catalogs, workloads and SLOs: every plan or frontier point the planner
returns passes the independent checker (checker.py), and a looser request never costs more. (CP-SAT against the
exhaustive oracle is tests/search's.) Example counts are sized for the default suite; `-m slow` runs more."""
from __future__ import annotations

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


@settings(FAST, max_examples=12)
@given(scenarios(), st.floats(0.3, 0.95))
def test_a_looser_request_never_costs_more(s: Scenario, factor: float):
    problems = []
    for loose, what in relaxations(s, factor):
        problems += never_costs_more(s, loose, what)
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
