"""Random strings (all of Unicode, control characters, shell and YAML syntax) in the user-controlled fields of every
engine's export: nothing but the engine runs, the manifest holds only the expected documents (tests/export/
injection.py states the property)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings

import planner

from .injection import ENGINES, check, texts
from .test_injection import EVIL
from .shell import SHELLS

pytestmark = pytest.mark.skipif(not SHELLS, reason="needs bash or dash")
FAST = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
SLOW = settings(FAST, max_examples=400)


@pytest.fixture(scope="module")
def small_plan():
    return planner.plan("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", time_limit_s=20).to_dict()


def _property(engine, plan):
    @given(name=texts, path=texts)
    @example(name=EVIL, path="")
    @example(name="m", path=EVIL)
    @example(name="$(HF_TOKEN)", path="${HOME}/$$(HOME)")
    @example(name="x\n---\nkind: Pod\n#", path="'; touch PWNED; '")
    @example(name="--trust-remote-code", path="-x")
    @example(name="${HEAD_ADDR}:1", path="`touch PWNED`")
    def run(name, path):
        with tempfile.TemporaryDirectory() as d:
            problem = check(engine, plan, name, path, Path(d))
        assert problem is None, (name, path, problem)
    return run


@pytest.mark.parametrize("engine", ENGINES)
def test_random_strings_run_only_the_engine(engine, small_plan):
    FAST(_property(engine, small_plan))()


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_random_strings_run_only_the_engine_at_depth(engine, small_plan):
    SLOW(_property(engine, small_plan))()
