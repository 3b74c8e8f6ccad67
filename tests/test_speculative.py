"""Speculative decoding as a plan decision (planner/speculative.py; `plan`/`frontier` --spec-draft --spec-alpha):
the plan takes a draft when it pays (memory-bound decode, high acceptance, small draft), keeps no draft when it
does not (low acceptance, no memory for the draft), says why, and agrees with estimate, simulate and export."""
from __future__ import annotations

import json

import jsonschema
import pytest
from click.testing import CliRunner

from planner import api
from planner.catalog import load_model
from planner.cli import main
from planner.errors import InputError
from planner.perf.estimate import Config, SpecDecode, estimate
from planner.plan import plan_schema
from planner.specs.workload import Workload

# colocated plans: the draft decision is the colocated search's (a disaggregated plan's pools run no draft)
BASE = dict(model="llama-3.1-70b", isl=1000, osl=200, gpus="h100-sxm", weights="fp8", kv="fp8", disagg="off")


def _plan(**kw):
    return api.plan(**{**BASE, **kw}).to_dict()


def test_draft_chosen_when_it_pays_and_the_plan_says_why():
    d = _plan(tpot_ms=30, spec_draft="llama-3.1-8b", spec_alpha=0.8)
    jsonschema.validate(d, plan_schema())
    s, choice = d["speculative"], d["speculative_choice"]
    assert s["draft"] == "llama-3.1-8b" and 1 <= s["gamma"] <= 8 and s["alpha"] == 0.8
    assert s["expected_tokens_per_step"] == pytest.approx((1 - 0.8 ** (s["gamma"] + 1)) / 0.2, abs=1e-6)
    cands = choice["candidates"]
    assert len(cands) == 9 and cands[0]["draft"] is None  # no draft + γ 1..8
    chosen = next(c for c in cands if c["gamma"] == s["gamma"])
    # the chosen candidate is the cheapest, and strictly cheaper than no draft
    assert chosen["usd_per_million_output_tokens"] == min(c["usd_per_million_output_tokens"] for c in cands)
    assert chosen["usd_per_million_output_tokens"] < cands[0]["usd_per_million_output_tokens"]
    assert d["cost"]["usd_per_million_output_tokens"] == chosen["usd_per_million_output_tokens"]
    assert "less than" in choice["reason"] and "without a draft" in choice["reason"]
    # the plan's metrics are the estimate of that very layout with that draft
    e = estimate(load_model("llama-3.1-70b"),
                 Config(gpu=api._catalog(None).gpu("h100-sxm"), tp=d["parallelism"]["tp"], pp=d["parallelism"]["pp"],
                        batch=d["batch"], weights="fp8", kv="fp8",
                        layers_per_stage=tuple(d["placement"]["layers_per_stage"]),
                        spec=SpecDecode(load_model("llama-3.1-8b"), s["gamma"], 0.8)),
                 Workload(isl=1000, osl=200), api._catalog(None).perf)
    assert d["metrics"]["tpot_s"] == pytest.approx(e.tpot_s, rel=1e-5) and e.tpot_s <= 0.030
    assert d["cost"]["usd_per_million_output_tokens"] == pytest.approx(e.usd_per_million_output_tokens, rel=1e-5)


def test_draft_makes_an_unreachable_speed_reachable():
    with pytest.raises(Exception, match="tok/s/user"):
        _plan(tpot_ms=12)
    d = _plan(tpot_ms=12, spec_draft="llama-3.1-8b", spec_alpha=0.8)
    assert d["speculative"] is not None and d["metrics"]["tpot_s"] <= 0.012
    assert "without a draft no plan is feasible" in d["speculative_choice"]["reason"]


def test_no_draft_at_low_acceptance():
    d = _plan(tpot_ms=30, spec_draft="llama-3.1-8b", spec_alpha=0.3)
    assert d["speculative"] is None
    c = d["speculative_choice"]
    assert c["chosen"] is None and c["reason"].startswith("no draft: the best draft candidate")
    plain = _plan(tpot_ms=30)
    assert d["cost"] == plain["cost"] and d["parallelism"] == plain["parallelism"]  # the plan without drafts


def test_no_draft_when_it_does_not_fit():
    """70B in bf16 on two H100s leaves ~7 GB per GPU: the 8B draft's 8 GB per GPU does not fit beside it."""
    kw = dict(BASE, weights="bf16", kv="bf16", tp=[2], pp=[1], max_gpus=2, tpot_ms=40, max_model_len=1200)
    d = api.plan(**kw, spec_draft="llama-3.1-8b", spec_alpha=0.9).to_dict()
    assert d["speculative"] is None
    assert all(not c["feasible"] for c in d["speculative_choice"]["candidates"][1:])
    assert "no draft candidate is feasible" in d["speculative_choice"]["reason"]
    assert "memory" in d["speculative_choice"]["candidates"][1]["infeasible"]
    # with the room of four GPUs the same draft pays
    roomy = api.plan(**{**kw, "tp": [4], "max_gpus": 4}, spec_draft="llama-3.1-8b", spec_alpha=0.9).to_dict()
    assert roomy["speculative"]["draft"] == "llama-3.1-8b"


def test_plans_with_drafts_are_deterministic():
    kw = dict(tpot_ms=30, spec_draft="llama-3.1-8b", spec_alpha=0.8)
    assert json.dumps(_plan(**kw), sort_keys=True) == json.dumps(_plan(**kw), sort_keys=True)


def test_without_spec_draft_the_plan_has_no_speculative_keys():
    d = _plan(tpot_ms=30)
    assert "speculative" not in d and "speculative_choice" not in d


def test_moe_verification_touches_the_experts_of_gamma_plus_one_tokens(catalog):
    """Mixtral-8x7B (8 experts, top 2) at batch 1 reads the 2 experts one token touches; verifying 4 tokens reads
    the 8 · (1 − (6/8)^4) = 5.47 experts they touch on average."""
    from planner.perf.estimate import hardware, step_terms

    m = load_model("mixtral-8x7b")
    gpu = catalog.gpu("h100-sxm")
    p = catalog.perf.for_gpu(gpu.id, gpu.family)
    hw = hardware(gpu, "bf16", 2)
    one, four = (step_terms(m, hw, p, tp=2, ep=1, weight_bytes=2, kv_bytes=2, micro_batch=1, isl=1000, osl=200,
                            tokens_per_seq=q) for q in (1, 4))
    extra_experts = 8 * (1 - (6 / 8) ** 4) - 2
    # the weight bytes read grow by exactly the extra experts' weights (KV writes: 3 more tokens' worth)
    kv_token = m.kv_elements_per_token_per_layer * 2 / 2
    grown = float(four.decode_layer.bytes) - float(one.decode_layer.bytes) - 3 * kv_token
    assert grown == pytest.approx(extra_experts * m.expert_params * 2 / 2, rel=1e-9)


def test_frontier_weighs_drafts_per_point():
    fr = api.frontier(**BASE, spec_draft="llama-3.1-8b", spec_alpha=0.8, speeds=(20.0, 33.3, 60.0))
    plain = api.frontier(**BASE, speeds=(20.0, 33.3, 60.0))
    assert fr["speculative"] == {"drafts": ["llama-3.1-8b"], "alpha": 0.8, "gammas": list(range(1, 9))}
    assert any(p["speculative"] is not None for p in fr["points"])
    # the drafts' frontier dominates the plain one: at every plain point's speed, a point as fast costs no more
    for q in plain["points"]:
        assert any(p["tokens_per_s_per_user"] >= q["tokens_per_s_per_user"] - 1e-9
                   and p["usd_per_million_output_tokens"] <= q["usd_per_million_output_tokens"] + 1e-9
                   for p in fr["points"])
    assert "speculative" not in plain and all("speculative" not in p for p in plain["points"])


def test_spec_plan_replays_in_simulate_and_exports_where_an_engine_runs_it(tmp_path):
    d = _plan(tpot_ms=30, spec_draft="llama-3.1-8b", spec_alpha=0.8)
    # simulate replays the plan's draft and γ (acceptance draws at α); at a trickle of load each request decodes
    # alone, so its TPOT is the batch-1 estimate of that layout with that draft
    sim = api.simulate(d, rate_rps=0.05, requests=40, seed=1)
    assert sim["plan"]["speculative"] == {k: d["speculative"][k] for k in ("draft", "gamma", "alpha")}
    e1 = api.estimate("llama-3.1-70b", "h100-sxm", tp=d["parallelism"]["tp"], batch=1, isl=1000, osl=200,
                      weights="fp8", kv="fp8", spec_draft="llama-3.1-8b", spec_gamma=d["speculative"]["gamma"],
                      spec_alpha=0.8)
    assert sim["tpot_s"]["p50"] == pytest.approx(e1.tpot_s, rel=0.05)
    x = api.export(d, "sglang")
    assert "STANDALONE" in x.argv and str(d["speculative"]["gamma"]) in x.argv
    with pytest.raises(InputError, match="draft"):
        api.export(d, "vllm")


@pytest.mark.parametrize("args, message", [
    (["--spec-alpha", "0.8"], "--spec-alpha needs --spec-draft"),
    (["--spec-draft", "llama-3.1-8b", "--spec-alpha", "1.0"], "--spec-alpha must be a number in [0, 1)"),
    (["--spec-draft", "mixtral-8x7b"], "vocabulary"),
    (["--spec-draft", "no-such-model"], "no-such-model"),
    (["--spec-draft", ","], "--spec-draft is empty"),
])
def test_bad_spec_flags_exit_2_in_one_line(args, message):
    r = CliRunner().invoke(main, ["plan", "--model", "llama-3.1-70b", "--isl", "1000", "--osl", "200", "--gpus",
                                  "h100-sxm", *args])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1


def test_cli_prints_the_decision(tmp_path):
    r = CliRunner().invoke(main, ["plan", "--model", "llama-3.1-70b", "--isl", "1000", "--osl", "200", "--gpus",
                                  "h100-sxm", "--weights", "fp8", "--kv", "fp8", "--tpot-ms", "30",
                                  "--spec-draft", "llama-3.1-8b", "--spec-alpha", "0.8", "--disagg", "off"])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.strip().startswith("speculative"))
    assert "llama-3.1-8b gamma=" in line and "without a draft" in line


def test_request_file_keys(tmp_path):
    f = tmp_path / "req.toml"
    f.write_text('model = "llama-3.1-70b"\nisl = 1000\nosl = 200\ngpus = "h100-sxm"\nweights = "fp8"\nkv = "fp8"\n'
                 'tpot_ms = 30\nspec_draft = ["llama-3.1-8b"]\nspec_alpha = 0.8\ndisagg = "off"\n', encoding="utf-8")
    d = api.plan(str(f)).to_dict()
    assert d["speculative"]["draft"] == "llama-3.1-8b"
    f.write_text('model = "llama-3.1-70b"\nisl = 1000\nosl = 200\nspec_draft = "llama-3.1-8b"\nspec_alpha = 1.5\n',
                 encoding="utf-8")
    with pytest.raises(InputError, match="spec_alpha"):
        api.plan(str(f))


def test_with_a_demand_the_draft_must_save_replicas_and_the_simulation_confirms_it():
    """With a demand the objective is the fleet's $/h: at 2 req/s one TP2 replica serves it with or without the draft
    (a tie keeps no draft); at 20 req/s the draft saves GPUs, and the confirming simulation replays it."""
    kw = dict(tpot_ms=30, ttft_ms=1000, spec_draft="llama-3.1-8b", spec_alpha=0.8)
    low = _plan(rate_rps=2, **kw)
    assert low["speculative"] is None and "costs the same" in low["speculative_choice"]["reason"]
    high = _plan(rate_rps=20, **kw)
    jsonschema.validate(high, plan_schema())
    assert high["speculative"] is not None
    plain = next(c for c in high["speculative_choice"]["candidates"] if c["draft"] is None)
    assert high["cost"]["usd_per_million_output_tokens"] < plain["usd_per_million_output_tokens"]
    assert high["simulation"]["tpot_s"]["p99"] <= 0.030 and high["simulation"]["ttft_s"]["p99"] <= 1.0
    # `planner simulate` of the whole plan at its demand replays the draft and meets the SLOs at p99 too
    again = api.simulate(high)
    assert again["plan"]["speculative"] == {k: high["speculative"][k] for k in ("draft", "gamma", "alpha")}
    assert again["tpot_s"]["p99"] <= 0.030 and again["ttft_s"]["p99"] <= 1.0
    # and the recorded confirmation (one replica at its share after a warm-up, search/percentile.py) replays
    sim = high["simulation"]
    one = api.simulate(high, rate_rps=sim["rate_rps"] / sim["replicas"], replicas=sim["simulated_replicas"],
                       requests=sim["warmup_requests"] + sim["requests"], warmup_requests=sim["warmup_requests"],
                       seed=sim["seed"])
    assert one["tpot_s"] == sim["tpot_s"]


def test_moe_target_plans_with_a_draft(tmp_path):
    """Mixtral-8x7B with a small dense draft of its vocabulary (a synthetic config.json): the search's spec rows run
    through CP-SAT and the chosen plan re-verifies against estimate (verification over γ+1 tokens touching more
    experts), whichever candidate wins."""
    cfg = {"architectures": ["MistralForCausalLM"], "hidden_size": 1024, "num_hidden_layers": 4,
           "num_attention_heads": 8, "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 4096,
           "hidden_act": "silu", "vocab_size": 32000, "max_position_embeddings": 32768,
           "tie_word_embeddings": False}
    (tmp_path / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    d = api.plan(model="mixtral-8x7b", isl=1000, osl=200, gpus="h100-sxm", weights="fp8", kv="fp8", tpot_ms=15,
                 spec_draft=str(tmp_path / "config.json"), spec_alpha=0.8).to_dict()
    jsonschema.validate(d, plan_schema())
    cands = d["speculative_choice"]["candidates"]
    assert len(cands) == 9 and any(c["feasible"] for c in cands)
    assert d["metrics"]["tpot_s"] <= 0.015
    chosen = d["speculative_choice"]["chosen"]
    assert (d["speculative"] is None) == (chosen is None)


def test_engine_without_draft_models_plans_without_one():
    d = _plan(tpot_ms=30, engine="vllm", spec_draft="llama-3.1-8b", spec_alpha=0.8)
    jsonschema.validate(d, plan_schema())
    assert d["speculative"] is None and d["speculative_choice"]["candidates"] == []
    assert "vLLM" in d["speculative_choice"]["reason"] and "draft" in d["speculative_choice"]["reason"]
    assert d["serving_engine"]["id"] == "vllm"


def test_frontier_points_with_a_draft_name_an_engine_that_runs_it():
    fr = api.frontier(**BASE, spec_draft="llama-3.1-8b", spec_alpha=0.8, speeds=(33.3, 60.0))
    for p in fr["points"]:
        assert (p["engine"] != "vllm") if p["speculative"] else True
    assert any(p["speculative"] for p in fr["points"])


def test_html_report_states_the_decision(tmp_path):
    from planner.report_html import report_html

    d = _plan(tpot_ms=30, spec_draft="llama-3.1-8b", spec_alpha=0.8)
    page = report_html(d)
    assert "speculative decoding" in page and "without a draft" in page
    assert "speculative decoding" not in report_html(_plan(tpot_ms=30))


def test_the_smaller_draft_wins_at_the_same_acceptance():
    """Llama-3.2-1B drafts for the 70B at a sixth of the 8B's cost per pass: at the same α it is the better draft."""
    d = _plan(tpot_ms=30, spec_draft="llama-3.1-8b,llama-3.2-1b", spec_alpha=0.8)
    assert d["speculative"]["draft"] == "llama-3.2-1b"
    cands = d["speculative_choice"]["candidates"]
    assert len(cands) == 17 and d["speculative_choice"]["drafts"] == ["llama-3.1-8b", "llama-3.2-1b"]
    best = {name: min(c["usd_per_million_output_tokens"] for c in cands if c["draft"] == name)
            for name in ("llama-3.1-8b", "llama-3.2-1b")}
    assert best["llama-3.2-1b"] < best["llama-3.1-8b"] < cands[0]["usd_per_million_output_tokens"]


def test_estimate_and_simulate_agree_on_a_spec_plan_at_full_load():
    """Offered 1.5x the plan's capacity, the replica runs at its full batch: the simulated TPOT p50 and throughput
    (acceptance draws at α, γ+1-token verification steps, γ draft passes) match the plan's steady-state estimate."""
    d = _plan(tpot_ms=30, spec_draft="llama-3.2-1b", spec_alpha=0.8)
    thr = d["metrics"]["output_tokens_per_s"]
    s = api.simulate(d, rate_rps=1.5 * thr / 200, requests=1500, seed=0)
    assert s["tpot_s"]["p50"] == pytest.approx(d["metrics"]["tpot_s"], rel=0.05)
    assert s["throughput"]["output_tokens_per_s"] == pytest.approx(thr, rel=0.08)  # fill and drain included


def test_a_disaggregated_plan_says_it_runs_no_draft():
    d = _plan(tpot_ms=30, rate_rps=10, ttft_ms=1000, spec_draft="llama-3.2-1b", spec_alpha=0.8, disagg="on")
    jsonschema.validate(d, plan_schema())
    assert "pools" in d and d["speculative"] is None
    c = d["speculative_choice"]
    assert c["chosen"] is None and c["reason"].startswith("no draft: the disaggregated plan chosen runs none")
    assert len(c["candidates"]) == 9


# ---- the figures of a plan are those of the engine it names (issues #14, #17) ----------------------------------
def _sglang_catalog(step_overhead_s: float):
    """The shipped catalog with SGLang's step overhead changed (its shipped profile equals vLLM's)."""
    from dataclasses import replace

    cat = api._catalog(None)
    return replace(cat, perf=cat.perf.with_profiles({"sglang": {"step_overhead_s": step_overhead_s}}, "test"))


def _as_estimated(d, catalog, engine):
    """`estimate --engine ENGINE` of the plan's own layout, draft and γ."""
    s, par = d["speculative"], d["parallelism"]
    return api.estimate("llama-3.1-70b", d["gpu"], batch=d["batch"], isl=1000, osl=200, tp=par["tp"], pp=par["pp"],
                        weights="fp8", kv="fp8", layers_per_stage=tuple(d["placement"]["layers_per_stage"]),
                        spec_draft=s["draft"], spec_gamma=s["gamma"], spec_alpha=s["alpha"], catalog=catalog,
                        engine=engine)


@pytest.mark.parametrize("overhead", [None, 0.0025])
def test_a_draft_plan_names_sglang_and_carries_sglangs_figures(overhead):
    cat = api._catalog(None) if overhead is None else _sglang_catalog(overhead)
    d = _plan(tpot_ms=30, spec_draft="llama-3.1-8b", spec_alpha=0.8, catalog=cat)
    jsonschema.validate(d, plan_schema())
    assert d["speculative"] is not None  # vLLM 0.11.0 runs no draft model: SGLang runs the plan
    assert d["serving_engine"]["id"] == "sglang" and d["perf_profile"]["engine"] == "sglang"
    assert "sglang" in d["perf_profile"]["tables"]
    e = _as_estimated(d, cat, "sglang")
    assert d["metrics"]["tpot_s"] == pytest.approx(e.tpot_s, rel=1e-5) and e.tpot_s <= 0.030
    assert d["metrics"]["ttft_s"] == pytest.approx(e.ttft_s, rel=1e-5)
    assert d["cost"]["usd_per_million_output_tokens"] == pytest.approx(e.usd_per_million_output_tokens, rel=1e-5)
    how = d["serving_engine"]["chosen_by"]
    if overhead is None:  # the shipped profiles agree: the plan is relabelled, not searched again
        assert "equal SGLang's" in how
    else:  # SGLang's own profile differs: searched again under it, and its figures are not vLLM's
        assert "re-planned with --engine sglang" in how
        assert e.tpot_s != pytest.approx(_as_estimated(d, cat, "vllm").tpot_s, rel=1e-3)


def test_a_draft_plan_no_sglang_plan_meets_falls_back_to_vllm():
    # SGLang 20 ms slower per step: nothing it runs meets 30 ms TPOT; vLLM (the search's profile) runs no draft
    d = _plan(tpot_ms=30, spec_draft="llama-3.1-8b", spec_alpha=0.8, catalog=_sglang_catalog(0.02))
    jsonschema.validate(d, plan_schema())
    assert d["serving_engine"]["id"] == "vllm" and d["perf_profile"]["engine"] == "vllm"
    assert d["speculative"] is None and d["metrics"]["tpot_s"] <= 0.030
    assert "re-planned with --engine vllm" in d["serving_engine"]["chosen_by"]
