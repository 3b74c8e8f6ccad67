"""A randomized checker of engine support, over random layouts (preset x GPU x weights x KV x TP/PP/EP/DP x batch x
engine, as `planner estimate --json` output) and over random real plans (`planner.plan`):

- the search's predicate (planner/engines.py) and the export's refusal (planner/export/support.py) agree: the export
  refuses exactly the layouts the search would not offer that engine, in one line naming the reason;
- what the export emits parses against the engine's recorded flag definitions (tests/export/flags.py reads
  catalog/engines/<engine>.toml itself), and the KV-cache dtype it emits is the one the matrix judged;
- a plan names an engine that runs it, and exporting it with that engine (the default) is never refused.

A small count runs by default; `pytest -m slow` runs many more."""
from __future__ import annotations

import shlex

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import planner
from planner import engines
from planner.catalog import load_catalog, load_model
from planner.errors import InfeasibleError, InputError
from planner.export import support
from planner.units import KV_PRECISIONS, WEIGHT_PRECISIONS

from .flags import checked_commands, engine_doc, yaml_keys

PRESETS = ("llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-2-70b", "mixtral-8x7b", "mixtral-8x22b",
           "qwen3-235b-a22b", "deepseek-v3", "gemma-2-27b", "gpt-oss-120b", "llama-4-scout", "gpt3-175b")
GPUS = tuple(g.id for g in load_catalog().gpus(None))


def _settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@st.composite
def layouts(draw):
    """A structurally valid layout (the estimate accepts it) that fits its GPUs, and an engine."""
    name = draw(st.sampled_from(PRESETS))
    m = load_model(name)
    gpu = load_catalog().gpu(draw(st.sampled_from(GPUS)))
    weights = draw(st.sampled_from([w for w in WEIGHT_PRECISIONS if gpu.supports_weights(w)]))
    kv = draw(st.sampled_from(KV_PRECISIONS))
    tp = draw(st.sampled_from([t for t in (1, 2, 4, 8) if t <= gpu.node_gpus and m.num_heads % t == 0]))
    pp = draw(st.sampled_from([p for p in (1, 2, 3, 4) if p <= m.num_layers]))
    dp = draw(st.sampled_from([1, 2])) if m.is_moe else 1
    ep = draw(st.sampled_from([e for e in (1, 2, 4, 8) if (tp * dp) % e == 0 and m.num_experts % e == 0])) \
        if m.is_moe else 1
    isl = draw(st.sampled_from([200, 1000, 4000]))
    batch = dp * draw(st.integers(1, 32))
    return dict(model=name, gpu=gpu.id, tp=tp, pp=pp, dp=dp, ep=ep, weights=weights, kv=kv, isl=isl, osl=200,
                batch=batch), draw(st.sampled_from(engines.ENGINES_SERVING))


def _estimate(lay: dict) -> dict | None:
    try:
        d = planner.estimate(lay["model"], lay["gpu"], **{k: v for k, v in lay.items() if k not in ("model", "gpu")})
        if not d.fits:
            return None
        return d.to_dict()
    except InputError:
        return None


def _check_export(d: dict, engine: str) -> None:
    """Export `d` with `engine` and check it against the matrix and the recorded flag definitions."""
    inp = d.get("inputs") or {**d["parallelism"], **d["precision"]}
    gpu = d["gpu"] if isinstance(d["gpu"], str) else d["gpu"]["id"]
    runs = engines.engines_for(gpu, inp["weights"], inp["kv"], inp["tp"], inp["pp"], inp["ep"], inp.get("dp", 1),
                               bool(support.speculative(d)))
    reasons = support.check(d, engine)
    assert (engine in runs) == (not reasons), (engine, runs, reasons)  # search predicate == export refusal
    if reasons:
        with pytest.raises(InputError, match=f"{engine} .* cannot run this plan") as err:
            planner.export(d, engine)
        assert "\n" not in str(err.value)
        return
    ex = planner.export(d, engine)
    files = checked_commands(engine, ex)
    doc = engine_doc(engine)
    kv_emitted = doc["kv"][engines.kv_as_run(engine, inp["kv"])]
    if engine == "trtllm":
        options = yaml.safe_load(files["extra-llm-api-options.yaml"])
        assert set(yaml_keys(options)) <= {k["name"] for k in doc["yaml_key"]}
        assert options["kv_cache_config"].get("dtype", "auto") == kv_emitted
    else:  # the KV cache the matrix judged is the one the command asks for
        assert ex.argv[ex.argv.index("--kv-cache-dtype") + 1] == kv_emitted, shlex.join(ex.argv)


def _random_layouts(n: int) -> None:
    seen = {"checked": 0}

    @_settings(n)
    @given(layouts())
    def run(case):
        lay, engine = case
        d = _estimate(lay)
        assume(d is not None)
        _check_export(d, engine)
        seen["checked"] += 1

    run()
    assert seen["checked"] >= n // 4  # most drawn layouts are valid: the property is not vacuous


def test_random_layouts_meet_the_matrix_and_the_flag_records():
    _random_layouts(40)


@pytest.mark.slow
def test_random_layouts_meet_the_matrix_and_the_flag_records_many():
    _random_layouts(600)


@st.composite
def plan_requests(draw):
    model = draw(st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "gemma-2-27b"]))
    gpus = draw(st.lists(st.sampled_from(["a100-80gb", "l40s", "h100-sxm", "mi300x", "b200"]), min_size=1,
                         max_size=2, unique=True))
    kv = draw(st.lists(st.sampled_from(["bf16", "fp8", "int8"]), min_size=1, max_size=2, unique=True))
    engine = draw(st.sampled_from([None, *engines.ENGINES_SERVING]))
    return dict(model=model, gpus=",".join(gpus), kv=",".join(kv), engine=engine, isl=draw(st.sampled_from([500, 3000])),
                osl=200, max_gpus=8, time_limit_s=20)


def _random_plans(n: int) -> None:
    seen = {"planned": 0}

    @_settings(n)
    @given(plan_requests())
    def run(req):
        try:
            # colocated plans: one layout to judge (disaggregated exports: tests/export/test_disagg.py)
            d = planner.plan(**req, disagg="off").to_dict()
        except InfeasibleError as err:
            if req["engine"] is not None and str(err).startswith("no plan"):
                assert "without --engine: " in str(err)
            return
        e = d["serving_engine"]
        assert e["id"] in e["engines_that_run_it"]
        assert e["id"] == (req["engine"] or e["engines_that_run_it"][0])
        assert e["engines_that_run_it"] == [x for x in engines.PREFERENCE if not support.check(d, x)]
        _check_export(d, e["id"])
        seen["planned"] += 1

    run()
    assert seen["planned"] >= 1


def test_random_plans_name_an_engine_that_runs_them():
    _random_plans(4)


@pytest.mark.slow
def test_random_plans_name_an_engine_that_runs_them_many():
    _random_plans(40)


def test_the_checker_fails_when_the_search_and_the_export_disagree(monkeypatch):
    d = planner.estimate("llama-3.1-8b", "a100-80gb", batch=4, isl=1000, osl=200, kv="fp8").to_dict()
    _check_export(d, "sglang")  # SGLang runs an fp8 KV cache on Ampere
    _check_export(d, "vllm")  # vLLM does not, and the export refuses it
    monkeypatch.setattr(engines, "engines_for", lambda *a: engines.ENGINES_SERVING)  # a search offering it anyway
    with pytest.raises(AssertionError):
        _check_export(d, "vllm")
