"""The flag checker (tests/export/flags.py) over randomized plan layouts, not only the examples: every emitted
command and TensorRT-LLM YAML key is recorded in catalog/engines/<engine>.toml with its type and choices, and the
checker itself catches a flag that is not."""
from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import planner
from planner.errors import InputError
from planner.export import support

from .flags import check_argv, checked_commands, engine_doc, yaml_keys

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def base_plan():
    # the colocated plan: its single layout is what the random variations below change
    return planner.plan("llama-3.1-70b", isl=1000, osl=300, gpus="h100-sxm", time_limit_s=20,
                        disagg="off").to_dict()


def _layout(draw_tp, draw_pp, batch, weights, kv, plan):
    layers = 80
    base, extra = divmod(layers, draw_pp)
    split = [base + (1 if s < extra else 0) for s in range(draw_pp)]
    return {**plan, "parallelism": {**plan["parallelism"], "tp": draw_tp, "pp": draw_pp, "ep": 1},
            "batch": batch, "precision": {"weights": weights, "kv": kv}, "placement": {"layers_per_stage": split}}


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_random_layouts_emit_only_recorded_flags(engine, base_plan):
    @SETTINGS
    @given(tp=st.sampled_from([1, 2, 4, 8]), pp=st.sampled_from([1, 2, 3, 4, 5]), batch=st.integers(1, 512),
           weights=st.sampled_from(["bf16", "fp8", "int8", "int4"]), kv=st.sampled_from(["bf16", "fp8", "int8"]))
    def run(tp, pp, batch, weights, kv):
        plan = _layout(tp, pp, batch, weights, kv, base_plan)
        if support.check(plan, engine):  # the support matrix refuses it (tests/export/test_support.py)
            with pytest.raises(InputError, match="cannot run this plan"):
                planner.export(plan, engine)
            return
        ex = planner.export(plan, engine)
        files = checked_commands(engine, ex)
        if engine == "trtllm":
            keys = {k["name"] for k in engine_doc("trtllm")["yaml_key"]}
            assert set(yaml_keys(yaml.safe_load(files["extra-llm-api-options.yaml"]))) <= keys

    run()


def test_the_checker_catches_unrecorded_flags_and_bad_values(base_plan):
    argv = planner.export(base_plan, "vllm").argv
    assert check_argv("vllm", argv) == []
    assert check_argv("vllm", argv + ["--made-up-flag"]) == ["--made-up-flag is not a recorded vllm flag"]
    bad = list(argv)
    bad[bad.index("--max-num-seqs") + 1] = "many"
    assert check_argv("vllm", bad) == ["--max-num-seqs 'many' is not int"]
    bad = list(argv)
    bad[bad.index("--kv-cache-dtype") + 1] = "fp7"
    assert any("not in" in p for p in check_argv("vllm", bad))
