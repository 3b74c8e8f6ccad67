"""planner/engines.py: the support predicate the search asks per row shape, and its effect on the rows."""
from __future__ import annotations

import json

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
    # no key asked twice, and at most once per shape: the answer depends on the shape only through the features
    # it uses (engines.layout_features), so shapes that differ in PP depth alone share one question
    assert 1 <= len(calls) == len(set(calls)) <= len(shapes)
    feature_keys = {(g, w, k, tp, engines.layout_features(pp, ep, dp)) for g, w, k, tp, pp, ep, dp in shapes}
    assert len(calls) == len(feature_keys)


# ---- the plan names the engine that runs it; --engine restricts plan and frontier --------------------------------
def _run(*args: str):
    from click.testing import CliRunner

    from planner.cli import main

    return CliRunner().invoke(main, list(args))


A100_8B = ["--model", "llama-3.1-8b", "--gpus", "a100-80gb", "--isl", "1000", "--osl", "200", "--weights", "bf16",
           "--kv", "fp8", "--max-gpus", "2"]


def test_plan_names_the_first_engine_in_preference_order_that_runs_it():
    import jsonschema

    from planner.plan import plan_schema

    r = _run("plan", *A100_8B, "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    jsonschema.validate(d, plan_schema())
    assert d["precision"] == {"weights": "bf16", "kv": "fp8"}
    # vLLM and TensorRT-LLM cannot keep an fp8 KV cache on Ampere; SGLang is next in PREFERENCE after vLLM
    assert d["serving_engine"]["id"] == "sglang"
    assert d["serving_engine"]["engines_that_run_it"] == ["sglang"]
    assert d["serving_engine"]["version"] == "0.5.4"
    assert d["perf_profile"]["engine"] == "sglang"  # timed as SGLang runs it, not as the search's vLLM profile
    assert "sglang" in _run("plan", *A100_8B).stdout.splitlines()[1].lower()
    # the export follows the plan's engine by default
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.json"
        path.write_text(r.stdout, encoding="utf-8")
        ex = _run("export", str(path))
        assert ex.exit_code == 0, ex.stderr
        assert "sglang.launch_server" in ex.stdout or "sglang serve" in ex.stdout


def test_engine_restricts_the_plan_and_names_itself():
    r = _run("plan", *A100_8B[:-4], "--kv", "bf16,fp8", "--max-gpus", "2", "--engine", "vllm", "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["precision"]["kv"] == "bf16"  # the fp8 KV rows are gone for vLLM on Ampere
    assert d["serving_engine"]["id"] == "vllm" and d["serving_engine"]["chosen_by"] == "--engine"
    assert "sglang" in d["serving_engine"]["engines_that_run_it"]


def test_infeasible_because_of_the_engine_says_so_and_what_runs_without_it():
    r = _run("plan", *A100_8B, "--engine", "vllm")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("infeasible: no plan vLLM can run: KV fp8 on a100-80gb: an fp8 KV cache needs")
    # ... the plan the planner makes without --engine (the same perf profile: vLLM's, the default)
    p = json.loads(_run("plan", *A100_8B, "--json", "--disagg", "off").stdout)  # the colocated plan it names
    assert lines[-1].startswith(f"infeasible: without --engine: SGLang runs {p['total_gpus']} x a100-80gb "
                                f"TP{p['parallelism']['tp']} PP1 bf16 weights / fp8 KV at "
                                f"${p['cost']['usd_per_million_output_tokens']:.3f}/M output tokens")
    assert len(lines) == 2  # no row was left: the generic "no configuration" reason is not repeated
    # TensorRT-LLM off AMD
    r = _run("plan", "--model", "llama-3.1-8b", "--gpus", "mi300x", "--isl", "1000", "--osl", "200",
             "--engine", "trtllm")
    assert r.exit_code == 1
    assert r.stderr.startswith("infeasible: no plan TensorRT-LLM can run: mi300x: TensorRT-LLM is built on CUDA")
    p = json.loads(_run("plan", "--model", "llama-3.1-8b", "--gpus", "mi300x", "--isl", "1000", "--osl", "200",
                        "--json", "--disagg", "off").stdout)  # the plan it names (vLLM, the default profile)
    assert f"without --engine: vLLM runs {p['total_gpus']} x mi300x TP{p['parallelism']['tp']} PP1" in r.stderr


def test_infeasible_for_every_engine_keeps_the_plain_reasons():
    args = ["plan", "--model", "llama-3.1-8b", "--gpus", "a100-80gb", "--isl", "1000", "--osl", "200",
            "--min-tokens-per-s-user", "5000"]
    plain, engine = _run(*args), _run(*args, "--engine", "vllm")
    assert plain.exit_code == engine.exit_code == 1
    # the engine is not why: the plain reasons (over the engine's rows: bf16 KV here), no engine-specific lines
    assert engine.stderr.startswith("infeasible: tokens/s/user: no configuration of a100-80gb reaches 5000.0")
    assert "int8/bf16-KV" in engine.stderr and "int8/fp8-KV" in plain.stderr
    assert "no plan" not in engine.stderr and "without --engine" not in engine.stderr


def test_frontier_points_name_their_engine():
    import planner

    d = planner.frontier("llama-3.1-8b", isl=1000, osl=200, gpus="a100-80gb,mi300x", speeds=(20.0,), engine="trtllm")
    assert d["points"] and all(p["engine"] == "trtllm" and p["gpu"] == "a100-80gb" and p["kv"] == "bf16"
                               for p in d["points"])


def test_exclusions_name_each_rule_once_with_its_gpus_and_precisions():
    shapes = [(g, w, k) for g in ("a100-80gb", "a100-40gb", "h100-sxm") for w in ("bf16", "int8") for k in ("bf16", "fp8")]
    lines = engines.exclusions("trtllm", shapes)
    assert lines == [
        "KV fp8 on a100-80gb, a100-40gb: " + engines.unsupported_rule("trtllm", "a100-80gb", "bf16", "fp8")["reason"],
        "weights int8 on a100-80gb, a100-40gb, h100-sxm: "
        + engines.unsupported_rule("trtllm", "h100-sxm", "int8", "bf16")["reason"]]
    assert engines.exclusions("sglang", shapes) == []
    assert engines.exclusions("vllm", [("h100-sxm", "bf16", "bf16")], draft=True)[0].startswith(
        "a separate draft model: vLLM 0.11.0")


# ---- the matrix as a table ------------------------------------------------------------------------------------------
def test_support_doc_is_current():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / engines.DOC_PATH
    assert doc.read_text(encoding="utf-8") == engines.support_markdown(), \
        "docs/engine-support.md is not current: run python tools/engine_support.py --write"


def _table(md: str, title: str) -> dict[str, list[str]]:
    lines = md.split(f"## {title}", 1)[1].split("\n\n", 2)[1].splitlines()
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:])}


def _note(md: str, cell: str) -> str:
    n = int(cell.split("[", 1)[1].rstrip("]"))
    return next(ln for ln in md.splitlines() if ln.startswith(f"{n}. "))


def test_support_doc_cells_follow_the_rules_with_their_sources():
    md = engines.support_markdown()
    vllm = _table(md, "vLLM 0.11.0")
    cols = [name for _, name in engines.ARCHITECTURES]
    assert vllm["bf16 / fp8"][cols.index("Ampere")].startswith("no [")
    assert "fp8e4nv" in _note(md, vllm["bf16 / fp8"][0]) and "Source: vllm-project/vllm issues" in _note(md, vllm["bf16 / fp8"][0])
    assert vllm["bf16 / fp8"][cols.index("Hopper")] == "yes"
    assert vllm["bf16 / int8"][cols.index("Hopper")] == "as fp8"  # no int8 KV dtype: emitted (and judged) as fp8
    assert vllm["bf16 / int8"][cols.index("Ampere")].startswith("no [")
    trt = _table(md, "TensorRT-LLM 1.1.0")
    assert all(c.startswith("no [") for c in trt["bf16 / bf16"][cols.index("CDNA3"):])
    assert "NVIDIA GPUs only" in _note(md, trt["bf16 / bf16"][cols.index("CDNA3")])
    assert trt["int8 / bf16"][cols.index("Hopper")].startswith("no [")
    assert all(c == "yes" or c.startswith("no [") for row in _table(md, "SGLang 0.5.4").values() for c in row
               if not c.startswith("as "))
    # every cell agrees with the predicate the search uses, for every catalog GPU of the column
    for e in engines.ENGINES_SERVING:
        table = _table(md, f"{engines.ENGINE_NAMES[e]} {engines.version(e)}")
        for key, cells in table.items():
            w, k = key.split(" / ")
            for (arch, _), cell in zip(engines.ARCHITECTURES, cells):
                for g, a in engines.support_matrix()["architecture"].items():
                    if a == arch:
                        assert engines.runs_on(e, g, w, k) == (not cell.startswith("no")), (e, g, w, k, cell)
    feats = _table(md, "Features by engine")
    assert feats["speculative decoding, separate draft model"][0].startswith("no [")  # vLLM 0.11.0
    assert feats["speculative decoding, separate draft model"][1:] == ["yes", "yes"]
    assert feats["pipeline parallel (PP > 1)"] == ["yes", "yes", "yes"]


def test_every_no_in_the_doc_has_a_source():
    md = engines.support_markdown()
    notes = [ln for ln in md.splitlines() if ln[:1].isdigit() and ". " in ln]
    assert notes and all("Source: " in n and len(n.split("Source: ", 1)[1]) > 10 for n in notes)


def test_tool_checks_and_writes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert engines.main(["--check"]) == 1  # no docs/ here
    (tmp_path / "docs").mkdir()
    assert engines.main(["--write"]) == 0 and engines.main(["--check"]) == 0
    assert engines.main(["--bogus"]) == 2


def test_int8_kv_is_judged_as_the_fp8_the_export_emits():
    assert engines.kv_as_run("vllm", "int8") == "fp8"
    assert engines.engines_for("a100-80gb", "bf16", "int8", 1, 1, 1, 1) == ("sglang",)
    assert engines.engines_for("h100-sxm", "bf16", "int8", 1, 1, 1, 1) == ("vllm", "sglang", "trtllm")


# ---- fleet ---------------------------------------------------------------------------------------------------------
FLEET = {"model": "llama-3.1-8b", "gpus": ["a100-80gb"], "kv": ["bf16", "fp8"], "disaggregation": "off",
         "class": [{"name": "chat", "isl": 1000, "osl": 200, "ttft_ms": 1000, "min_tokens_per_s_user": 30,
                    "rate_rps": 5}]}


def test_fleet_engine_restricts_the_pools_and_each_pool_names_its_engine():
    import planner

    free = planner.fleet(dict(FLEET), compare=False).to_dict()
    assert free["pools"] and all(p["engine"] in engines.engines_for(p["gpu"], p["weights"], p["kv"], p["tp"], p["pp"],
                                                                    p["ep"], 1) for p in free["pools"])
    assert {p["kv"] for p in free["pools"]} == {"fp8"}  # the cheaper KV cache: only SGLang runs it on Ampere
    assert {p["engine"] for p in free["pools"]} == {"sglang"}
    for how in ({"engine": "vllm"}, {}):  # the request key, or the API's (CLI --engine) argument
        d = planner.fleet({**FLEET, **how}, compare=False, **({} if how else {"engine": "vllm"})).to_dict()
        assert {p["kv"] for p in d["pools"]} == {"bf16"} and {p["engine"] for p in d["pools"]} == {"vllm"}
    with pytest.raises(InputError, match="engine: --engine must be one of"):
        planner.fleet({**FLEET, "engine": "tgi"})


def test_an_empty_frontier_because_of_the_engine_says_so():
    r = _run("frontier", "--model", "llama-3.1-8b", "--gpus", "mi300x", "--isl", "1000", "--osl", "200",
             "--engine", "trtllm", "--speeds", "20,40")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("infeasible: no plan TensorRT-LLM can run: mi300x: TensorRT-LLM is built on CUDA")
    assert lines[1].startswith("infeasible: without --engine: 2 frontier point(s), e.g. mi300x")
    # unreachable for every engine: the plain message, no engine lines
    r = _run("frontier", "--model", "llama-3.1-8b", "--gpus", "h100-sxm", "--isl", "1000", "--osl", "200",
             "--engine", "trtllm", "--speeds", "100000")
    assert r.exit_code == 1 and "no plan" not in r.stderr and "reachable" in r.stderr


def test_engines_running_is_the_rules_asked_one_by_one():
    """The search's memoized predicate (keyed by architecture, not GPU id) names exactly the engines, in preference
    order, that `runs_on` and `unsupported_feature` allow, for every catalog GPU, a user-catalog one (no
    architecture), every precision pair and every set of features."""
    from itertools import combinations

    features = ("pp", "ep", "attention_dp", "draft_model", "draft_model_dp")
    gpus = [*engines.support_matrix()["architecture"], "my-own-gpu"]
    for g in gpus:
        for w in ("bf16", "fp8", "int8", "int4", "fp4"):
            for k in ("bf16", "fp8", "int8"):
                for n in range(3):
                    for used in combinations(features, n):
                        want = tuple(e for e in engines.PREFERENCE if engines.runs_on(e, g, w, k)
                                     and all(engines.unsupported_feature(e, f) is None for f in used))
                        assert engines.engines_running(g, w, k, used) == want, (g, w, k, used)
