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
    return planner.plan("llama-3.1-8b", disagg="off", isl=1000, osl=200, gpus="a100-80gb", kv="fp8", weights="bf16",
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
    h100 = planner.plan("llama-3.1-8b", disagg="off", isl=1000, osl=200, gpus="h100-sxm", kv="fp8", time_limit_s=20).to_dict()
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


# ---- AMD images and whole-architecture refusals (issue #17) ------------------------------------------------------
@pytest.fixture(scope="module")
def mi300x_plan():
    return planner.plan("llama-3.1-8b", disagg="off", isl=1000, osl=200, gpus="mi300x", time_limit_s=20).to_dict()


@pytest.mark.parametrize("engine, image", [("vllm", "rocm/vllm:rocm7.0.0_vllm_0.11.1_"),
                                           ("sglang", "lmsysorg/sglang:v0.5.4-rocm700-mi30x")])
def test_amd_plans_get_rocm_images_and_amd_devices(mi300x_plan, engine, image):
    import yaml

    ex = planner.export(mi300x_plan, "k8s", k8s_engine=engine)
    docs = list(yaml.safe_load_all(ex.files["manifest.yaml"]))
    containers = [c for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]]
    assert containers and all(c["image"].startswith(image) for c in containers)
    assert all(set(c["resources"]["limits"]) == {"amd.com/gpu"} for c in containers)
    assert any(n.startswith(f"image {containers[0]['image']}: ") for n in ex.notes)  # why this tag
    h100 = planner.plan("llama-3.1-8b", disagg="off", isl=1000, osl=200, gpus="h100-sxm", time_limit_s=20).to_dict()
    nv = planner.export(h100, "k8s", k8s_engine=engine).files["manifest.yaml"]
    assert "rocm" not in nv and "nvidia.com/gpu" in nv and "amd.com/gpu" not in nv


def test_every_vendor_image_has_a_source_and_a_note():
    from planner.export.spec import engine_spec

    for engine in ("vllm", "sglang"):
        doc = engine_spec(engine).doc
        assert set(doc["images"]) == set(doc["images_source"]) == set(doc["images_note"]) == {"AMD"}


def test_trtllm_refuses_amd_in_one_line_naming_engines_that_run_it(mi300x_plan, tmp_path):
    import json

    p = tmp_path / "p.json"
    p.write_text(json.dumps(mi300x_plan))
    res = CliRunner().invoke(main, ["export", str(p), "--engine", "trtllm"])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "NVIDIA GPUs only" in res.stderr and "--engine vllm or sglang" in res.stderr


def test_support_check_library_function(a100_fp8_kv_plan, mi300x_plan):
    from planner.export import support

    assert support.check(mi300x_plan, "vllm") == [] and support.check(mi300x_plan, "sglang") == []
    [why] = support.check(mi300x_plan, "trtllm")
    assert "mi300x" in why and "NVIDIA GPUs only" in why and "[" in why
    assert support.check(a100_fp8_kv_plan, "sglang") == []
    assert len(support.check(a100_fp8_kv_plan, "vllm")) == 1
    # a bare layout: gpu, weights, kv
    assert support.check({"gpu": "tpu-v5e", "weights": "bf16", "kv": "bf16"}, "sglang")
    assert support.check({"gpu": "tpu-v5e", "weights": "bf16", "kv": "bf16"}, "trtllm")
    assert support.check({"gpu": "h100-sxm", "weights": "fp8", "kv": "fp8"}, "trtllm") == []
    with pytest.raises(InputError):
        support.check(mi300x_plan, "tgi")


# ---- weight precisions and features (issue #17) ------------------------------------------------------------------
def test_int8_weights_refused_by_trtllm_with_bf16_as_nearest():
    plan = planner.plan("llama-3.1-8b", disagg="off", isl=1000, osl=300, gpus="a100-80gb", weights="int8", kv="bf16",
                        time_limit_s=20).to_dict()
    assert plan["precision"]["weights"] == "int8"
    with pytest.raises(InputError) as e:
        planner.export(plan, "trtllm")
    msg = str(e.value)
    assert "no INT8 weights" in msg and "nearest it runs: the same layout with bf16 weights" in msg
    assert "--weights bf16" in msg and "\n" not in msg
    assert planner.export(plan, "vllm").argv and planner.export(plan, "sglang").argv


@pytest.mark.parametrize("gpu, weights, engine, refused", [
    ("h100-sxm", "fp4", "vllm", True), ("h100-sxm", "fp4", "trtllm", True), ("mi300x", "fp4", "sglang", True),
    ("b200", "fp4", "trtllm", False), ("b200", "fp4", "vllm", False),
    ("a100-80gb", "fp8", "trtllm", True), ("a100-80gb", "fp8", "vllm", True), ("l40s", "fp8", "vllm", False),
    ("h100-sxm", "int8", "trtllm", True), ("h100-sxm", "int8", "vllm", False), ("h100-sxm", "int4", "trtllm", False),
])
def test_weight_precision_rules(gpu, weights, engine, refused):
    from planner.export import support

    assert bool(support.check({"gpu": gpu, "weights": weights, "kv": "bf16"}, engine)) == refused


def test_every_rule_names_known_engines_precisions_and_a_nearest_the_engine_runs():
    from planner.export import support
    from planner.units import KV_PRECISIONS, WEIGHT_PRECISIONS

    doc = support_matrix()
    for rule in doc["unsupported"]:
        engines = [rule["engine"]] if isinstance(rule["engine"], str) else rule["engine"]
        assert set(engines) <= set(support.ENGINES_SERVING)
        assert set(rule.get("weights", [])) <= set(WEIGHT_PRECISIONS) and set(rule.get("kv", [])) <= set(KV_PRECISIONS)
        assert set(rule.get("nearest", {})) <= {"weights", "kv"}
    for rule in doc["unsupported_feature"]:
        assert rule["reason"] and rule["source"] and rule["engine"] in support.ENGINES_SERVING
        assert rule["feature"] in ("pp", "ep", "chunked_prefill", "draft_model", "draft_model_dp")
    assert set(doc["features"]) == set(support.ENGINES_SERVING)
    assert all(f["supported"] and f["source"] for f in doc["features"].values())


def test_draft_model_features():
    from planner.export import support

    plan = {"gpu": "h100-sxm", "precision": {"weights": "bf16", "kv": "bf16"},
            "parallelism": {"tp": 2, "pp": 1, "ep": 1, "dp": 1},
            "speculative": {"draft": "llama-3.1-8b", "gamma": 4, "alpha": 0.7}}
    assert support.features(plan) == ["draft_model"]
    [why] = support.check(plan, "vllm")
    assert "draft model" in why and "#26547" in why
    assert support.check(plan, "sglang") == [] and support.check(plan, "trtllm") == []
    dp = {**plan, "parallelism": {**plan["parallelism"], "dp": 2}}
    assert support.features(dp) == ["draft_model", "draft_model_dp"]
    assert support.check(dp, "sglang") and support.check(dp, "trtllm") == []
    assert support.features({**plan, "speculative": None}) == []
