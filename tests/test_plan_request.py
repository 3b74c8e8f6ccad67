"""planner/plan_request.py: the library reads, validates and merges a plan request (TOML file or dict) with
keyword options, so `planner.plan(file, **options)` is what `planner plan FILE --flags` is; errors name the file
and key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import planner
from planner import plan_request
from planner.cli import main
from planner.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_library_plan_of_a_request_file_with_an_override_is_the_cli_plan():
    path = EXAMPLES / "long-context-32k.toml"
    lib = planner.plan(str(path), rate_rps=3).to_dict()
    r = CliRunner().invoke(main, ["plan", str(path), "--rate-rps", "3", "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == lib
    assert lib["workload"]["rate_rps"] == 3


def test_a_dict_request_is_the_file_request(tmp_path):
    doc = {"model": "llama-3.1-8b", "isl": 1000, "osl": 200, "rate_rps": 2.0, "gpus": ["h100-sxm"],
           "time_limit_s": 5}
    f = tmp_path / "r.toml"
    f.write_text('model = "llama-3.1-8b"\nisl = 1000\nosl = 200\nrate_rps = 2.0\ngpus = ["h100-sxm"]\n'
                 'time_limit_s = 5\n')
    assert planner.plan(doc).to_dict() == planner.plan(f).to_dict()
    # ... and keyword options alone, with the model first
    assert planner.plan("llama-3.1-8b", isl=1000, osl=200, rate_rps=2.0, gpus="h100-sxm",
                        time_limit_s=5).to_dict() == planner.plan(doc).to_dict()


def test_merge_overrides_the_same_quantity_in_its_other_unit():
    doc = plan_request.read({"model": "m", "isl": 1, "osl": 2, "rate_rps": 3.0, "tpot_ms": 50})
    out = plan_request.merge(doc, {"output_tokens_per_s": 100.0, "min_tokens_per_s_user": None})
    assert out["output_tokens_per_s"] == 100.0 and "rate_rps" not in out
    assert out["tpot_ms"] == 50  # None does not override
    out = plan_request.merge(doc, {"min_tokens_per_s_user": 20.0})
    assert "tpot_ms" not in out and out["min_tokens_per_s_user"] == 20.0


def test_gpu_limits_as_flags_become_a_table():
    out = plan_request.merge({}, {"model": "m", "isl": 1, "osl": 1, "max_gpus_per_type": ("h100-sxm=8", "a100=0")})
    assert out["max_gpus_per_type"] == {"h100-sxm": 8, "a100": 0}
    with pytest.raises(InputError, match="expects TYPE=N"):
        plan_request.merge({}, {"model": "m", "isl": 1, "osl": 1, "max_gpus_per_type": ("h100-sxm",)})


def test_errors_name_the_file_and_the_key(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('model = "llama-3.1-8b"\nisl = 0\nosl = 10\n')
    with pytest.raises(InputError, match=r"bad\.toml: isl must be an integer from 1"):
        planner.plan(f)
    f.write_text('model = "llama-3.1-8b"\nisl = 10\nosl = 10\nratee_rps = 1\n')
    with pytest.raises(InputError, match=r"bad\.toml: unknown key 'ratee_rps' \(did you mean 'rate_rps'"):
        planner.plan(f)
    f.write_text('model = "no-such-model"\nisl = 10\nosl = 10\n')
    with pytest.raises(InputError, match=r"bad\.toml: model: "):
        planner.plan(f)
    with pytest.raises(InputError, match=r"^request: unknown key 'foo'"):
        planner.plan({"model": "llama-3.1-8b", "isl": 1, "osl": 1, "foo": 1})
    with pytest.raises(InputError, match=r"missing --osl \(flag, or key 'osl' in .*bad\.toml\)"):
        f.write_text('model = "llama-3.1-8b"\nisl = 10\n')
        planner.plan(f)


def test_relative_paths_in_a_request_file_are_relative_to_it(tmp_path):
    f = tmp_path / "sub" / "r.toml"
    f.parent.mkdir()
    f.write_text('model = "models/my.json"\ncatalog = "cat.toml"\nisl = 1\nosl = 1\n')
    doc = plan_request.read_file(f)
    assert doc["model"] == str(f.parent / "models/my.json") and doc["catalog"] == str(f.parent / "cat.toml")


def test_is_request_tells_a_request_from_a_model():
    assert plan_request.is_request("x/chat.toml") and plan_request.is_request(Path("a.toml"))
    assert plan_request.is_request({"model": "m"})
    assert not plan_request.is_request("llama-3.1-8b") and not plan_request.is_request("config.json")


def test_resolve_groups_the_request_into_frozen_dataclasses():
    r = plan_request.resolve({"model": "llama-3.1-8b", "isl": 1000, "osl": 200, "rate_rps": 2.0, "ttft_ms": 500,
                              "min_tokens_per_s_user": 20, "gpus": ["h100-sxm", "l40s"], "pp": [1, 2],
                              "max_gpus_per_type": {"l40s": 8}, "time_limit_s": 5, "engine": "sglang"},
                             {"max_gpus": 16, "seed": 3})
    assert r.model == "llama-3.1-8b" and r.engine == "sglang" and r.seed == 3 and r.slo_percentile is None
    assert (r.workload.isl, r.workload.osl, r.workload.rate_rps) == (1000, 200, 2.0)
    assert r.workload.demand_output_tokens_per_s == 400.0  # 2 req/s x 200 output tokens
    assert r.slo.ttft_s == 0.5 and r.slo.tpot_s == pytest.approx(1 / 20)
    assert r.limits == plan_request.SearchLimits(gpus=("h100-sxm", "l40s"), pp=(1, 2), max_gpus=16,
                                                 max_gpus_per_type={"l40s": 8}, time_limit_s=5)
    with pytest.raises(AttributeError):
        r.limits.max_gpus = 3  # frozen: built once at the edge, trusted inside


def test_p99_targets_tighten_the_flat_targets_and_a_frontier_drops_the_speed_keys():
    args = {"model": "m", "isl": 10, "osl": 10, "ttft_ms": 800, "ttft_p99_ms": 500, "tpot_ms": 40,
            "tpot_p99_ms": 50, "slo_percentile": 90, "seed": 1}
    r = plan_request.build(args)
    assert r.slo.ttft_s == 0.5 and r.slo.tpot_s == 0.04  # the p99 TTFT is tighter; the p99 TPOT is looser
    assert r.slo_percentile == 90.0
    r = plan_request.build({**args, "tpot_ms": None, "min_tokens_per_s_user": 25})  # 40 ms/token > 30 ms
    assert r.slo.tpot_s == pytest.approx(0.040)
    r = plan_request.build({**args, "tpot_ms": None, "min_tokens_per_s_user": 10, "tpot_p99_ms": 30})
    assert r.slo.tpot_s == pytest.approx(0.030)  # 100 ms/token loosened to the p99 target's 30 ms
    f = plan_request.build(args, frontier=True)
    assert f.slo.ttft_s == 0.5 and f.slo.tpot_s == pytest.approx(3 / 100)  # the default speed, 33.3 tok/s/user
    assert f.slo_percentile is None and f.seed is None


@pytest.mark.parametrize("key, value, message", [
    ("seed", -1, "--seed must be a non-negative integer"),
    ("seed", True, "--seed must be a non-negative integer"),
    ("slo_percentile", 100, "--slo-percentile must be a number from 50"),
    ("ttft_p99_ms", -5, "--ttft-p99-ms must be > 0"),
    ("rate_rps", 0, "--rate-rps must be > 0"),
])
def test_build_refuses_bad_values_naming_the_flag(key, value, message):
    with pytest.raises(InputError, match=message):
        plan_request.build({"model": "m", "isl": 10, "osl": 10, key: value})


def test_a_plan_request_is_taken_as_is_and_keywords_beside_it_are_refused():
    r = plan_request.resolve("llama-3.1-8b", {"isl": 10, "osl": 10})
    assert plan_request.resolve(r, {}) is r
    with pytest.raises(InputError, match="inside the PlanRequest"):
        plan_request.resolve(r, {"isl": 20})


# ---- one fixed configuration (`planner estimate`) ------------------------------------------------------------------
def test_estimate_takes_a_layout_and_a_workload_and_the_flag_keywords_build_the_same_request():
    from planner.perf.estimate import SpecDecode
    from planner.specs.layout import ReplicaLayout
    from planner.specs.workload import Workload

    layout = ReplicaLayout(tp=4, pp=2, ep=1, dp=1, batch=16, weights="fp8", kv="fp8", layers_per_stage=(40, 40))
    spec = SpecDecode("llama-3.1-8b", 3, 0.8)
    by_dataclass = plan_request.estimate_request("llama-3.1-70b", "h100", layout, Workload(isl=1000, osl=200),
                                                 spec=spec, price=2.5)
    by_flags = plan_request.estimate_request("llama-3.1-70b", "h100", tp=4, pp=2, batch=16, weights="fp8", kv="fp8",
                                             layers_per_stage=[40, 40], isl=1000, osl=200, spec_draft="llama-3.1-8b",
                                             spec_gamma=3, spec_alpha=0.8, price=2.5)
    assert by_dataclass == by_flags
    assert by_flags.layout == layout and by_flags.workload == Workload(isl=1000, osl=200)
    assert by_flags.model.name == "llama-3.1-70b" and by_flags.spec.draft.name == "llama-3.1-8b"  # loaded
    a, b = planner.estimate(by_dataclass), planner.estimate("llama-3.1-70b", "h100", layout, Workload(1000, 200),
                                                            spec=spec, price=2.5)
    assert a.to_dict() == b.to_dict()
    assert (a.config.tp, a.config.pp, a.config.batch, a.config.weights, a.config.layers_per_stage,
            a.config.usd_per_hour_per_gpu, a.config.spec.draft_length) == (4, 2, 16, "fp8", (40, 40), 2.5, 3)


def test_estimate_defaults_the_weights_to_the_checkpoints_own_and_balances_the_layers():
    r = plan_request.estimate_request("deepseek-v3", "h200", tp=8, batch=1, isl=100, osl=10)
    assert r.layout.weights == "fp8" and r.layout.kv == "bf16" and r.layout.layers_per_stage == ()
    assert plan_request.estimate_request("llama-3.1-8b", "h100", batch=1, isl=100, osl=10).layout.weights == "bf16"
    e = planner.estimate("llama-3.1-8b", "h100", batch=1, isl=100, osl=10, pp=2)
    assert e.config.layers_per_stage is None and e.config.dp == 1


@pytest.mark.parametrize("call, message", [
    (lambda L, W: plan_request.estimate_request("llama-3.1-8b", "h100", L, W, tp=2), r"layout or its fields \(tp\)"),
    (lambda L, W: plan_request.estimate_request("llama-3.1-8b", "h100", L, W, isl=5), r"workload or its fields"),
    (lambda L, W: plan_request.estimate_request("llama-3.1-8b", "h100", L, W, tpp=2), "unknown estimate option"),
    (lambda L, W: plan_request.estimate_request("llama-3.1-8b", None, L, W), "missing --gpu"),
    (lambda L, W: plan_request.estimate_request("llama-3.1-8b", "h100", isl=5, osl=5), "missing --batch"),
    (lambda L, W: plan_request.estimate_request("llama-3.1-8b", "h100", L, None, osl=5), "missing --isl"),
])
def test_estimate_requests_refuse_a_dataclass_and_its_fields_together_and_name_what_is_missing(call, message):
    from planner.specs.layout import ReplicaLayout
    from planner.specs.workload import Workload

    layout = ReplicaLayout(tp=1, pp=1, ep=1, batch=1, weights="bf16", kv="bf16", layers_per_stage=())
    with pytest.raises(InputError, match=message):
        call(layout, Workload(isl=10, osl=10))


def test_a_built_estimate_request_is_taken_as_is_and_options_beside_it_are_refused():
    r = plan_request.estimate_request("llama-3.1-8b", "h100", batch=1, isl=100, osl=10)
    assert planner.estimate(r).to_dict() == planner.estimate("llama-3.1-8b", "h100", batch=1, isl=100, osl=10).to_dict()
    with pytest.raises(InputError, match="inside the EstimateRequest"):
        planner.estimate(r, batch=2)
