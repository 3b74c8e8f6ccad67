"""Random mutations of valid files through every command that reads them (see fuzz.py): never a crash, and
every error is one line."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.cli import main

from .cases import plan_file_commands, problems
from .fuzz import TARGETS, Target, fuzz_case, mutated, plan_file_targets
from .test_bad_input import _valid_plan

ALL_TARGETS = TARGETS + plan_file_targets(plan_file_commands(main), _valid_plan())
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def run_mutation(target: Target, data: bytes) -> list[str]:
    case = fuzz_case(target, data)
    with tempfile.TemporaryDirectory() as d:
        res = CliRunner().invoke(main, case.materialize(Path(d)))
    return problems(case, res.exit_code, res.stdout, res.stderr)


@pytest.mark.parametrize("target", ALL_TARGETS, ids=[t.name for t in ALL_TARGETS])
@FUZZ
@given(data=st.data())
def test_mutated_file_never_crashes(target: Target, data):
    mutation = data.draw(mutated(target.base))
    assert run_mutation(target, mutation) == [], mutation


@pytest.mark.slow
@pytest.mark.parametrize("target", ALL_TARGETS, ids=[t.name for t in ALL_TARGETS])
@settings(FUZZ, max_examples=400, derandomize=False)
@given(data=st.data())
def test_mutated_file_never_crashes_many(target: Target, data):
    mutation = data.draw(mutated(target.base))
    assert run_mutation(target, mutation) == [], mutation
