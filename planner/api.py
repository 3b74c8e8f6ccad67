"""The public Python API. Every CLI command is a thin wrapper over one of these functions."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import plan_request
from .catalog import Catalog, load_catalog, load_model
from .errors import InputError
from .perf.estimate import Config, Estimate
from .perf.estimate import estimate as _estimate
from .specs.layout import ReplicaLayout
from .specs.model import ModelSpec
from .specs.workload import Workload


def _catalog(catalog: Catalog | str | Path | None, price_tier: str | None = None,
             engine: str | None = None) -> Catalog:
    """The catalog, its perf parameters resolved for `engine` (default vLLM: PerfParams.with_engine)."""
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog, price_tier=price_tier)
    if engine is None and isinstance(catalog, Catalog):
        return cat  # keep the engine a caller's catalog was resolved for
    return replace(cat, perf=cat.perf.with_engine(engine))


def _with_tbo(cat: Catalog, on: bool | None) -> Catalog:
    """The catalog with two-batch overlap on or off in its perf parameters (None: as it is)."""
    if on is None or on == cat.perf.two_batch_overlap:
        return cat
    return replace(cat, perf=replace(cat.perf, two_batch_overlap=on))


def _model(model: ModelSpec | str | Path) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else load_model(model)


def estimate(model: ModelSpec | str | Path | plan_request.EstimateRequest, gpu: str | None = None,
             layout: ReplicaLayout | None = None, workload: Workload | None = None, **options) -> Estimate:
    """Latency, throughput, memory and cost of one fixed configuration: `model` on `gpu` laid out as `layout`
    (specs/layout.ReplicaLayout; `weights` None: the checkpoint's own quantization, else bf16; `layers_per_stage`
    (): balanced) serving `workload` (isl, osl; `max_model_len`, the engine's maximum sequence length, default the
    model's context: one sequence of it must fit), under `engine`'s perf profile (default vLLM). `options`: the
    other fields of `plan_request.EstimateRequest` (spec, price, redundant_experts, catalog, price_tier, engine),
    or the layout's, workload's and draft's fields by their flag names (`estimate("llama-3.1-8b", "h100",
    batch=8, isl=1000, osl=200)`). `model` may also be a built `EstimateRequest` (then nothing else)."""
    if isinstance(model, plan_request.EstimateRequest):
        if gpu is not None or layout is not None or workload is not None or options:
            raise InputError("give options inside the EstimateRequest, not beside it")
        r = model
    else:
        r = plan_request.estimate_request(model, gpu, layout, workload, **options)
    cat = _with_tbo(_catalog(r.catalog, r.price_tier, r.engine),
                    None if r.two_batch_overlap is None else r.two_batch_overlap == "on")
    lay = r.layout
    cfg = Config(gpu=cat.gpu(r.gpu), tp=lay.tp, pp=lay.pp, ep=lay.ep, batch=lay.batch, weights=lay.weights,
                 kv=lay.kv, layers_per_stage=tuple(lay.layers_per_stage) or None, spec=r.spec,
                 usd_per_hour_per_gpu=r.price, dp=lay.dp, redundant_experts=r.redundant_experts)
    return _estimate(r.model, cfg, r.workload, cat.perf)


def pool_estimate(estimate: Estimate, role: str, *, model: ModelSpec | str | None = None,
                  catalog: Catalog | str | Path | None = None, engine: str | None = None) -> dict:
    """`estimate`'s configuration as one replica of a disaggregated plan's prefill or decode pool
    (planner/disagg.py `pool_metrics`): prompts/s and latency of a prefill replica, or the decode cycle and
    requests/s of a decode replica, with its $ per million input (output) tokens and the prompt's KV transfer.
    Estimate each pool this way to evaluate a pair; `planner estimate --role prefill|decode` prints it."""
    from .disagg import pool_metrics

    cat = _with_tbo(_catalog(catalog, None, engine), True if estimate.two_batch_overlap else None)
    return pool_metrics(_model(model if model is not None else estimate.model), estimate, role, cat.perf)


# ---- the optimizer ------------------------------------------------------------------------------------------------
def search_request(request: plan_request.PlanRequest):
    """The search's validated `Request` for a `PlanRequest` (and its catalog, perf resolved for the engine)."""
    from .engines import check_engine
    from .search.space import DEFAULT_KV, DEFAULT_WEIGHTS, Request

    lim = request.limits
    cat = _catalog(request.catalog, request.price_tier, request.engine)
    mode = request.two_batch_overlap
    cat = _with_tbo(cat, None if mode in (None, "auto") else mode == "on")
    m = _model(request.model)
    request.workload.engine_max_len(m)  # ISL + OSL within the context
    split = lambda v, d: tuple(d) if v is None else tuple(x.strip() for x in (v.split(",") if isinstance(v, str) else v) if x.strip())  # noqa: E731
    per_type = {}
    for name, n in lim.max_gpus_per_type.items():
        per_type[cat.gpu(name).id] = int(n)
    req = Request(
        model=m, workload=request.workload, slo=request.slo,
        gpus=tuple(cat.gpus(None if lim.gpus is None else lim.gpus if isinstance(lim.gpus, str) else list(lim.gpus))),
        kv=split(lim.kv, DEFAULT_KV),
        # a quantized checkpoint is served at its own precision unless the user asks for others
        weights=split(lim.weights, (m.native_weights,) if m.native_weights else DEFAULT_WEIGHTS),
        pp=tuple(lim.pp) if lim.pp else None, tp=tuple(lim.tp) if lim.tp else None, max_gpus=lim.max_gpus,
        ep=tuple(lim.ep) if lim.ep else None, batches=tuple(lim.batch) if lim.batch else None,
        max_gpus_per_type=per_type, time_limit_s=lim.time_limit_s, engine=check_engine(request.engine),
        pool_space=request.pool_space or "exact",
    )
    return req, cat


def make_request(model: Any = None, /, **options):
    """`search_request` of a request given as `plan` takes it (`make_request("llama-3.1-8b", isl=1000, osl=200,
    gpus="h100-sxm")`): for scripts and tests that build a search `Request` without solving it."""
    return search_request(plan_request.resolve(model, options))


def plan(request: Any = None, /, *, timings: bool = False, **options):
    """The cheapest deployment meeting the SLOs and demand. Returns a `planner.plan.Plan` (`.to_dict()` for JSON).
    Raises `InfeasibleError` with one reason per blocking constraint.

    `request` is a TOML request file (keys = the `planner plan` flag names with underscores), a dict of the same
    keys, the model (preset id, config.json, folder, ModelSpec) or a `planner.plan_request.PlanRequest`; `options`
    are the same keys and override it: `plan("examples/chat-70b.toml", rate_rps=3)` or `plan("llama-3.1-8b",
    isl=1000, osl=200, rate_rps=3)`.

    Latency targets (`ttft_ms`, `tpot_ms`) hold at `slo_percentile` (default 99; 50 = medians). With a demand the
    optimizer bounds queueing (search/queueing.py), raises the engine concurrency to the largest batch meeting
    the TPOT target, and confirms the plan by simulating it at the demand as `planner simulate` would, tightening
    and re-solving on a miss (search/percentile.py); the plan records that simulation. `ttft_p99_ms` and
    `tpot_p99_ms` (older names) tighten `ttft_ms` / `tpot_ms`.

    `disagg` ("auto", the default, "on" or "off") also considers a disaggregated plan: a prefill pool and a decode
    pool with the KV cache sent between them (planner/disagg.py), chosen when cheaper ("on": always; "off": never).

    With `timings` the plan's `solver` says what the call spent: `total_s` (this call, request to Plan) and each
    phase as measured where it ran (plan.Plan.to_dict)."""
    began = time.perf_counter()
    out = _plan_request(request, timings, options)
    return replace(out, total_s=time.perf_counter() - began) if timings else out


def _plan_request(request: Any, timings: bool, options: dict):
    """`plan` without its total time."""
    preq = plan_request.resolve(request, options)
    first = _plan_tbo(preq, timings)
    if preq.engine is not None:
        return first
    # Without --engine the search ran under one perf profile (vLLM's unless a given catalog says otherwise) over
    # every engine's rows; a plan naming another engine (a draft model, fp8 KV on Ampere) must carry that engine's
    # figures. Where the two profiles resolve to the same parameters on every catalog GPU the figures are already
    # the named engine's: relabel. Otherwise re-plan with --engine set to the named engine, else (when that
    # engine meets nothing) to the profile's own engine.
    d = first.to_dict()
    named, used = d["serving_engine"]["id"], d["perf_profile"]["engine"]
    if named == used:
        return first
    from .engines import ENGINE_NAMES
    from .errors import InfeasibleError

    how = (f"preference order vllm > sglang > trtllm picked {ENGINE_NAMES[named]} for the plan found with "
           f"{ENGINE_NAMES.get(used, used)}'s perf profile")
    cat = _catalog(preq.catalog, preq.price_tier, None)
    if cat.perf.same_terms(used, named, [(g.id, g.family) for g in cat.gpus(None)]):
        prof = d["perf_profile"]
        tables = list(cat.perf.with_engine(named).for_gpu(d["gpu"], prof["family"]).profile)
        return replace(first, perf_profile={**prof, "engine": named, "tables": tables}, chosen_by=(
            f"{how}, whose parameters equal {ENGINE_NAMES[named]}'s on every catalog GPU: the figures are "
            f"{ENGINE_NAMES[named]}'s"))
    try:
        again = _plan_tbo(replace(preq, engine=named), timings)
        why = f"{how}; re-planned with --engine {named} so the figures are {ENGINE_NAMES[named]}'s"
    except InfeasibleError:
        if used not in ENGINE_NAMES:
            raise
        again = _plan_tbo(replace(preq, engine=used), timings)
        why = (f"{how}, but no plan meets the request under {ENGINE_NAMES[named]}'s profile; re-planned with "
               f"--engine {used}, whose profile the search used")
    return replace(again, chosen_by=why)


def _plan_tbo(preq, timings: bool):
    """`_plan` with two-batch overlap decided: "on" / "off" as asked; "auto" (the default) plans SGLang requests
    for MoE models both without and with it (SGLang is the engine whose launch `planner export` turns it on:
    `--enable-two-batch-overlap`, off by default in SGLang) and keeps the cheaper (the plain one on a tie or when
    only it is feasible); other engines without it (vLLM's dual-batch overlap and TensorRT-LLM are not exported
    with it), unless a given catalog sets [perf] two_batch_overlap."""
    from .engines import check_engine
    from .errors import InfeasibleError

    if (preq.two_batch_overlap or "auto") != "auto" or check_engine(preq.engine) != "sglang":
        return _plan(preq, timings)
    if not _model(preq.model).is_moe:
        return _plan(preq, timings)
    try:
        plain = _plan(replace(preq, two_batch_overlap="off"), timings)
    except InfeasibleError:
        try:
            return _plan(replace(preq, two_batch_overlap="on"), timings)
        except InfeasibleError:
            pass
        raise  # the plain plan's reasons
    try:
        tbo = _plan(replace(preq, two_batch_overlap="on"), timings)
    except InfeasibleError:
        return plain
    return tbo if _objective(tbo) < _objective(plain) else plain


def _objective(p) -> int:
    """The plan's `solver.objective` (same request: same units), read from the plan rather than its whole JSON:
    the disaggregated pair's when it was chosen, else the colocated plan's."""
    if p.disagg is not None and p.disagg.chosen:
        return p.disagg.choice.objective
    return p.best.objective


def _plan(preq, timings: bool):
    """`plan` of a resolved request as searched: under its engine's profile (vLLM's when it names none)."""
    from .plan import Plan
    from .search.percentile import DEFAULT_SLO_PERCENTILE

    percentile = DEFAULT_SLO_PERCENTILE if preq.slo_percentile is None else preq.slo_percentile
    req, cat = search_request(preq)
    with _engine_named_in_infeasibility(req, cat):
        req, decision = _speculate(preq, req, cat, percentile)
    mode = preq.disagg or "auto"
    if mode != "off":  # the colocated plan, against the best prefill/decode pools (planner/disagg.py)
        from .disagg import decide

        colocated, outcome = decide(req, cat.perf, mode,
                                    lambda skip=None: _colocated(preq, req, cat, percentile, decision, timings,
                                                                 skip),
                                    percentile, timings, cat, preq.seed)
        if colocated is None:  # only the disaggregated plan is feasible
            return Plan(None, timings=timings, slo_percentile=percentile, disagg=outcome, chat=preq.chat)
        return replace(colocated, disagg=outcome)
    return _colocated(preq, req, cat, percentile, decision, timings)


def _colocated(preq, req, cat: Catalog, percentile: float, decision, timings: bool, skip=None):
    """The cheapest colocated (aggregated) plan of `plan`. `skip`: plan_at_percentile's (with a demand: leave
    round 1's plan unconfirmed when `skip(its objective)`)."""
    from .plan import Plan
    from .search.percentile import plan_at_percentile
    from .search.solve import search

    model = preq.model
    if req.workload.demand_output_tokens_per_s is None:  # nothing to queue for: the steady state at full batch
        with _engine_named_in_infeasibility(req, cat):
            return Plan(search(req, cat.perf), timings=timings, slo_percentile=percentile, speculative=decision,
                        chat=preq.chat)

    def plan_dict(result) -> dict:
        d = Plan(result, slo_percentile=percentile).to_dict()
        if isinstance(model, (str, Path)):
            d["model"] = str(model)
        return d

    with _engine_named_in_infeasibility(req, cat):
        conf = plan_at_percentile(req, cat.perf, percentile, plan_dict, cat,
                                  **({} if preq.seed is None else {"seed": preq.seed}), skip=skip)
    return Plan(conf.result, timings=timings, simulation=conf.simulation, slo_percentile=percentile,
                mean_batch=conf.mean_batch, speculative=decision, chat=preq.chat, simulation_s=conf.simulation_s,
                replays=conf.replays)


def _speculate(preq, req, cat, percentile: float):
    """With --spec-draft: the search request with the draft and γ planner/speculative.py chooses (none when no
    draft pays), and that decision; else (req, None)."""
    from .search.queueing import QueueTarget
    from .search.solve import search
    from .speculative import choose, refused, spec_options

    from .engines import ENGINE_NAMES, unsupported_feature, version

    opts = spec_options(req.model, preq.spec_draft, preq.spec_alpha, _model)
    if opts is None:
        return req, None
    refusal = None if req.engine is None else unsupported_feature(req.engine, "draft_model")
    if refusal is not None:  # --engine runs no separate draft model: nothing to search
        return req, refused(opts, f"no draft: {ENGINE_NAMES[req.engine]} {version(req.engine)} (--engine) runs no "
                                  f"separate draft model ({refusal['reason']})")
    w, slo = req.workload, req.slo
    demand = w.demand_output_tokens_per_s
    # with a demand, each candidate is solved as plan_at_percentile's first round is (with the queueing bound)
    queue = (None if demand is None or slo.ttft_s is None
             else QueueTarget(percentile, slo.ttft_s, demand / w.osl, {}))
    decision = choose(req, opts, lambda r: search(r, cat.perf, alternatives=False, queue=queue), demand)
    return replace(req, spec=decision.chosen), decision


@contextmanager
def _engine_named_in_infeasibility(req, cat: Catalog):
    """With --engine, an infeasible request says what the engine cannot run and what the planner finds without
    --engine (a steady-state search over every engine's rows; planner/engines.py)."""
    from .engines import ENGINE_NAMES, exclusions
    from .errors import InfeasibleError
    from .plan import Plan
    from .search.solve import search
    from .search.space import enumerate_rows

    try:
        yield
    except InfeasibleError as err:
        shapes = [(g.id, w, k) for g in req.gpus for w in req.weights if g.supports_weights(w) for k in req.kv]
        lost = [] if req.engine is None else exclusions(req.engine, shapes, draft=req.spec is not None)
        if not lost:
            raise
        try:
            other = Plan(search(replace(req, engine=None), cat.perf, alternatives=False)).to_dict()
        except InfeasibleError:
            raise err from None  # no engine's plan meets it either: the engine is not the reason
        e, par = other["serving_engine"], other["parallelism"]
        without = (f"{e['name']} runs {other['total_gpus']} x {other['gpu']} TP{par['tp']} PP{par['pp']} "
                   f"{other['precision']['weights']} weights / {other['precision']['kv']} KV at "
                   f"${other['cost']['usd_per_million_output_tokens']:.3f}/M output tokens (steady state; "
                   f"plan with --engine {e['id']} to confirm)")
        # with no row left the engine's exclusions are the whole reason (not the generic "no configuration")
        left = err.reasons if enumerate_rows(req, cat.perf.max_batch) else []
        raise InfeasibleError([f"no plan {ENGINE_NAMES[req.engine]} can run: " + "; ".join(lost),
                               *left, f"without --engine: {without}"]) from None


def _frontier_engine_infeasible(req, cat: Catalog, speeds) -> None:
    """An empty frontier under --engine whose engine lost rows: raise InfeasibleError saying so, with how many
    points the sweep reaches without --engine; return when the engine is not why."""
    from .engines import ENGINE_NAMES, exclusions
    from .errors import InfeasibleError
    from .search.solve import frontier as _frontier

    shapes = [(g.id, w, k) for g in req.gpus for w in req.weights if g.supports_weights(w) for k in req.kv]
    lost = exclusions(req.engine, shapes, draft=req.spec is not None)
    if not lost:
        return
    other = _frontier(replace(req, engine=None), cat.perf, list(speeds))
    if other:
        raise InfeasibleError([f"no plan {ENGINE_NAMES[req.engine]} can run: " + "; ".join(lost),
                               f"without --engine: {len(other)} frontier point(s), e.g. {other[0].row.gpu.id} "
                               f"{other[0].row.weights} weights / {other[0].row.kv} KV"])


DEFAULT_FRONTIER_SPEEDS = (5.0, 8.0, 12.0, 16.0, 20.0, 25.0, 33.3, 40.0, 50.0, 65.0, 80.0, 100.0, 130.0, 170.0, 220.0)


def frontier(request: Any = None, /, *, speeds: tuple[float, ...] = DEFAULT_FRONTIER_SPEEDS, progress=None,
             **options) -> dict:
    """Pareto frontier of $ per million output tokens against tokens/s/user (each point an optimal plan for a
    per-user speed target; TTFT reported, and bounded by `ttft_ms` if given). `request` and `options` as for
    `plan`. Returns a JSON-ready dict."""
    from .engines import serving_engine as engine_for
    from .numbers import round6
    from .errors import InputError, SolverLimitError
    from .numbers import is_real
    from .search.solve import frontier as _frontier
    from .search.solve import pareto
    from .speculative import spec_options, speculative_block

    # tok/s/user: below 1e-3 (one token per 17 minutes) or above 1e6 no plan is meaningful
    if not speeds or any(not (is_real(s) and 1e-3 <= s <= 1e6) for s in speeds):
        raise InputError(f"--speeds must be tok/s/user values from 0.001 to 1e6, got {', '.join(map(str, speeds))!r}")
    # the sweep sets the speed target itself; steady state: a p99 TTFT target bounds the mean TTFT
    preq = plan_request.resolve(request, options, frontier=True)
    req, cat = search_request(preq)
    pts = _frontier(req, cat.perf, list(speeds), progress=progress)
    opts = spec_options(req.model, preq.spec_draft, preq.spec_alpha, _model)
    if opts is not None:  # each draft and γ as its own sweep; the frontier of them all (no draft included)
        for spec in opts.candidates()[1:]:
            try:
                pts += _frontier(replace(req, spec=spec), cat.perf, list(speeds))
            except SolverLimitError:
                continue  # out of time for this candidate: its points are left out
        pts = pareto(pts, req.workload.demand_output_tokens_per_s)
    if not pts and req.engine is not None:
        _frontier_engine_infeasible(req, cat, speeds)
    return {
        "schema_version": 1, "model": req.model.name,
        "workload": {"isl": req.workload.isl, "osl": req.workload.osl}, "ttft_limit_s": req.slo.ttft_s,
        "speeds_tried": list(speeds),
        "points": [{
            "tokens_per_s_per_user": round6(c.estimate.tokens_per_s_per_user), "ttft_s": round6(c.estimate.ttft_s),
            "usd_per_million_output_tokens": round6(c.usd_per_million_output_tokens(req.workload.demand_output_tokens_per_s)),
            "replicas": c.replicas,
            "gpu": c.row.gpu.id, "tp": c.row.tp, "dp": c.row.dp, "pp": c.row.pp, "ep": c.row.ep, "batch": c.row.batch,
            "weights": c.row.weights, "kv": c.row.kv, "gpus_per_replica": c.row.gpus,
            "engine": engine_for(req.engine, c.row.gpu.id, c.row.weights, c.row.kv, c.row.tp, c.row.pp, c.row.ep,
                                 c.row.dp, c.estimate.config.spec is not None)["id"],
            "layers_per_stage": list(c.layers),
            **({} if opts is None else {"speculative": speculative_block(c.estimate.config.spec)}),
        } for c in pts],
        **({} if opts is None else {"speculative": {"drafts": [d.name for d in opts.drafts], "alpha": opts.alpha,
                                                     "gammas": list(opts.gammas)}}),
    }


def simulate(plan, settings=None, *, catalog: Catalog | str | Path | None = None, **options) -> dict:
    """Simulate a plan under stochastic load (planner.sim): `plan` is a plan / estimate JSON file, or the dict
    `planner plan --json` / `planner estimate --json` emit; `settings` a `planner.sim.SimulationSettings`, any of
    whose fields `options` override by name (`simulate(plan, seed=3, requests=500)`). Returns TTFT/TPOT
    percentiles, throughput, queue length and KV occupancy over time, and SLO attainment; deterministic for a
    seed."""
    from .sim import load_plan, simulate_plan
    from .sim.plan_input import read_plan_file

    doc = read_plan_file(plan) if isinstance(plan, (str, Path)) else plan
    # the plan's figures assumed two-batch overlap: replay its steps the same way
    tbo = (doc.get("perf_profile") or {}).get("two_batch_overlap") is True if isinstance(doc, dict) else False
    cat = _with_tbo(_catalog(catalog), True if tbo else None)
    if isinstance(doc, dict) and "pools" in doc:  # a disaggregated plan (planner/disagg.py)
        from .sim.disagg import simulate_disaggregated

        return simulate_disaggregated(doc, settings, catalog=cat, **options)
    spec = load_plan(plan) if isinstance(plan, (str, Path)) else plan
    return simulate_plan(spec, settings, catalog=cat, **options)


# ---- launch configs and reports ------------------------------------------------------------------------------------
def export(plan, engine: str | None = None, **kwargs):
    """Launch configuration of a plan (a `Plan` or its JSON dict) for "vllm", "sglang", "trtllm" or "k8s"; None:
    the engine the plan names (`serving_engine`), else its perf profile's, else vLLM. Returns
    `planner.export.Export` (`.script()`, `.argv`, `.env`, `.files`, `.notes`, `.to_dict()`); see
    planner/export/__init__.py for the keyword arguments."""
    from .export import export as _export

    if engine is None:
        d = plan.to_dict() if hasattr(plan, "to_dict") else plan
        planned = ((d.get("serving_engine") or d.get("perf_profile") or {}).get("id")
                   or (d.get("perf_profile") or {}).get("engine")) if isinstance(d, dict) else None
        engine = planned if planned in ("vllm", "sglang", "trtllm") else "vllm"
    return _export(plan, engine, **kwargs)


def report(plan, path: str | Path, *, frontier: dict | None = None, request: Any = None, **options) -> None:
    """Write the self-contained HTML report of a plan (a `Plan` or its JSON dict) to `path`. The frontier plot uses
    `frontier` if given, else is computed with `frontier(request, **options)` when a request or request options
    (model, isl, osl, ...) are given, else left out."""
    from .report_html import write_report

    d = plan.to_dict() if hasattr(plan, "to_dict") else plan
    if frontier is None and (request is not None or options):
        frontier = globals()["frontier"](request, **options)
    write_report(str(path), d, frontier)


# ---- fleet and procurement planning --------------------------------------------------------------------------------
def fleet(request, *, catalog: Catalog | str | Path | None = None, time_limit_s: float | None = None,
          compare: bool | None = None, timings: bool = False, engine: str | None = None,
          pool_space: str | None = None):
    """The cheapest fleet for a mix of request classes over an hourly demand profile: replica pools (aggregated or
    prefill/decode disaggregated, any GPU type) and their counts per hour, reserved or on demand, within per-type
    availability and an optional budget. `request` is a fleet request TOML path, a dict with the same keys, or a
    `planner.fleet.FleetRequest`. Returns a `planner.fleet.FleetResult` (`.to_dict()` for JSON). `engine` (or
    the request's `engine` key): only pools that serving engine runs, under its perf profile. `pool_space` (or
    the request's `pool_space` key): "grid" (default) or "exact", the pools over every PP and TP not pinned."""
    from dataclasses import replace

    from .engines import check_engine

    from .fleet import load_request, plan_fleet, request_from_dict
    from .fleet.request import FleetRequest

    if isinstance(request, FleetRequest):
        req, cat = request, _catalog(catalog)
    elif isinstance(request, dict):
        req, cat = request_from_dict(request, catalog)
    else:
        req, cat = load_request(request, catalog)
    if time_limit_s is not None or compare is not None:
        req = replace(req, time_limit_s=req.time_limit_s if time_limit_s is None else time_limit_s,
                      compare=req.compare if compare is None else compare)
    if engine is not None:
        req = replace(req, engine=check_engine(engine))
    if pool_space is not None:
        req = replace(req, pool_space=pool_space)
    return plan_fleet(req, cat.perf if req.engine is None else cat.perf.with_engine(req.engine), timings=timings)


# ---- training-run planning -----------------------------------------------------------------------------------------
def train(model: ModelSpec | str | Path | None = None, *, tokens=None, request: str | Path | None = None,
          timings: bool = False, **kwargs):
    """The cheapest training layout meeting a deadline (or at a GPU count), or the fastest within a budget:
    GPU type and count, TP/PP/DP/EP/CP, ZeRO stage, recomputation and micro-batch (planner.train). `request` is a
    training request TOML whose keys are the flag names; keyword arguments (`gpus`, `seq_len`,
    `global_batch_tokens`, `num_gpus`, `max_gpus`, `deadline_days`, `budget_usd`, `price`, `price_tier`, `catalog`,
    `goodput`, `flops_efficiency`, `time_limit_s`) override it. Returns a `planner.train.result.TrainPlan`
    (`.to_dict()` for JSON); raises `InfeasibleError` with one reason per blocking constraint."""
    from .errors import InputError
    from .train.request import make_request, named, read_request
    from .train.result import make_plan
    from .train.search import search

    args: dict = {}
    if request is not None:
        args.update(read_request(request))
    overrides = {k: v for k, v in {**kwargs, "model": model, "tokens": tokens}.items() if v is not None}
    args.update(overrides)
    if "model" not in args:
        raise InputError(f"missing --model{f' (or key model in {request})' if request else ''}")
    # an error in a value the file gave names the file (flags overriding it are named as flags)
    where = str(request) if request is not None and not overrides else None
    build = lambda: make_request(**args)  # noqa: E731
    req, cat = named(where, build) if where else build()
    return make_plan(search(req, cat.perf), cat.perf, timings=timings)
