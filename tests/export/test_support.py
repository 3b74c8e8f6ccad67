"""Issue #17, first slice of the support matrix (catalog/engines/support.toml): an fp8 KV cache on Ampere is refused
by the vLLM and TensorRT-LLM exports in one line naming the reason, its source and the nearest layout they run;
SGLang and Hopper are unaffected; every accelerator of the catalog has an architecture."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import planner
from planner.catalog import load_catalog
from planner.cli import main
from planner.errors import InputError
from planner.export.spec import support_matrix


@pytest.fixture(scope="module")
def a100_fp8_kv_plan():
    return planner.plan("llama-3.1-8b", isl=1000, osl=200, gpus="a100-80gb", kv="fp8", weights="bf16",
                        time_limit_s=20).to_dict()


@pytest.mark.parametrize("engine, k8s_engine", [("vllm", "vllm"), ("trtllm", "vllm"), ("k8s", "vllm")])
def test_fp8_kv_on_ampere_is_refused_with_the_nearest_plan(a100_fp8_kv_plan, engine, k8s_engine):
    assert a100_fp8_kv_plan["precision"]["kv"] == "fp8"
    with pytest.raises(InputError) as e:
        planner.export(a100_fp8_kv_plan, engine, k8s_engine=k8s_engine)
    msg = str(e.value)
    assert "cannot run this plan on a100-80gb" in msg and "nearest it runs: the same layout with a bf16 KV" in msg
    assert "[" in msg and "\n" not in msg  # the source, on one line


def test_sglang_and_hopper_are_not_refused(a100_fp8_kv_plan):
    assert planner.export(a100_fp8_kv_plan, "sglang").argv
    assert planner.export(a100_fp8_kv_plan, "k8s", k8s_engine="sglang").files
    h100 = planner.plan("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", kv="fp8", time_limit_s=20).to_dict()
    assert planner.export(h100, "vllm").argv


def test_cli_refusal_is_one_line_exit_2(a100_fp8_kv_plan, tmp_path):
    import json

    p = tmp_path / "p.json"
    p.write_text(json.dumps(a100_fp8_kv_plan))
    res = CliRunner().invoke(main, ["export", str(p), "--engine", "vllm"])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1 and "--kv bf16" in res.stderr


def test_every_accelerator_has_an_architecture():
    arch = support_matrix()["architecture"]
    assert set(load_catalog().accelerators) <= set(arch)
    for rule in support_matrix()["unsupported"]:
        assert rule["source"] and rule["reason"] and set(rule["architectures"]) <= set(arch.values())
