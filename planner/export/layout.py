"""What an engine can express of a plan, the nearest layout it can when it cannot, and that layout's cost.

A plan fixes TP, PP, EP, the layers on each pipeline stage, the batch and the precisions. Engines differ in what
they let a launch command set: vLLM and SGLang take any layers-per-stage split through an environment variable,
TensorRT-LLM splits layers itself (`torch.tensor_split`: the first L mod P stages get one more); vLLM's expert
parallelism is all-or-nothing (EP = TP). Where the engine cannot express the plan, the export emits the nearest
layout it can and re-estimates it with `planner.perf.estimate` — the same model the optimizer used — so the
user sees what the change costs."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

from ..errors import InputError
from ..specs.layout import ReplicaLayout
from .spec import EngineSpec


@dataclass(frozen=True)
class Layout(ReplicaLayout):
    """A plan's layout as an engine runs it (the shared fields in specs/layout.py), and its replica count."""

    replicas: int

    @classmethod
    def from_plan(cls, plan: dict[str, Any]) -> "Layout":
        par = plan["parallelism"]
        return cls(tp=par["tp"], pp=par["pp"], ep=par["ep"], batch=plan["batch"],
                   weights=plan["precision"]["weights"], kv=plan["precision"]["kv"],
                   layers_per_stage=tuple(plan["placement"]["layers_per_stage"]), replicas=par["replicas"],
                   dp=par.get("dp", 1))

    @property
    def micro_batch(self) -> int:
        return max(1, self.batch // self.pp)

    @property
    def gpus(self) -> int:
        return self.tp * self.dp * self.pp

    def to_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "dp": self.dp, "pp": self.pp, "ep": self.ep, "batch": self.batch, "micro_batch": self.micro_batch,
                "weights": self.weights, "kv": self.kv, "layers_per_stage": list(self.layers_per_stage),
                "replicas": self.replicas}


def tensor_split_layers(num_layers: int, pp: int) -> tuple[int, ...]:
    """torch.tensor_split(arange(L), P) sizes: the first L mod P stages get ⌈L/P⌉ layers, the rest ⌊L/P⌋."""
    base, extra = divmod(num_layers, pp)
    return tuple(base + (1 if s < extra else 0) for s in range(pp))


def engine_layer_split(spec: EngineSpec, layers: tuple[int, ...]) -> tuple[int, ...] | None:
    """The layers per stage the engine will run for a requested split, or None if it takes any split."""
    rule = spec.layout.get("pp_partition")
    if len(layers) == 1 or rule == "env":
        return None
    if rule == "first_extra":
        return tensor_split_layers(sum(layers), len(layers))
    raise ValueError(f"{spec.engine}: unknown pp_partition rule {rule!r}")


def ep_candidates(spec: EngineSpec, tp: int, ep: int) -> list[int]:
    """EP degrees the engine can run for a planned EP, nearest first (`tp`: the GPUs of one stage, TP × DP)."""
    rule = spec.layout.get("ep", "divides_tp")
    if ep == 1 or rule == "divides_tp":
        return [ep]
    if rule == "tp":
        return [ep] if ep == tp else [tp, 1]
    raise ValueError(f"{spec.engine}: unknown ep rule {rule!r}")


@dataclass
class Resolved:
    planned: Layout
    emitted: Layout
    notes: list[str]
    reestimate: dict[str, Any] | None

    @property
    def exact(self) -> bool:
        return self.planned == self.emitted


def resolve(plan: dict[str, Any], spec: EngineSpec,
            reestimate: Callable[[Layout], dict[str, Any]]) -> Resolved:
    """The layout to emit for `spec` and, when it differs from the plan, its re-estimate."""
    planned = Layout.from_plan(plan)
    lay, notes = planned, []

    split = engine_layer_split(spec, planned.layers_per_stage)
    if split is not None and split != planned.layers_per_stage:
        notes.append(f"{spec.engine} {spec.version} cannot set layers per pipeline stage (it splits "
                     f"{sum(split)} layers as {list(split)}, the first stages taking the remainder); the plan "
                     f"places {list(planned.layers_per_stage)}: emitting {list(split)}, re-estimated below")
        lay = replace(lay, layers_per_stage=split)

    if lay.kv not in spec.kv and lay.kv in spec.kv_nearest:
        near = spec.kv_nearest[lay.kv]
        notes.append(f"{spec.engine} {spec.version} has no {lay.kv} KV cache: emitting {near} (same bytes per "
                     f"element), re-estimated below")
        lay = replace(lay, kv=near)

    if lay.dp > 1 and lay.tp > 1 and spec.layout.get("dp", "any") == "tp1":
        groups = lay.tp * lay.dp
        batch = -(-lay.batch // groups) * groups  # each attention group serves batch / DP sequences: a whole number
        notes.append(f"{spec.engine} {spec.version} runs attention data parallelism with one GPU per attention "
                     f"group only; the plan has {lay.dp} groups of TP {lay.tp}: emitting TP 1 x DP {groups} "
                     "(the same GPUs)" + (f" and batch {batch} (the plan's {lay.batch} rounded up to a multiple of "
                                          f"the {groups} groups)" if batch != lay.batch else "")
                     + ", re-estimated below")
        lay = replace(lay, tp=1, dp=groups, batch=batch)

    options = ep_candidates(spec, lay.tp * lay.dp, lay.ep)
    if options != [lay.ep]:
        trials = []
        for e in options:
            try:
                trials.append((reestimate(replace(lay, ep=e)), e))
            except InputError:  # e.g. EP = TP x DP beyond the model's expert count: not a layout at all
                continue
        fitting = [(t, e) for t, e in trials if t["fits"]] or trials
        best, best_ep = min(fitting, key=lambda te: te[0]["usd_per_million_output_tokens"])
        n = lay.tp * lay.dp
        notes.append(f"{spec.engine} {spec.version} runs expert parallelism only across the whole TP x DP group "
                     f"(EP = {n}) or not at all; the plan has EP {lay.ep} inside {n} GPUs: emitting "
                     f"EP {best_ep}, the cheaper of {options} when re-estimated")
        lay = replace(lay, ep=best_ep)

    result = None
    if lay != planned:
        result = reestimate(lay)
        if result["replicas"] != lay.replicas:
            notes.append(f"the emitted layout needs {result['replicas']} replica(s) for the demand "
                         f"(plan: {planned.replicas})")
            lay = replace(lay, replicas=result["replicas"])
        if not result["fits"]:
            notes.append("the emitted layout does NOT fit in GPU memory when re-estimated: "
                         + "; ".join(result["messages"]))
        for v in result["violations"]:
            notes.append(f"the emitted layout misses an SLO when re-estimated: {v}")
    return Resolved(planned, lay, notes, result)


def replicas_for_demand(plan: dict[str, Any], output_tokens_per_s: float) -> int:
    demand = plan["workload"].get("output_tokens_per_s")
    if not demand:
        return plan["parallelism"]["replicas"]
    return max(1, math.ceil(demand / output_tokens_per_s - 1e-9))
