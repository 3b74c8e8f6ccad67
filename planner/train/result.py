"""`TrainPlan`: the chosen training layout, re-estimated in floating point, and its JSON
(planner/schema/train.schema.json) and text forms."""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from ..numbers import round6
from ..perf.params import PerfParams
from .flops import flops_total, hardware_flops_per_token, model_flops_per_token
from .request import TrainRequest
from .search import SearchResult, link_of
from .step import Layout, run_metrics, step_terms

SCHEMA_VERSION = 1
TIGHT = 0.05  # a constraint within 5 % of its limit is binding (as planner.explain)


def train_schema() -> dict[str, Any]:
    return json.loads(resources.files("planner").joinpath("schema/train.schema.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class TrainEstimate:
    """Every figure of one layout for one request (scalars)."""
    layout: Layout
    terms: dict
    metrics: dict
    capacity_bytes: float


def estimate(req: TrainRequest, layout: Layout, perf: PerfParams) -> TrainEstimate:
    """The training model for one layout: the same step_terms and run_metrics the search tabulates."""
    g, p = layout.gpu, req.params
    terms = step_terms(req.model, req.seq_len, req.global_batch_seqs, tp=layout.tp, pp=layout.pp, dp=layout.dp,
                       ep=layout.ep, cp=layout.cp, zero=layout.zero, recompute=layout.recompute,
                       micro_batch=layout.micro_batch, peak_flops_per_s=g.flops_per_s["bf16"],
                       flops_efficiency=p.flops_efficiency(g.id), domain=g.scale_up_domain,
                       scale_up_bytes_per_s=g.scale_up_bytes_per_s, scale_out_bytes_per_s=g.scale_out_bytes_per_s,
                       link=link_of(perf))
    terms = {k: float(np.asarray(v)) for k, v in terms.items()}
    metrics = run_metrics(req.model, req.seq_len, req.global_batch_tokens, req.tokens, terms["step_s"],
                          terms["gpus"], g.flops_per_s["bf16"], g.usd_per_hour, p.goodput, layout.recompute)
    metrics = {k: float(np.asarray(v)) for k, v in metrics.items()}
    return TrainEstimate(layout, terms, metrics, g.memory_bytes * (1.0 - p.memory_reserve_fraction))


def verify(req: TrainRequest, e: TrainEstimate) -> list[str]:
    """Constraints the layout breaks, re-checked in floating point (empty: it holds)."""
    bad = []
    lay = e.layout
    if e.terms["memory_bytes"] > e.capacity_bytes:
        bad.append("memory")
    if req.deadline_days is not None and e.metrics["days"] > req.deadline_days:
        bad.append("deadline")
    if req.budget_usd is not None and e.metrics["usd_total"] > req.budget_usd:
        bad.append("budget")
    if req.num_gpus is not None and lay.gpus != req.num_gpus:
        bad.append("num_gpus")
    if req.max_gpus is not None and lay.gpus > req.max_gpus:
        bad.append("max_gpus")
    if lay.tp > lay.gpu.scale_up_domain:
        bad.append("tp beyond the scale-up domain")
    if req.global_batch_seqs % (lay.dp * lay.micro_batch) or (req.model.num_experts and lay.dp % lay.ep):
        bad.append("layout does not divide the batch / experts")
    return bad


def _summary(e: TrainEstimate) -> dict[str, Any]:
    lay = e.layout
    return {"gpu": lay.gpu.id, "total_gpus": lay.gpus,
            "parallelism": {"tp": lay.tp, "pp": lay.pp, "dp": lay.dp, "ep": lay.ep, "cp": lay.cp,
                            "zero_stage": lay.zero, "recompute": lay.recompute, "micro_batch": lay.micro_batch},
            "mfu": round6(e.metrics["mfu"]), "days": round6(e.metrics["days"]), "gpu_hours": round6(e.metrics["gpu_hours"]),
            "cost": {"usd_per_hour": round6(e.metrics["usd_per_hour"]), "usd_total": round6(e.metrics["usd_total"])}}


@dataclass(frozen=True)
class TrainPlan:
    result: SearchResult
    best: TrainEstimate
    alternatives: tuple[TrainEstimate, ...]
    fewest_gpus: tuple[TrainEstimate, ...] = ()
    timings: bool = False

    def binding_constraints(self) -> list[dict[str, Any]]:
        """Each constraint: value, limit, relative slack, binding (slack < 5 %), and `relaxing_helps`: whether
        some layout that breaks only this constraint has a better objective (from the search table)."""
        req, e, out = self.result.request, self.best, []

        def add(name: str, value: float, limit: float, unit: str, relax_key: str | None) -> None:
            slack = (limit - value) / limit
            helps = None if relax_key is None else self.result.relaxed.get(relax_key) is not None
            out.append({"name": name, "value": round6(value), "limit": round6(limit), "unit": unit, "slack": round(slack, 4),
                        "binding": bool(slack < TIGHT or bool(helps)), "relaxing_helps": helps})

        if req.deadline_days is not None:
            add("deadline_days", e.metrics["days"], req.deadline_days, "days", "deadline")
        if req.budget_usd is not None:
            add("budget_usd", e.metrics["usd_total"], req.budget_usd, "USD", "budget")
        add("memory_per_gpu", e.terms["memory_bytes"], e.capacity_bytes, "bytes", "memory")
        if req.max_gpus is not None:
            add("max_gpus", e.layout.gpus, req.max_gpus, "gpus", None)
        if req.num_gpus is not None:
            add("num_gpus", e.layout.gpus, req.num_gpus, "gpus", None)
        return out

    def to_dict(self) -> dict[str, Any]:
        res, e = self.result, self.best
        req, lay, t, mt = res.request, e.layout, e.terms, e.metrics
        g, m = lay.gpu, req.model
        sol = res.solution
        solver: dict[str, Any] = {
            "engine": "ortools-cp-sat", "status": sol.status, "gap": round6(sol.gap), "objective": sol.objective,
            "objective_unit": res.objective_unit, "minimize": req.objective,
            "candidates": {"rows": res.rows, "rows_after_pruning": len(res.table)},
            "time_limit_s": req.time_limit_s, "workers": 1, "seed": 0,
        }
        if self.timings:
            solver["wall_s"] = round(sol.wall_s, 4)
        fam = req.params.family(g.id)
        return {
            "schema_version": SCHEMA_VERSION,
            "model": m.name,
            "gpu": g.id,
            "gpu_name": g.name,
            "total_gpus": lay.gpus,
            "parallelism": {"tp": lay.tp, "pp": lay.pp, "dp": lay.dp, "ep": lay.ep, "cp": lay.cp,
                            "zero_stage": lay.zero, "recompute": lay.recompute, "micro_batch": lay.micro_batch,
                            "micro_batches_per_step": int(round(t["micro_batches"]))},
            "workload": {"tokens": req.tokens, "seq_len": req.seq_len,
                         "global_batch_tokens": req.global_batch_tokens,
                         "global_batch_sequences": req.global_batch_seqs,
                         "steps": round6(req.tokens / req.global_batch_tokens)},
            "model_params": {"total": round6(m.total_params), "active": round6(m.active_params)},
            "flops_per_token": round6(model_flops_per_token(m, req.seq_len)),
            "hardware_flops_per_token": round6(hardware_flops_per_token(m, req.seq_len, lay.recompute)),
            "flops_total": round6(flops_total(m, req.seq_len, req.tokens)),
            "mfu": round6(mt["mfu"]),
            "hfu": round6(mt["hfu"]),
            "tokens_per_s": round6(mt["tokens_per_s"]),
            "step_time_s": round6(t["step_s"]),
            "step": {k: round6(t[k]) for k in ("compute_s", "tp_comm_s", "ep_comm_s", "cp_comm_s", "pp_p2p_s",
                                           "micro_batch_s", "pipeline_s", "bubble_fraction", "dp_comm_s",
                                           "dp_exposed_s")},
            "days": round6(mt["days"]),
            "gpu_hours": round6(mt["gpu_hours"]),
            "cost": {"usd_per_hour": round6(mt["usd_per_hour"]), "usd_total": round6(mt["usd_total"]),
                     "usd_per_hour_per_gpu": round6(g.usd_per_hour), "price_tier": g.price.tier,
                     "price_source": g.price.source, "price_date": g.price.date},
            "memory_per_gpu_bytes": {"weights": round6(t["weights_bytes"]), "gradients": round6(t["gradients_bytes"]),
                                     "optimizer": round6(t["optimizer_bytes"]), "activations": round6(t["activations_bytes"]),
                                     "total": round6(t["memory_bytes"]), "capacity": round6(e.capacity_bytes)},
            "assumptions": {"goodput": req.params.goodput, "flops_efficiency": round6(req.params.flops_efficiency(g.id)),
                            "flops_efficiency_family": fam.id,
                            "flops_efficiency_basis": ("--flops-efficiency" if req.params.flops_efficiency_override
                                                       is not None else
                                                       f"fitted on {', '.join(fam.fit)}" if fam.fit else
                                                       f"assumed from {fam.assumed_from}"),
                            "memory_reserve_fraction": req.params.memory_reserve_fraction},
            "binding_constraints": self.binding_constraints(),
            "alternatives": [_summary(a) for a in self.alternatives],
            "fewest_gpus": [_summary(a) for a in self.fewest_gpus],
            "solver": solver,
        }


def train_text(d: dict[str, Any]) -> str:
    """The plan for people."""
    p, c, w, mem = d["parallelism"], d["cost"], d["workload"], d["memory_per_gpu_bytes"]
    gib = 2 ** 30
    lines = [
        f"train {d['model']} on {w['tokens']:.3g} tokens (seq {w['seq_len']}, batch {w['global_batch_tokens']:,} "
        f"tokens)",
        f"  plan        {d['total_gpus']:,} x {d['gpu']}  TP{p['tp']} PP{p['pp']} DP{p['dp']} EP{p['ep']} CP{p['cp']}"
        f"  ZeRO-{p['zero_stage']}  recompute {p['recompute']}  micro-batch {p['micro_batch']} "
        f"x{p['micro_batches_per_step']}",
        f"  time        {d['days']:.1f} days (goodput {d['assumptions']['goodput']:.0%}), "
        f"step {d['step_time_s']:.2f} s, "
        f"{d['tokens_per_s']:,.0f} tokens/s",
        f"  efficiency  MFU {d['mfu']:.1%}  HFU {d['hfu']:.1%}  (pipeline bubble {d['step']['bubble_fraction']:.1%}; "
        f"flop efficiency {d['assumptions']['flops_efficiency']:.2f}, {d['assumptions']['flops_efficiency_basis']})",
        f"  compute     {d['flops_total']:.3g} FLOPs ({d['flops_per_token']:.3g} per token)",
        f"  cost        ${c['usd_total']:,.0f}  ({d['gpu_hours']:,.0f} GPU-hours at "
        f"${c['usd_per_hour_per_gpu']:.2f}/GPU-h "
        f"{c['price_tier']}, ${c['usd_per_hour']:,.0f}/h)",
        f"  memory/GPU  {mem['total'] / gib:.1f} of {mem['capacity'] / gib:.1f} GiB "
        f"(weights {mem['weights'] / gib:.1f}, "
        f"grads {mem['gradients'] / gib:.1f}, optimizer {mem['optimizer'] / gib:.1f}, activations "
        f"{mem['activations'] / gib:.1f})",
    ]
    binding = [b["name"] for b in d["binding_constraints"] if b["binding"]]
    lines.append(f"  binding     {', '.join(binding) if binding else 'none'}")
    for a in d["alternatives"]:
        ap = a["parallelism"]
        lines.append(f"  vs {a['gpu']:<10s} {a['total_gpus']:,} GPUs "
                     f"TP{ap['tp']} PP{ap['pp']} DP{ap['dp']} EP{ap['ep']}"
                     f": {a['days']:.1f} days, ${a['cost']['usd_total']:,.0f}, MFU {a['mfu']:.1%}")
    for a in d["fewest_gpus"]:
        ap = a["parallelism"]
        lines.append(f"  fewest {a['gpu']:<10s} {a['total_gpus']:,} GPUs TP{ap['tp']} PP{ap['pp']} DP{ap['dp']} "
                     f"EP{ap['ep']}: {a['days']:.1f} days, ${a['cost']['usd_total']:,.0f}, MFU {a['mfu']:.1%}")
    s = d["solver"]
    lines.append(f"  solver      {s['status']} (minimize {s['minimize']}; {s['candidates']['rows']:,} layouts, "
                 f"{s['candidates']['rows_after_pruning']:,} after pruning)")
    return "\n".join(lines)


def make_plan(res: SearchResult, perf: PerfParams, timings: bool = False) -> TrainPlan:
    """Re-estimate the chosen row and the alternatives in floating point; refuse a plan that breaks a constraint."""
    req = res.request
    best = estimate(req, res.table.layout(req, res.best), perf)
    bad = verify(req, best)
    if bad:
        raise RuntimeError(f"the chosen training layout fails verification: {', '.join(bad)}")
    alts = tuple(estimate(req, res.table.layout(req, i), perf) for i in res.alternatives)
    fewest = tuple(estimate(req, res.table.layout(req, i), perf) for i in res.fewest_gpus)
    for e in alts + fewest:
        if verify(req, e):
            raise RuntimeError(f"an alternative training layout fails verification: {', '.join(verify(req, e))}")
    return TrainPlan(res, best, alts, fewest, timings)
