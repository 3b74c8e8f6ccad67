"""`Plan`: the optimizer's answer and its versioned JSON form (schema: planner/schema/plan.schema.json)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .engines import serving_engine
from .explain import batch_limited_by, binding_constraints
from .numbers import round6
from .perf.cost import all_tokens_basis, usd_per_million_at
from .perf.step import placement_dict
from .search.solve import Choice, SearchResult
from .search.table import OBJ_DIVISOR, PRICE_UNITS_PER_USD
from .speculative import speculative_block

SCHEMA_VERSION = 1


def plan_schema() -> dict[str, Any]:
    return json.loads(resources.files("planner").joinpath("schema/plan.schema.json").read_text(encoding="utf-8"))


def _summary(req: Any, c: Choice) -> dict[str, Any]:
    e, r = c.estimate, c.row
    return {
        "gpu": r.gpu.id, "tp": r.tp, "dp": r.dp, "pp": r.pp, "ep": r.ep, "replicas": c.replicas, "batch": r.batch,
        "weights": r.weights, "kv": r.kv, "total_gpus": c.replicas * r.gpus, "usd_per_hour": round6(c.usd_per_hour),
        "usd_per_million_output_tokens": round6(c.usd_per_million_output_tokens(req.workload.demand_output_tokens_per_s)),
        "tokens_per_s_per_user": round6(e.tokens_per_s_per_user), "ttft_s": round6(e.ttft_s),
    }


def search_timings(stats: Any) -> dict[str, Any]:
    """The colocated search's part of `solver` with --timings (search.solve.SearchStats), summed over the
    confirmation's rounds where a demand ran several (search/percentile.py)."""
    return {
        "wall_s": round(stats.wall_s, 4),
        # every CP-SAT call of the command (the best plan, its tie-break stages, each other GPU type's best)
        "cp_sat_wall_s": round(stats.cp_sat_s, 4), "cp_sat_solves": stats.solves,
        "table_s": round(stats.table_s, 4),
        # the lazy search of the exact space (search/bounds.py): its tables and bounds, and the rows it examined
        "bound_s": round(stats.bound_s, 4), "rows_examined": stats.examined,
    }


@dataclass(frozen=True)
class Plan:
    result: SearchResult
    timings: bool = False
    simulation: dict[str, Any] | None = None  # percentile-SLO confirmation (planner.search.percentile)
    slo_percentile: float | None = None  # the percentile the SLOs hold at
    mean_batch: float | None = None  # expected sequences in flight per replica at the demand
    speculative: Any = None  # speculative.SpecDecision when drafts were considered (--spec-draft)
    # prefill/decode disaggregation considered (planner/disagg.py); `result` is None when no colocated plan is
    # feasible and the disaggregated one was chosen
    disagg: Any = None
    chat: bool = False  # the request says chat: the export serves the instruct/chat checkpoint
    chosen_by: str | None = None  # how serving_engine was chosen, when not as engines.serving_engine says
    perf_profile: dict[str, Any] | None = None  # the profile the figures are, when relabelled (api.plan)
    simulation_s: float = 0.0  # the colocated plan's confirming simulations (search/percentile.py) ...
    replays: int = 0  # ... and how many ran
    total_s: float | None = None  # api.plan's whole call, request to Plan (with timings)

    def to_dict(self) -> dict[str, Any]:
        d = self._dict()
        if self.timings:
            self._phases(d["solver"])
        if self.perf_profile is not None:
            d["perf_profile"] = self.perf_profile
        if self.chosen_by is not None and d.get("serving_engine") is not None:
            d["serving_engine"] = {**d["serving_engine"], "chosen_by": self.chosen_by}
        return d

    def _phases(self, solver: dict[str, Any]) -> None:
        """--timings: what the planning call spent, measured where each phase ran (time.perf_counter): `total_s`
        (api.plan), a disaggregated plan's colocated search (`colocated`: the pair's rival, run after it), the
        pools (`pools`, where disaggregation was considered) and every confirming simulation (`simulation`: the
        colocated plan's rounds and the pair's, where a demand asked for one)."""
        o = self.disagg
        if o is not None and o.chosen:
            solver["colocated"] = (search_timings(self.result.stats) if self.result is not None else
                                   {"wall_s": round(o.colocated_s, 4), "feasible": False})
        if o is not None:
            solver["pools"] = {"wall_s": round(o.pools_s, 4),
                               **({} if o.choice is None else {"pools": o.choice.pools, "pairs": o.choice.pairs})}
        replays = (0 if self.result is None else self.replays) + (0 if o is None else o.replays)
        if replays:
            seconds = (0.0 if self.result is None else self.simulation_s) + (0.0 if o is None else o.simulation_s)
            solver["simulation"] = {"wall_s": round(seconds, 4), "replays": replays}
        if self.total_s is not None:
            solver["total_s"] = round(self.total_s, 4)

    @property
    def best(self) -> Choice:
        return self.result.best

    def _batch_limited_by(self) -> str:
        res, c = self.result, self.result.best
        if self.mean_batch is None:  # the optimizer's batch
            return batch_limited_by(res.table, res.bounds, res.index, res.limits)
        # raised to the engine's maximum concurrency (search/percentile.max_concurrency): memory or TPOT stops it
        from .search.percentile import MAX_CONCURRENCY

        if c.row.batch + c.row.pp > c.estimate.max_batch:
            return "memory"
        return "max_batch" if c.row.batch + c.row.pp > MAX_CONCURRENCY else "tpot"

    def _dict(self) -> dict[str, Any]:
        if self.disagg is not None and self.disagg.chosen:
            from .disagg import plan_dict

            d = plan_dict(self.disagg, SCHEMA_VERSION)
            if self.speculative is not None:  # the pools run no draft: say so, and what the colocated plan weighed
                why = self.speculative.to_dict()
                d["speculative"] = None
                d["speculative_choice"] = {**why, "chosen": None, "reason": (
                    "no draft: the disaggregated plan chosen runs none (its prefill and decode pools are planned "
                    f"without speculative decoding); among colocated plans: {why['reason']}")}
            if self.chat:
                d["chat"] = True
            return d
        d = self._colocated_dict()
        if self.disagg is not None:
            d["disaggregation"] = self.disagg.summary()
        return d

    def _colocated_dict(self) -> dict[str, Any]:
        res, c = self.result, self.result.best
        req, e, r = res.request, c.estimate, c.row
        d = e.to_dict()
        demand = req.workload.demand_output_tokens_per_s
        served = demand or e.output_tokens_per_s * c.replicas
        usd_h = c.usd_per_hour
        objective_unit = ("1e-6 USD per million output tokens" if req.workload.demand_output_tokens_per_s is None
                          else f"{1 / PRICE_UNITS_PER_USD:g} USD per hour")
        solver: dict[str, Any] = {
            "engine": "ortools-cp-sat", "status": c.solution.status if c.solution else "HEURISTIC",
            "gap": round6(c.solution.gap) if c.solution else None,
            "objective": c.objective, "objective_unit": objective_unit,
            "candidates": {"rows": res.stats.rows, "placements": res.stats.placements,
                           "rows_after_bounds": res.stats.rows_after_bounds},
            "space": res.stats.space,
            "time_limit_s": req.time_limit_s, "workers": 1, "seed": 0,
        }
        if self.timings:
            solver.update(search_timings(res.stats))
        return {
            "schema_version": SCHEMA_VERSION,
            "model": req.model.name,
            "gpu": r.gpu.id,
            "gpu_name": r.gpu.name,
            "parallelism": {"tp": r.tp, "dp": r.dp, "pp": r.pp, "ep": r.ep, "replicas": c.replicas},
            "gpus_per_replica": r.gpus,
            "total_gpus": c.replicas * r.gpus,
            "batch": r.batch,
            "micro_batch": r.micro_batch,
            "precision": {"weights": r.weights, "kv": r.kv},
            "placement": placement_dict(req.model, c.layers),
            "workload": {"isl": req.workload.isl, "osl": req.workload.osl, "rate_rps": req.workload.rate_rps,
                         "output_tokens_per_s": req.workload.demand_output_tokens_per_s,
                         "max_model_len": req.workload.engine_max_len(req.model)},
            "slo": {"ttft_s": req.slo.ttft_s, "tpot_s": req.slo.tpot_s, "percentile": self.slo_percentile},
            "mean_batch": None if self.mean_batch is None else round(self.mean_batch, 2),
            "memory_per_gpu_bytes": d["memory_per_gpu_bytes"],
            "metrics": d["metrics"],
            "cost": {
                "usd_per_hour": round6(usd_h),
                "usd_per_hour_per_gpu": round6(r.gpu.usd_per_hour),
                "price_tier": r.gpu.price.tier, "price_source": r.gpu.price.source, "price_date": r.gpu.price.date,
                # what usd_per_million_output_tokens and usd_per_million_tokens are priced at: the planned demand
                # (the fleet's $/h over the tokens it is asked for) or, without one, full capacity
                "basis": "demand" if demand else "capacity",
                "usd_per_million_output_tokens": round6(c.usd_per_million_output_tokens(demand)),
                "usd_per_million_output_tokens_at_demand": None if not demand else round6(
                    c.usd_per_million_output_tokens(demand)),
                "usd_per_million_output_tokens_at_capacity": round6(c.usd_per_million_output_tokens(None)),
                **{f"usd_per_million_{k}_tokens_marginal": round6(v)
                   for k, v in zip(("input", "output"), e.marginal_usd_per_million)},
                "usd_per_million_tokens": round6(all_tokens_basis(usd_per_million_at(usd_h, served), req.workload.isl,
                                                                  req.workload.osl)),
            },
            "bottleneck": e.bottleneck,
            "perf_profile": d["perf_profile"],
            "serving_engine": serving_engine(req.engine, r.gpu.id, r.weights, r.kv, r.tp, r.pp, r.ep, r.dp,
                                             req.spec is not None),
            **({"chat": True} if self.chat else {}),
            "binding_constraints": binding_constraints(req, e, c.replicas),
            "batch_limited_by": self._batch_limited_by(),
            "alternatives": [_summary(req, a) for a in res.alternatives],
            "solver": solver,
            **({"simulation": self.simulation} if self.simulation is not None else {}),
            # what runs (simulate and export read it) and, with --spec-draft, which drafts and γ were weighed and why
            **({"speculative": speculative_block(e.config.spec)}
               if e.config.spec is not None or self.speculative is not None else {}),
            **({"speculative_choice": self.speculative.to_dict()} if self.speculative is not None else {}),
        }


__all__ = ["Plan", "plan_schema", "SCHEMA_VERSION", "OBJ_DIVISOR"]
