"""planner/engines.py: the support predicate the search asks per row shape, and its effect on the rows."""
from __future__ import annotations

import pytest

from planner import engines
from planner.catalog import load_catalog, load_model
from planner.errors import InputError
from planner.search.space import Request, enumerate_rows
from planner.specs.workload import SLO, Workload


def _request(gpus, engine, kv=("bf16", "fp8"), weights=("bf16", "fp8", "int8"), model="llama-3.1-8b", **kw):
    cat = load_catalog()
    return Request(model=load_model(model), workload=Workload(isl=1000, osl=200), slo=SLO.from_flags(),
                   gpus=tuple(cat.gpus(gpus)), kv=kv, weights=weights, engine=engine, **kw)


def test_architecture_of_catalog_gpus():
    assert engines.architecture("a100-80gb") == "ampere"
    assert engines.architecture("h100-sxm") == "hopper"
    assert engines.architecture("mi300x") == "cdna3"
    assert engines.architecture("my-own-gpu") is None  # a user-catalog part: no rule names it


def test_engines_for_follows_the_matrix_rules():
    # fp8 KV on Ampere: vLLM and TensorRT-LLM have a rule against it, SGLang none
    assert engines.engines_for("a100-80gb", "bf16", "fp8", 1, 1, 1, 1) == ("sglang",)
    assert engines.engines_for("a100-80gb", "bf16", "bf16", 1, 1, 1, 1) == ("vllm", "sglang", "trtllm")
    # TensorRT-LLM is CUDA only; int8 weights are not in its PyTorch backend
    assert "trtllm" not in engines.engines_for("mi300x", "bf16", "bf16", 8, 1, 1, 1)
    assert engines.engines_for("h100-sxm", "int8", "bf16", 1, 1, 1, 1) == ("vllm", "sglang")
    # fp4 weights only on Blackwell
    assert engines.engines_for("h100-sxm", "fp4", "bf16", 1, 1, 1, 1) == ()
    assert engines.engines_for("b200", "fp4", "fp8", 1, 2, 1, 1) == ("vllm", "sglang", "trtllm")


def test_row_supported_none_means_any_engine():
    assert engines.row_supported(None, "a100-80gb", "bf16", "fp8", 2, 1, 1, 1)
    assert not engines.row_supported("vllm", "a100-80gb", "bf16", "fp8", 2, 1, 1, 1)
    assert not engines.row_supported(None, "h100-sxm", "fp4", "bf16", 2, 1, 1, 1)


def test_check_engine():
    assert engines.check_engine(" vLLM ") == "vllm"
    assert engines.check_engine(None) is None
    with pytest.raises(InputError, match="--engine must be one of vllm, sglang, trtllm"):
        engines.check_engine("k8s")
    with pytest.raises(InputError, match="--engine"):
        _request("h100-sxm", "tgi")


def test_enumerate_rows_keeps_only_the_engines_shapes():
    shapes = lambda rows: {(r.gpu.id, r.weights, r.kv) for r in rows}  # noqa: E731
    any_engine = enumerate_rows(_request("a100-80gb", None), 256)
    vllm = enumerate_rows(_request("a100-80gb", "vllm"), 256)
    assert ("a100-80gb", "bf16", "fp8") in shapes(any_engine)  # SGLang runs it
    assert shapes(vllm) == {("a100-80gb", "bf16", "bf16"), ("a100-80gb", "int8", "bf16")}
    # every row the engine keeps is a row of the union, in the same order
    assert [r for r in any_engine if r.kv == "bf16"] == vllm
    trt = enumerate_rows(_request("a100-80gb,mi300x", "trtllm"), 256)
    assert shapes(trt) == {("a100-80gb", "bf16", "bf16")}
    for r in enumerate_rows(_request("a100-80gb,h100-sxm,mi300x", None), 256):
        assert engines.engines_for(r.gpu.id, r.weights, r.kv, r.tp, r.pp, r.ep, r.dp)


def test_predicate_is_asked_once_per_shape_not_per_micro_batch(monkeypatch):
    calls = []
    real = engines.row_supported

    def counting(*key):
        calls.append(key)
        return real(*key)

    monkeypatch.setattr(engines, "row_supported", counting)
    rows = enumerate_rows(_request("h100-sxm", "sglang", micro_batches=(1, 2, 4, 8)), 4096)
    shapes = {(r.gpu.id, r.weights, r.kv, r.tp, r.pp, r.ep, r.dp) for r in rows}
    assert len(rows) > len(shapes)  # several micro-batches per shape
    assert len(calls) == len(set(calls)) >= len(shapes)  # no shape asked twice
